"""A ClickHouse HTTP endpoint in front of one chDB data directory.

chDB is the ClickHouse engine in-process, and only one process at a time can open a data
directory. This process owns it and serves the part of ClickHouse's HTTP interface that stock
clickhouse-connect (sync and async clients) and curl use, so the rest of hitstream talks to
it exactly as to a ClickHouse server::

    python -m deploy.local.chdb_server --path DIR [--host 127.0.0.1] [--port 8123]

Once serving it prints ``{"event": "listening", "host": ..., "port": ...}`` (``--port 0``
picks a free port); SIGTERM or SIGINT drains the requests in flight and closes the engine.

Execution: chDB calls block, so each request runs in a worker thread on a chDB connection
handle of its own (opening one costs ~0.2 ms once the engine is up); its settings, ``USE``
and ``SET`` die with it. A request with a ``session_id`` runs on that session's long-lived
handle instead, one request at a time as in ClickHouse; its URL settings are applied with
``SET`` and reset afterwards, so only the session's own ``SET`` statements persist. Results
are buffered (as with ``wait_end_of_query=1``). INSERT data goes through chDB's streaming
inserter: binary data inline in a query string is cut short by chDB.

Differences from ClickHouse: no authentication (bind to localhost); GET does not force
``readonly``; a session request's ``database`` parameter switches the session's database;
external data and ClickHouse-internal compression (``compress``/``decompress``) are refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import signal
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, cast

from aiohttp import BodyPartReader, web
from chdb.state.sqlitelike import connect

from deploy.local.chdb_protocol import (
    MAX_INSERT_HEAD,
    NOT_IMPLEMENTED,
    UNKNOWN_EXCEPTION,
    ClickHouseError,
    InsertWithData,
    QuerySpec,
    SessionSpec,
    build_spec,
    content_type,
    decode_body,
    encode_body,
    has_set_statement,
    join_query,
    quote_identifier,
    quote_literal,
    result_format,
    set_statement,
    split_insert,
    summary_header,
)

log = logging.getLogger("deploy.local.chdb_server")
SESSION_NOT_FOUND, SESSION_IS_LOCKED, QUERY_IS_TOO_LARGE = 372, 373, 229


class ChdbConnection(Protocol):
    """The slice of ``chdb.state.sqlitelike.Connection`` used here (it also takes bytes SQL)."""

    def query(
        self, query: str | bytes, format: str = ..., params: Mapping[str, str] = ...
    ) -> Any: ...
    def send_insert(self, query: str, format: str = ...) -> Any: ...
    def close(self) -> None: ...


def open_connection(path: str) -> ChdbConnection:
    return cast(ChdbConnection, connect(path))


@dataclass(frozen=True)
class QueryResult:
    body: bytes
    fmt: str | None  # None: the statement produced no result set
    summary: str


class _Session:
    def __init__(self, conn: ChdbConnection) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.expires_at = 0.0
        self.user_set = False  # a SET statement ran here, so defaults are no longer the baseline
        self.broken = False


class Sessions:
    """ClickHouse HTTP sessions: one chDB handle per ``session_id``, one request at a time."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._items: dict[str, _Session] = {}

    @contextlib.contextmanager
    def lease(self, spec: SessionSpec) -> Iterator[_Session]:
        session = self._acquire(spec)
        try:
            yield session
        finally:
            session.expires_at = time.monotonic() + spec.timeout_s
            if spec.close or session.broken:
                with self._lock:
                    if self._items.get(spec.session_id) is session:
                        del self._items[spec.session_id]
                session.conn.close()
            session.lock.release()

    def _acquire(self, spec: SessionSpec) -> _Session:
        with self._lock:
            self._expire_locked(time.monotonic())
            session = self._items.get(spec.session_id)
            if session is None:
                if spec.check:
                    raise ClickHouseError(SESSION_NOT_FOUND, f"Session {spec.session_id} not found")
                session = self._items[spec.session_id] = _Session(open_connection(self._path))
            if not session.lock.acquire(blocking=False):
                message = f"Session {spec.session_id} is locked by a concurrent client"
                raise ClickHouseError(SESSION_IS_LOCKED, message)
            return session

    def expire(self, now: float | None = None) -> None:
        """Close the idle sessions whose timeout has passed (all idle ones for ``math.inf``)."""
        with self._lock:
            self._expire_locked(time.monotonic() if now is None else now)

    def _expire_locked(self, now: float) -> None:
        for session_id, session in list(self._items.items()):
            if session.expires_at <= now and session.lock.acquire(blocking=False):
                del self._items[session_id]
                session.conn.close()
                session.lock.release()


