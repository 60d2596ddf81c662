"""ClickHouse HTTP-interface semantics for ``deploy.local.chdb_server``: pure functions, no I/O.

Mirrors ClickHouse's HTTPHandler where clickhouse-connect and curl depend on it:

* the query is the ``query`` URL parameter, a newline, then the request body (a
  ``multipart/form-data`` request carries it in a ``query`` form field instead);
* ``param_<name>`` values bind ``{name:Type}`` placeholders, unchanged (still escaped);
* every other parameter that is not reserved (``database``, ``session_id``...) is a
  setting for this one query;
* the body may be compressed as its ``Content-Encoding`` says; the response is
  compressed only with ``enable_http_compression=1`` and a matching ``Accept-Encoding``;
* an error is ``Code: N. DB::Exception: ...`` with ``X-ClickHouse-Exception-Code`` and
  the HTTP status of ClickHouse's ``exceptionCodeToHTTPStatus``.
"""

from __future__ import annotations

import gzip
import json
import re
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import lz4.frame


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# URL parameters that are not settings (ClickHouse's HTTPHandler list, plus the query itself).
RESERVED_PARAMS = _names(
    "compress decompress user password quota_key query_id stacktrace role buffer_size"
    " wait_end_of_query session_id session_timeout session_check client_protocol_version"
    " close_session database default_format query"
)
# Real settings that only steer the HTTP layer. This server buffers every result and does
# the compression itself, so they are consumed here instead of reaching the engine.
HTTP_LAYER_SETTINGS = _names(
    "enable_http_compression http_zlib_compression_level send_progress_in_http_headers"
    " http_headers_progress_interval_ms cancel_http_readonly_queries_on_client_close"
    " http_wait_end_of_query http_response_buffer_size add_http_cors_header"
)
CHDB_ONLY_FORMATS = frozenset({"dataframe", "arrowtable", "datastore"})
DEFAULT_SESSION_TIMEOUT_S, MAX_SESSION_TIMEOUT_S = 60, 3600
MAX_INSERT_HEAD = 256 * 1024  # ClickHouse's default max_query_size

NOT_IMPLEMENTED, SYNTAX_ERROR, UNKNOWN_FORMAT, UNKNOWN_SETTING = 48, 62, 73, 115
CANNOT_DECOMPRESS, INVALID_SESSION_TIMEOUT, UNKNOWN_EXCEPTION = 271, 374, 1002
# ClickHouse's exceptionCodeToHTTPStatus; every other code is a 500.
_CODES_BY_STATUS = {
    401: "194",  # REQUIRED_PASSWORD
    403: "192 193 497 512 516",  # UNKNOWN_USER, WRONG_PASSWORD, ACCESS_DENIED...
    400: "6 8 15 25 26 27 36 37 38 41 44 53 62 72 117 123 167 168 223 321 376 427 441 675 676",
    404: "46 47 50 56 60 63 73 78 81 115 152 336 511",  # UNKNOWN_TABLE (60), UNKNOWN_SETTING...
    408: "159",  # TIMEOUT_EXCEEDED
    411: "381",  # HTTP_LENGTH_REQUIRED
    413: "229",  # QUERY_IS_TOO_LARGE
    415: "779",  # UNSUPPORTED_MEDIA_TYPE
    501: "48",  # NOT_IMPLEMENTED
    503: "76 209 439",  # CANNOT_OPEN_FILE, SOCKET_TIMEOUT, CANNOT_SCHEDULE_TASK
}
_HTTP_STATUS = {
    int(code): status for status, codes in _CODES_BY_STATUS.items() for code in codes.split()
}
_CODE_RE = re.compile(r"Code: (\d+)\. ")
_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_FORMAT_NAME_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9_]*\Z")
_COMMENTS = rb"(?:\s|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*"
_FIRST_WORD_RE = re.compile(rb"(?:\s|--[^\n]*(?:\n|\Z)|/\*.*?\*/|\()*([A-Za-z]+)", re.S)
_RESULT_KEYWORDS = frozenset(
    b"SELECT WITH FROM SHOW DESCRIBE DESC EXISTS EXPLAIN CHECK KILL".split()
)
_TRAILING_FORMAT_RE = re.compile(
    rb"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*(?:SETTINGS\b[^;]*)?;?\s*\Z", re.I | re.S
)
# An INSERT whose data follows its FORMAT clause. The data starts after the first newline
# after the format name, or after the blanks when there is none (ClickHouse's own rule).
_INSERT_WITH_DATA_RE = re.compile(
    _COMMENTS
    + rb"(INSERT\s+INTO\s(?:(?!\b(?:VALUES|SELECT|WITH|FORMAT)\b).)*?)"
    + rb"\s+FORMAT\s+([A-Za-z][A-Za-z0-9_]*)[ \t\r]*\n?",
    re.I | re.S,
)
_SET_STATEMENT_RE = re.compile(rb"(?:\A|;)" + _COMMENTS + rb"SET\s", re.I | re.S)


