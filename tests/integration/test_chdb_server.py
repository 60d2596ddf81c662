"""deploy.local.chdb_server against stock clickhouse-connect (sync and async) and plain HTTP.

The server runs as a subprocess on a temporary data directory, exactly as other components
start it, and every check goes over HTTP.
"""

from __future__ import annotations

import gzip
import json
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import lz4.frame
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 60.0


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    def url(self, path: str = "/", **params: str) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"http://{self.host}:{self.port}{path}{query}"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def start_server(data_dir: Path, log: Path) -> Server:
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deploy.local.chdb_server",
                "--path",
                str(data_dir),
                "--port",
                "0",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + START_DEADLINE_S
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"chdb_server did not start: {log.read_text()}")
    event = json.loads(proc.stdout.readline())
    assert event["event"] == "listening"
    server = Server(proc, event["host"], event["port"], log)
    while http(server, "GET", path="/ping").body != b"Ok.\n":
        assert time.monotonic() < deadline, "chdb_server never answered /ping"
    return server


def stop_server(server: Server) -> int:
    """SIGTERM, then the exit code; a server that does not stop within 30 s is killed."""
    server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        raise
    finally:
        assert server.proc.stdout is not None
        server.proc.stdout.close()


def http(
    server: Server,
    method: str = "POST",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    path: str = "/",
    **params: str,
) -> Reply:
    request = urllib.request.Request(
        server.url(path, **params), data=body, headers=headers or {}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers), error.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("chdb_server")
    running = start_server(root / "data", root / "server.log")
    yield running
    assert stop_server(running) == 0
    log = running.log.read_text()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Client]:
    """A stock sync client: compressed inserts (lz4) and a session, as by default."""
    ch = clickhouse_connect.get_client(host=server.host, port=server.port)
    ch.command("CREATE DATABASE IF NOT EXISTS hs")
    yield ch
    ch.close()


def new_table(client: Client, columns: str, settings: str = "") -> str:
    name = f"hs.t_{uuid.uuid4().hex[:12]}"
    client.command(
        f"CREATE TABLE {name} ({columns}) ENGINE = MergeTree ORDER BY tuple() {settings}"
    )
    return name


def count(client: Client, table: str) -> int:
    rows = client.command(f"SELECT count() FROM {table}")
    assert isinstance(rows, int)
    return rows


# ---- stock clickhouse-connect -------------------------------------------------------------

ALL_TYPES = (
    "id UInt64, s String, lc LowCardinality(String), i Int64, n Nullable(Int64),"
    " ts DateTime64(3, 'UTC'), m Map(String, String), arr Array(String), u UUID"
)
ALL_COLUMNS = ["id", "s", "lc", "i", "n", "ts", "m", "arr", "u"]
EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def typed_row(i: int, naive: bool = False) -> list[object]:
    """A row of ALL_TYPES; naive: as read back (clickhouse-connect's default naive UTC)."""
    ts = EPOCH + timedelta(milliseconds=i * 1001)
    return [
        i,
        f"s{i}\t'\\é",
        f"variant_{i % 7}",
        -(i**2),
        None if i % 3 else i,
        ts.replace(tzinfo=None) if naive else ts,
        {"k": str(i), "kind": "x" * (i % 4)},
        [str(i), "", "end"],
        uuid.UUID(int=i * 7919),
    ]


def test_insert_100k_rows_of_every_type_round_trips(client: Client) -> None:
    table = new_table(client, ALL_TYPES)
    rows = [typed_row(i) for i in range(100_000)]
    assert client.write_compression == "lz4"  # the body goes out as LZ4 frames

    started = time.perf_counter()
    summary = client.insert(table, rows, column_names=ALL_COLUMNS)
    elapsed = time.perf_counter() - started

    assert summary.written_rows == 100_000
    assert elapsed < 15, f"100k-row insert took {elapsed:.2f} s"
    result = client.query(f"SELECT {', '.join(ALL_COLUMNS)} FROM {table} ORDER BY id")
    expected = [typed_row(i, naive=True) for i in range(100_000)]
    assert [list(row) for row in result.result_rows] == expected
    totals = client.query(
        f"SELECT count(), sum(id), countIf(n IS NULL), uniqExact(lc) FROM {table}"
    )
    assert totals.result_rows == [(100_000, 4_999_950_000, 66_666, 7)]