class Engine:
    """The chDB engine of one data directory; ``execute`` blocks, so call it from a thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._primary = open_connection(path)  # opens the engine and keeps it open
        tz = self._primary.query("SELECT timezone()", "TabSeparated").bytes()
        self.timezone = tz.decode().strip()
        self.sessions = Sessions(path)

    def close(self) -> None:
        self.sessions.expire(math.inf)
        self._primary.close()

    def execute(self, spec: QuerySpec) -> QueryResult:
        try:
            if spec.session is None:
                return self._run_on_own_handle(spec)
            with self.sessions.lease(spec.session) as session:
                return self._run_in_session(session, spec)
        except ClickHouseError:
            raise
        except Exception as exc:
            error = ClickHouseError.from_engine(exc)
            if error.code == UNKNOWN_EXCEPTION:
                log.exception("query %s failed unexpectedly", spec.query_id)
            raise error from exc

    def _run_on_own_handle(self, spec: QuerySpec) -> QueryResult:
        conn = open_connection(self.path)
        try:
            self._prepare(conn, spec)
            return self._run(conn, spec)
        finally:
            conn.close()

    def _run_in_session(self, session: _Session, spec: QuerySpec) -> QueryResult:
        baseline = self._baseline(session, spec.settings)
        self._prepare(session.conn, spec)  # SET is atomic: if it fails there is nothing to undo
        try:
            return self._run(session.conn, spec)
        finally:
            session.user_set |= has_set_statement(spec.sql[:MAX_INSERT_HEAD])
            if baseline:
                self._reset(session, baseline)

    @staticmethod
    def _prepare(conn: ChdbConnection, spec: QuerySpec) -> None:
        if spec.database:
            conn.query(f"USE {quote_identifier(spec.database)}", "TabSeparated")
        if spec.settings:
            conn.query(set_statement(spec.settings), "TabSeparated")

    @staticmethod
    def _baseline(session: _Session, settings: Mapping[str, str]) -> dict[str, str | None]:
        """The session's own values of the settings a request overrides (None: the default)."""
        baseline: dict[str, str | None] = dict.fromkeys(settings)
        if settings and session.user_set:
            names = ", ".join(map(quote_literal, settings))
            sql = f"SELECT name, value FROM system.settings WHERE changed AND name IN ({names})"
            for line in session.conn.query(sql, "JSONEachRow").bytes().splitlines():
                row = json.loads(line)
                baseline[row["name"]] = row["value"]
        return baseline

    @staticmethod
    def _reset(session: _Session, baseline: Mapping[str, str | None]) -> None:
        try:
            session.conn.query(set_statement(baseline), "TabSeparated")
        except Exception:
            log.warning("cannot reset %s in a session; closing it", sorted(baseline), exc_info=True)
            session.broken = True

    @staticmethod
    def _run(conn: ChdbConnection, spec: QuerySpec) -> QueryResult:
        insert = split_insert(spec.sql)
        if insert is not None:
            return Engine._insert(conn, insert)
        fmt = result_format(spec.sql, spec.default_format)
        result = conn.query(spec.sql, spec.default_format, params=spec.params)
        summary = summary_header(
            read_rows=result.rows_read(),
            read_bytes=result.bytes_read(),
            written_rows=result.rows_written(),
            written_bytes=result.bytes_written(),
            elapsed_ns=int(result.elapsed() * 1e9),
        )
        return QueryResult(result.bytes() or b"", fmt, summary)

    @staticmethod
    def _insert(conn: ChdbConnection, insert: InsertWithData) -> QueryResult:
        inserter = conn.send_insert(insert.head, insert.fmt)
        try:
            if insert.data:
                inserter.append(insert.data)
            done = inserter.finish()
        finally:
            with contextlib.suppress(Exception):
                inserter.cancel()  # a no-op once finished
        summary = summary_header(
            written_rows=done.rows_written,
            written_bytes=done.bytes_written,
            elapsed_ns=int(done.elapsed * 1e9),
        )
        return QueryResult(b"", None, summary)


# ---- HTTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    params: dict[str, str]
    headers: Mapping[str, str]
    sql: bytes
    content_encoding: str


@dataclass(frozen=True)
class _Reply:
    spec: QuerySpec
    result: QueryResult
    body: bytes
    encoding: str | None