class ClickHouseError(Exception):
    """An error as ClickHouse reports it: a numeric code and a ``Code: N. DB::Exception`` text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        """Wrap a chDB exception; its text embeds ``Code: N. DB::Exception: ...``."""
        text = str(exc)
        match = _CODE_RE.search(text)
        if match is None:
            return cls(UNKNOWN_EXCEPTION, f"chdb_server: {type(exc).__name__}: {text}")
        return cls(int(match.group(1)), text[match.start() :].strip())

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)

    def body(self) -> str:
        if self.message.startswith("Code: "):
            return self.message + "\n"
        return f"Code: {self.code}. DB::Exception: {self.message}\n"


@dataclass(frozen=True)
class SessionSpec:
    session_id: str
    timeout_s: int
    check: bool
    close: bool


@dataclass(frozen=True)
class QuerySpec:
    """One HTTP request, decoded: what to run and how to answer."""

    sql: bytes
    query_id: str
    database: str | None
    default_format: str
    settings: dict[str, str]
    params: dict[str, str]
    session: SessionSpec | None
    response_encoding: str | None


@dataclass(frozen=True)
class InsertWithData:
    head: str  # the INSERT statement without its FORMAT clause
    fmt: str
    data: bytes


def build_spec(params: Mapping[str, str], headers: Mapping[str, str], sql: bytes) -> QuerySpec:
    """Decode URL (and form) parameters and headers the way ClickHouse's HTTPHandler does."""
    if not sql.strip():
        raise ClickHouseError(SYNTAX_ERROR, "Empty query")
    settings: dict[str, str] = {}
    binds: dict[str, str] = {}
    for key, value in params.items():
        if key.startswith("param_"):
            binds[key[len("param_") :]] = value
        elif key and key not in RESERVED_PARAMS and key not in HTTP_LAYER_SETTINGS:
            if not _NAME_RE.match(key):
                raise ClickHouseError(UNKNOWN_SETTING, f"Unknown setting '{key}'")
            settings[key] = value
    for flag in ("compress", "decompress"):
        if _truthy(params.get(flag, "0")):
            message = f"'{flag}' (ClickHouse's internal compression) is not supported"
            raise ClickHouseError(NOT_IMPLEMENTED, message)
    compressed = _truthy(params.get("enable_http_compression", "0"))
    query_id = params.get("query_id") or headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
    fmt = headers.get("X-ClickHouse-Format") or params.get("default_format")
    return QuerySpec(
        sql=sql,
        query_id=query_id,
        database=headers.get("X-ClickHouse-Database") or params.get("database") or None,
        default_format=_format_name(fmt),
        settings=settings,
        params=binds,
        session=_session_spec(params),
        response_encoding=choose_encoding(headers.get("Accept-Encoding", ""))
        if compressed
        else None,
    )


def join_query(query_param: str, body: bytes) -> bytes:
    """ClickHouse's rule: the ``query`` parameter, a line break, then the body."""
    return (query_param.encode() + b"\n" + body) if query_param else body


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true")


def _format_name(name: str | None) -> str:
    if not name:
        return "TabSeparated"
    if not _FORMAT_NAME_RE.match(name) or name.lower() in CHDB_ONLY_FORMATS:
        raise ClickHouseError(UNKNOWN_FORMAT, f"Unknown format {name}")
    return name