@pytest.mark.parametrize("compress", ["zstd", "gzip", False])
def test_insert_with_other_body_encodings(server: Server, compress: str | bool) -> None:
    ch = clickhouse_connect.get_client(host=server.host, port=server.port, compress=compress)
    try:
        table = new_table(ch, ALL_TYPES)
        ch.insert(table, [typed_row(i) for i in range(2_000)], column_names=ALL_COLUMNS)
        assert ch.query(f"SELECT count(), sum(id) FROM {table}").result_rows == [(2_000, 1_999_000)]
    finally:
        ch.close()


def test_query_parameter_binds(client: Client) -> None:
    tricky = "tab\there 'quote' back\\slash\nnewline é"
    result = client.query(
        "SELECT {a:UInt64} + 1, {s:String}, {arr:Array(String)}, {ts:DateTime64(3, 'UTC')}",
        parameters={"a": 41, "s": tricky, "arr": ["x", "y'z"], "ts": EPOCH},
    )
    assert result.result_rows == [(42, tricky, ["x", "y'z"], EPOCH.replace(tzinfo=None))]
    big = "b" * 20_000  # long binds travel as multipart/form-data fields
    assert client.query("SELECT length({p:String})", parameters={"p": big}).result_rows == [
        (20_000,)
    ]


def test_command_results(client: Client) -> None:
    assert client.command("SELECT 1") == 1
    assert client.command("SELECT 'a', 'b'") == ["a", "b"]
    assert client.command("SELECT 1 WHERE 0") == ""  # a result set that is empty
    table = new_table(client, "x UInt8")
    summary = client.command(f"ALTER TABLE {table} ADD COLUMN y String")  # no result set
    assert not isinstance(summary, (str, int, list))
    assert client.command(f"EXISTS TABLE {table}") == 1


@pytest.mark.parametrize("session", [True, False], ids=["session", "sessionless"])
def test_insert_deduplication_token_is_honoured(server: Server, session: bool) -> None:
    client = clickhouse_connect.get_client(
        host=server.host, port=server.port, autogenerate_session_id=session
    )
    window = "SETTINGS non_replicated_deduplication_window = 100"
    table = new_table(client, "id UInt64, v String", window)
    batch_a = [[i, "a"] for i in range(10)]
    batch_b = [[i, "b"] for i in range(10, 20)]

    for _ in range(3):
        client.insert(table, batch_a, settings={"insert_deduplication_token": "t1"})
    assert count(client, table) == 10
    # Different rows under the same token are dropped too: the token, not the data, decides.
    client.insert(table, batch_b, settings={"insert_deduplication_token": "t1"})
    assert count(client, table) == 10
    client.insert(table, batch_b, settings={"insert_deduplication_token": "t2"})
    assert count(client, table) == 20
    client.close()


@pytest.mark.parametrize("session", [True, False], ids=["session", "sessionless"])
def test_database_parameter(server: Server, client: Client, session: bool) -> None:
    table = new_table(client, "x UInt8")
    ch = clickhouse_connect.get_client(
        host=server.host, port=server.port, database="hs", autogenerate_session_id=session
    )
    try:
        assert ch.command("SELECT currentDatabase()") == "hs"
        ch.insert(table.removeprefix("hs."), [[1], [2]])
        assert ch.command(f"SELECT sum(x) FROM {table.removeprefix('hs.')}") == 3
    finally:
        ch.close()


def test_settings_apply_to_one_request_only(server: Server) -> None:
    def block_size(ch: Client, **settings: int) -> int:
        value = ch.command("SELECT getSetting('max_block_size')", settings=settings or None)
        assert isinstance(value, int)
        return value

    sessionless = clickhouse_connect.get_client(
        host=server.host, port=server.port, autogenerate_session_id=False
    )
    first = clickhouse_connect.get_client(host=server.host, port=server.port)
    second = clickhouse_connect.get_client(host=server.host, port=server.port)
    try:
        default = block_size(sessionless)
        assert block_size(sessionless, max_block_size=12_345) == 12_345
        assert block_size(sessionless) == default
        sessionless.command(
            "SET max_block_size = 999"
        )  # without a session, SET dies with the request
        assert block_size(sessionless) == default

        first.command("SET max_block_size = 777")  # a session keeps its own SET
        assert block_size(first) == 777
        assert block_size(first, max_block_size=5) == 5
        assert block_size(first) == 777
        assert block_size(second) == default
    finally:
        for ch in (sessionless, first, second):
            ch.close()


