"""Which ClickHouse failures the sink waits out, and which mean ClickHouse refused the data.

A pure decision over what a failure says: its ClickHouse error code (the
`X-ClickHouse-Exception-Code` header, or `Code: N.` in the text) and whether it is a server
error or no answer at all. Waiting out a failure is safe because every retry of a batch carries
the same `insert_deduplication_token` (`pipeline.progress.TableBatch.dedup_token`): an insert
that reached the table before its answer was lost (a timeout, a Keeper session lost at commit)
is stored once, on a single server and on a replicated table alike.
"""

from __future__ import annotations

import enum
import re

from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)


class Verdict(enum.Enum):
    RETRY = "retry"  # a passing condition: try the same insert again after a back-off
    REFUSED = "refused"  # ClickHouse refused this data: store what it takes, dead-letter the rest
    BUG = "bug"  # not a ClickHouse failure at all: let it propagate


# What clickhouse-connect raises itself, before a request is sent (the server's errors are
# DatabaseError or OperationalError).
CLIENT_ERRORS = (DataError, IntegrityError, NotSupportedError, ProgrammingError)
# Conditions of the server or the cluster that pass; every other code refuses the data.
RETRYABLE_CODES: dict[int, str] = {
    159: "TIMEOUT_EXCEEDED",
    164: "READONLY",
    198: "DNS_ERROR",
    202: "TOO_MANY_SIMULTANEOUS_QUERIES",
    203: "NO_FREE_CONNECTION",
    209: "SOCKET_TIMEOUT",
    210: "NETWORK_ERROR",
    225: "NO_ZOOKEEPER",
    241: "MEMORY_LIMIT_EXCEEDED",
    242: "TABLE_IS_READ_ONLY",
    244: "UNEXPECTED_ZOOKEEPER_ERROR",
    252: "TOO_MANY_PARTS",
    279: "ALL_CONNECTION_TRIES_FAILED",
    285: "TOO_FEW_LIVE_REPLICAS",
    286: "UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE",
    289: "REPLICA_IS_NOT_IN_QUORUM",
    319: "UNKNOWN_STATUS_OF_INSERT",
    369: "ALL_REPLICAS_ARE_STALE",
    415: "ALL_REPLICAS_LOST",
    425: "SYSTEM_ERROR",
    439: "CANNOT_SCHEDULE_TASK",
    999: "KEEPER_EXCEPTION",
    1000: "POCO_EXCEPTION",
}
CODE_IN_TEXT = re.compile(r"\bCode:\s*(\d+)")


class Source(enum.Enum):
    SERVER = "server"  # ClickHouse (or a proxy in front of it) answered with an error
    NO_ANSWER = "no answer"  # connection refused or reset, a timeout
    CLIENT = "client"  # the client library refused the request before sending it
    OTHER = "other"  # anything else: a bug


def classify(source: Source, code: int | None) -> Verdict:
    """What the sink does about a failure from `source` with ClickHouse error `code`."""
    if source is Source.SERVER and code is not None:
        return Verdict.RETRY if code in RETRYABLE_CODES else Verdict.REFUSED
    if source in (Source.SERVER, Source.NO_ANSWER):
        # No code: no answer at all, or an HTTP error from a proxy in front of ClickHouse (502,
        # 503): both pass.
        return Verdict.RETRY
    if source is Source.CLIENT:  # e.g. a value the Native format cannot encode
        return Verdict.REFUSED
    return Verdict.BUG


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = CODE_IN_TEXT.search(str(exc))
    return int(found.group(1)) if found else None


def source_of(exc: BaseException) -> Source:
    if isinstance(exc, OperationalError):  # the server's error, or the request's failure
        return Source.SERVER if error_code(exc) is not None else Source.NO_ANSWER
    if isinstance(exc, CLIENT_ERRORS):
        return Source.CLIENT
    if isinstance(exc, DatabaseError):
        return Source.SERVER
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return Source.NO_ANSWER
    return Source.OTHER


def verdict(exc: BaseException) -> Verdict:
    """The verdict on an exception raised by a clickhouse-connect call."""
    return classify(source_of(exc), error_code(exc))
