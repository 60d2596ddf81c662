"""The mark of a deliberate copy in `hits.raw`: a replay or a dead-letter re-drive.

`hitstream replay` and `hitstream dlq redrive` publish a raw message again with the Kafka header
`hitstream-replay-of: <partition>@<offset>` (where the original is). The validate stage lets such
a copy through its hit-id dedup (`pipeline.seen` drops accidental second copies of a hit), so it
is parsed again; the rows it gives keep their stable ids and replace the original's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

HEADER = "hitstream-replay-of"


def header(partition: int, offset: int) -> tuple[str, bytes]:
    return HEADER, f"{partition}@{offset}".encode()


def replay_of(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> str | None:
    """The `partition@offset` a message copies, or None for an ordinary raw message."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == HEADER and value:
            return bytes(value).decode("ascii", errors="replace")
    return None