def test_errors_carry_clickhouse_codes(client: Client, server: Server) -> None:
    with pytest.raises(DatabaseError) as caught:
        client.query("SELECT * FROM hs.no_such_table")
    assert caught.value.code == 60
    assert "UNKNOWN_TABLE" in str(caught.value)

    missing = http(server, query="SELECT * FROM hs.no_such_table")
    assert missing.status == 404
    assert missing.headers["X-ClickHouse-Exception-Code"] == "60"
    assert missing.body.startswith(b"Code: 60. DB::Exception:")
    syntax = http(server, body=b"SELEC 1")
    assert (syntax.status, syntax.headers["X-ClickHouse-Exception-Code"]) == (400, "62")


async def test_async_client(server: Server) -> None:
    ch = await clickhouse_connect.get_async_client(host=server.host, port=server.port)
    try:
        table = f"hs.async_{uuid.uuid4().hex[:8]}"
        await ch.command(
            f"CREATE TABLE {table} (id UInt64, s String) ENGINE = MergeTree ORDER BY id"
        )
        summary = await ch.insert(table, [[i, f"v{i}"] for i in range(5_000)])
        assert summary.written_rows == 5_000
        result = await ch.query(
            f"SELECT count(), sum(id), max(s) FROM {table} WHERE id >= {{lo:UInt64}}",
            parameters={"lo": 10},
        )
        assert result.result_rows == [(4_990, 12_497_455, "v999")]
        with pytest.raises(DatabaseError):
            await ch.query("SELECT * FROM hs.no_such_table")
    finally:
        await ch.close()


def test_trivial_queries_are_fast(client: Client) -> None:
    """Catches Nagle stalls (~40 ms per query without TCP_NODELAY) and per-query overheads."""
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        assert client.command("SELECT 1") == 1
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.02, timings


# ---- curl-style HTTP ----------------------------------------------------------------------


def test_plain_http_queries(server: Server) -> None:
    ping = http(server, "GET", path="/ping")
    assert (ping.status, ping.body) == (200, b"Ok.\n")
    assert http(server, "HEAD", path="/ping").status == 200

    one = http(server, "GET", query="SELECT 1", query_id="my-query")
    assert (one.status, one.body) == (200, b"1\n")
    assert one.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert one.headers["X-ClickHouse-Query-Id"] == "my-query"
    assert one.headers["X-ClickHouse-Timezone"]
    assert json.loads(one.headers["X-ClickHouse-Summary"])["read_rows"] == "1"

    body = b"SELECT number AS n FROM numbers(2) FORMAT JSONEachRow"
    assert http(server, body=body).body == b'{"n":0}\n{"n":1}\n'
    as_csv = http(server, query="SELECT 'a', 2", default_format="CSV")
    assert (as_csv.body, as_csv.headers["X-ClickHouse-Format"]) == (b'"a",2\n', "CSV")
    split = http(server, body=b"FROM numbers(3)", query="SELECT sum(number)")  # param + "\n" + body
    assert split.body == b"3\n"