def _serve(engine: Engine, request: _Request) -> _Reply:
    """Decode, run and encode one request: the CPU-bound part, run in a worker thread."""
    sql = join_query(
        request.params.get("query", ""), decode_body(request.sql, request.content_encoding)
    )
    spec = build_spec(request.params, request.headers, sql)
    result = engine.execute(spec)
    encoding = spec.response_encoding if result.body else None
    return _Reply(spec, result, encode_body(result.body, encoding), encoding)


async def _read(request: web.Request) -> _Request:
    params = dict(request.query.items())
    if request.content_type != "multipart/form-data":
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise ClickHouseError(
                QUERY_IS_TOO_LARGE, f"Request body too large: {exc.text}"
            ) from exc
        encoding = request.headers.get("Content-Encoding", "")
        return _Request(params, request.headers, body, encoding)
    async for part in await request.multipart():  # the query and params as form fields
        if not isinstance(part, BodyPartReader) or part.filename is not None:
            raise ClickHouseError(NOT_IMPLEMENTED, "External data is not supported by chdb_server")
        params[part.name or ""] = await part.text()
    query = params.pop("query", "")  # the body of a form is not appended to the query
    return _Request(params, request.headers, query.encode(), "")


async def handle_query(request: web.Request) -> web.Response:
    engine, pool = request.app[ENGINE], request.app[POOL]
    query_id = request.query.get("query_id") or request.headers.get("X-ClickHouse-Query-Id")
    query_id = query_id or str(uuid.uuid4())
    try:
        raw = await _read(request)
        raw.params["query_id"] = query_id
        if not raw.sql and not raw.params.get("query") and request.method != "POST":
            return web.Response(text="Ok.\n")  # ClickHouse's answer to a bare GET /
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(pool, _serve, engine, raw)
    except ClickHouseError as error:
        return _error_response(error, query_id)
    except ConnectionError:
        log.info("client disconnected before its request was read")
        return web.Response(status=400)
    except Exception:
        log.exception("unexpected failure serving a request")
        return _error_response(
            ClickHouseError(UNKNOWN_EXCEPTION, "chdb_server internal error"), query_id
        )
    return _response(reply, engine.timezone)


def _response(reply: _Reply, timezone: str) -> web.Response:
    spec, result = reply.spec, reply.result
    headers = {
        "Content-Type": content_type(result.fmt),
        "X-ClickHouse-Query-Id": spec.query_id,
        "X-ClickHouse-Timezone": spec.settings.get("session_timezone") or timezone,
        "X-ClickHouse-Summary": result.summary,
    }
    if result.fmt:
        headers["X-ClickHouse-Format"] = result.fmt
    if reply.encoding:
        headers["Content-Encoding"] = reply.encoding
    return web.Response(body=reply.body, headers=headers)


def _error_response(error: ClickHouseError, query_id: str) -> web.Response:
    headers = {"X-ClickHouse-Exception-Code": str(error.code), "X-ClickHouse-Query-Id": query_id}
    return web.Response(status=error.http_status, text=error.body(), headers=headers)


async def handle_ping(_: web.Request) -> web.Response:
    return web.Response(text="Ok.\n")


ENGINE = web.AppKey("engine", Engine)
POOL = web.AppKey("pool", ThreadPoolExecutor)


def build_app(engine: Engine, pool: ThreadPoolExecutor, max_body_bytes: int) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes)
    app[ENGINE], app[POOL] = engine, pool
    app.router.add_get("/ping", handle_ping)  # GET and HEAD
    app.router.add_get("/", handle_query)
    app.router.add_post("/", handle_query)
    return app


async def serve(args: argparse.Namespace) -> None:
    engine = Engine(args.path)
    pool = ThreadPoolExecutor(args.workers, thread_name_prefix="chdb")
    app = build_app(engine, pool, args.max_body_mb << 20)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)  # bodies: decode_body
    try:
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        host, port = runner.addresses[0][:2]
        print(json.dumps({"event": "listening", "host": host, "port": port}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            engine.sessions.expire()
    finally:
        await runner.cleanup()  # stops listening and waits for the requests in flight
        pool.shutdown(wait=True, cancel_futures=True)
        engine.close()
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", required=True, help="chDB data directory (created if missing)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=16, help="threads running chDB calls")
    parser.add_argument("--max-body-mb", type=int, default=512, help="largest request body")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(args))
    except Exception as exc:  # e.g. the data directory is locked by another process
        log.error("chdb_server failed: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