def _session_spec(params: Mapping[str, str]) -> SessionSpec | None:
    session_id = params.get("session_id", "")
    if not session_id:
        return None
    raw_timeout = params.get("session_timeout", str(DEFAULT_SESSION_TIMEOUT_S))
    if not raw_timeout.isdigit() or int(raw_timeout) > MAX_SESSION_TIMEOUT_S:
        message = f"Invalid session timeout: '{raw_timeout}', max: {MAX_SESSION_TIMEOUT_S}"
        raise ClickHouseError(INVALID_SESSION_TIMEOUT, message)
    return SessionSpec(
        session_id,
        int(raw_timeout),
        params.get("session_check") == "1",
        params.get("close_session") == "1",
    )


# ---- statements ---------------------------------------------------------------------------


def split_insert(sql: bytes) -> InsertWithData | None:
    """Split ``INSERT INTO t (...) FORMAT X <data>`` into statement, format and data."""
    match = _INSERT_WITH_DATA_RE.match(sql[:MAX_INSERT_HEAD])
    if match is None:
        return None
    head = match.group(1).decode("utf-8", errors="replace")
    return InsertWithData(head, match.group(2).decode(), sql[match.end() :])


def result_format(sql: bytes, default_format: str) -> str | None:
    """The output format of a statement that yields a result set; None for DDL and the like."""
    first = _FIRST_WORD_RE.match(sql)
    if first is None or first.group(1).upper() not in _RESULT_KEYWORDS:
        return None
    trailing = _TRAILING_FORMAT_RE.search(sql[-4096:])
    return trailing.group(1).decode() if trailing else default_format


def has_set_statement(sql: bytes) -> bool:
    """Whether the SQL may change session settings (``SET x = ...``)."""
    return _SET_STATEMENT_RE.search(sql) is not None


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def set_statement(values: Mapping[str, str | None]) -> str:
    """``SET a = 'x', b = DEFAULT`` (None restores the default)."""
    parts = (
        f"{name} = {'DEFAULT' if v is None else quote_literal(v)}" for name, v in values.items()
    )
    return "SET " + ", ".join(parts)


# ---- compression --------------------------------------------------------------------------


def _lz4_decompress(data: bytes) -> bytes:
    """Decode concatenated LZ4 frames (clickhouse-connect sends one frame per block)."""
    out: list[bytes] = []
    while data:
        decoder = lz4.frame.LZ4FrameDecompressor()
        out.append(decoder.decompress(data))
        if not decoder.eof:
            raise ValueError("truncated LZ4 frame")
        data = decoder.unused_data
    return b"".join(out)


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "x-gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "lz4": _lz4_decompress,
}
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "lz4": lz4.frame.compress,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}
try:  # the stdlib module from Python 3.14 on; clickhouse-connect installs the backport before
    from backports import zstd
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    _DECODERS["zstd"], _ENCODERS["zstd"] = zstd.decompress, zstd.compress
# ClickHouse's chooseHTTPCompressionMethod order, restricted to what this server can encode.
_PREFERENCE = tuple(name for name in ("zstd", "lz4", "gzip", "deflate") if name in _ENCODERS)


def decode_body(body: bytes, content_encoding: str) -> bytes:
    encoding = content_encoding.strip().lower()
    if not body or encoding in ("", "identity", "none"):
        return body
    decoder = _DECODERS.get(encoding)
    if decoder is None:
        raise ClickHouseError(NOT_IMPLEMENTED, f"Unsupported Content-Encoding '{content_encoding}'")
    try:
        return decoder(body)
    except Exception as exc:
        raise ClickHouseError(
            CANNOT_DECOMPRESS, f"Cannot decode {encoding} request body: {exc}"
        ) from exc


def choose_encoding(accept_encoding: str) -> str | None:
    offered = accept_encoding.lower()
    return next((name for name in _PREFERENCE if name in offered), None)


def encode_body(body: bytes, encoding: str | None) -> bytes:
    return _ENCODERS[encoding](body) if encoding and body else body


# ---- response metadata ----------------------------------------------------------------------


def content_type(fmt: str | None) -> str:
    name = (fmt or "").lower()
    if name.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if name.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if name.startswith("json"):
        return "application/json; charset=UTF-8"
    return "application/octet-stream" if fmt else "text/plain; charset=UTF-8"


def summary_header(**counters: int) -> str:
    """``X-ClickHouse-Summary``: ClickHouse sends every counter as a JSON string."""
    return json.dumps({name: str(value) for name, value in counters.items()}, separators=(",", ":"))