def test_plain_http_inserts(server: Server, client: Client) -> None:
    table = new_table(client, "id UInt64, s String")
    rows = b'{"id": 1, "s": "a"}\n{"id": 2, "s": "b"}\n'
    done = http(server, body=rows, query=f"INSERT INTO {table} FORMAT JSONEachRow")
    assert done.status == 200
    assert json.loads(done.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    assert http(server, body=f"INSERT INTO {table} FORMAT CSV\n3,c\n4,d\n".encode()).status == 200
    gz = gzip.compress(b"5\te\n6\tf\n")
    query = f"INSERT INTO {table} FORMAT TabSeparated"
    assert http(server, body=gz, headers={"Content-Encoding": "gzip"}, query=query).status == 200
    assert http(server, body=f"INSERT INTO {table} VALUES (7, 'g')".encode()).status == 200
    assert client.query(f"SELECT id, s FROM {table} ORDER BY id").result_rows == [
        (1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f"), (7, "g")
    ]  # fmt: skip


def test_response_compression(server: Server) -> None:
    query = "SELECT number FROM numbers(1000) FORMAT TSV"
    headers = {"Accept-Encoding": "gzip"}
    plain = http(server, body=query.encode(), headers=headers)
    assert "Content-Encoding" not in plain.headers  # only with enable_http_compression=1
    packed = http(server, body=query.encode(), headers=headers, enable_http_compression="1")
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body


def wait_for(predicate: Callable[[], bool], what: str, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every_s)


def test_session_is_used_by_one_request_at_a_time(server: Server) -> None:
    slow = threading.Thread(
        target=http, args=(server,), kwargs={"query": "SELECT sleep(1.5)", "session_id": "busy"}
    )
    slow.start()
    running = "SELECT count() FROM system.processes WHERE query LIKE 'SELECT sleep(1.5)%'"
    wait_for(lambda: http(server, query=running).body == b"1\n", "the slow query to run")
    busy = http(server, query="SELECT 1", session_id="busy")
    slow.join()
    assert busy.headers["X-ClickHouse-Exception-Code"] == "373"  # SESSION_IS_LOCKED
    assert http(server, query="SELECT 1", session_id="busy").body == b"1\n"


def test_sessions_expire_and_can_be_checked(server: Server) -> None:
    def probe() -> str:  # every request re-arms the session's timeout, as in ClickHouse
        reply = http(
            server, query="SELECT 1", session_id="short", session_check="1", session_timeout="1"
        )
        return reply.headers.get("X-ClickHouse-Exception-Code", "")

    assert probe() == "372"  # SESSION_NOT_FOUND
    created = http(server, query="SELECT 1", session_id="short", session_timeout="1")
    assert created.status == 200
    assert probe() == ""
    wait_for(lambda: probe() == "372", "the session to expire", every_s=1.2)


def test_bad_requests_are_answered_and_survived(server: Server, client: Client) -> None:
    table = new_table(client, "id UInt64, s String")
    insert = f"INSERT INTO {table} FORMAT Native"
    form = (
        b'--B\r\nContent-Disposition: form-data; name="t"; filename="t.tsv"\r\n\r\n1\r\n--B--\r\n'
    )
    bad = [
        http(server, body=b"\x00garbage", query=insert),
        http(
            server, body=b"\x04\x22\x4d\x18junk", headers={"Content-Encoding": "lz4"}, query=insert
        ),
        http(server, body=b"1\tx\n", headers={"Content-Encoding": "snappy"}, query=insert),
        http(
            server,
            body=lz4.frame.compress(b"1,x\n")[:-3],
            headers={"Content-Encoding": "lz4"},
            query=insert,
        ),
        http(server, path="/?query=SELECT+1&bad-setting=1"),
        http(server, query="SELECT 1", no_such_setting="1"),
        http(server, query="SELECT 1", max_block_size="many"),
        http(server, query="SELECT 1", session_id="x", session_timeout="-5"),
        http(server, query="SELECT 1", compress="1"),
        http(server, query="SELECT 1", default_format="Dataframe"),
        http(server, query="SELECT {x:UInt8}"),
        http(server, body=b""),
        http(server, body=b"SELECT '\xff\xfe' + "),
        http(
            server,
            body=form,
            headers={"Content-Type": "multipart/form-data; boundary=B"},
            query="SELECT 1",
        ),
    ]
    for index, reply in enumerate(bad):
        assert reply.status >= 400, (index, reply)
        assert reply.headers["X-ClickHouse-Exception-Code"].isdigit(), reply
        assert reply.body.startswith(b"Code: "), reply
    with socket.create_connection((server.host, server.port)) as sock:  # a request cut short
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nSELECT")
    assert http(server, "GET", path="/ping").body == b"Ok.\n"
    assert client.command("SELECT 2") == 2
    assert count(client, table) == 0


def test_concurrent_clients(server: Server) -> None:
    table_client = clickhouse_connect.get_client(host=server.host, port=server.port)
    table = new_table(table_client, "worker UInt8, n UInt64")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        ch = clickhouse_connect.get_client(host=server.host, port=server.port)
        try:
            for n in range(20):
                ch.insert(table, [[worker, n]])
                assert ch.query("SELECT {w:UInt8}", parameters={"w": worker}).result_rows == [
                    (worker,)
                ]
        except BaseException as exc:
            errors.append(exc)
        finally:
            ch.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(table_client, table) == 160
    table_client.close()


def test_restart_keeps_data_and_releases_the_directory(tmp_path: Path) -> None:
    first = start_server(tmp_path / "data", tmp_path / "first.log")
    ch = clickhouse_connect.get_client(host=first.host, port=first.port)
    ch.command("CREATE TABLE kept (id UInt64) ENGINE = MergeTree ORDER BY id")
    ch.insert("kept", [[i] for i in range(123)])
    ch.close()
    assert stop_server(first) == 0
    assert "stopped" in first.log.read_text()

    second = start_server(tmp_path / "data", tmp_path / "second.log")
    try:
        assert http(second, query="SELECT count() FROM kept").body == b"123\n"
    finally:
        assert stop_server(second) == 0
