"""`RawHit`: the envelope of `hits.raw`, written by the gateway and by direct producers.

Wire form (version 1), one JSON object per Kafka message, key `<tenant>:<visitor>` when known:

    {"v": 1, "hit_id": "...", "kind": "optimizely"|"monetate"|"octeth"|"native",
     "received_at_ms": 1700000000000, "method": "GET", "path": "/event",
     "query": "a=1&u=v1", "headers": {"host": "...", "user-agent": "..."},
     "body_b64": "", "remote_addr": "203.0.113.9"}

The query string and body are kept byte-faithful (the body base64-encoded), so a parser fix can
be replayed over the raw topic. Decoding never raises on bad input: it returns a reason code.

Headers are bytes on the wire, and clients do send bytes that are not UTF-8 (Latin-1 user agents,
broken cookies). aiohttp hands such a value over as `str` with surrogate escapes (PEP 383: each
undecodable byte b becomes U+DC00+b), which JSON cannot hold. Such a header goes, instead of into
`headers`, into the optional `"headers_b64": {"user-agent": "<base64 of the bytes received>"}`;
`decode` turns it back into the same surrogate-escaped `str` in `RawHit.headers`, so the round
trip is exact and the bytes stay replayable. A reader of version 1 that predates `headers_b64`
ignores it (those headers read as absent). Parsers read headers through `RawHit.text`, which
gives U+FFFD for such bytes, and `RawHit.not_utf8`, to flag the event.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.querystring import clean_text, to_bytes

VERSION = 1
KINDS = frozenset({"optimizely", "monetate", "octeth", "native"})
MAX_HIT_ID = 128
# Set by the gateway on a hit it could not keep as sent ("<reason>: <detail>"), e.g. a body over
# the size limit; the validate stage turns such a hit into a dead letter of stage "gateway".
REJECT_HEADER = "x-hitstream-reject"


@dataclass(frozen=True, slots=True, kw_only=True)
class RawHit:
    hit_id: str
    kind: str
    received_at_ms: int
    method: str = "GET"
    path: str = ""
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    remote_addr: str = ""

    def header(self, name: str) -> str:
        """The header as received: bytes that are not UTF-8 are surrogate escapes."""
        return self.headers.get(name, "")

    def text(self, name: str) -> str:
        """The header as text that always encodes: bytes that are not UTF-8 become U+FFFD."""
        return clean_text(self.headers.get(name, ""))

    def not_utf8(self, *names: str) -> bool:
        """Whether any of these headers held bytes that are not UTF-8 (for a parser's flag)."""
        return any(clean_text(value) != value for value in map(self.header, names))


def encode(hit: RawHit) -> bytes:
    envelope = {
        "v": VERSION,
        "hit_id": hit.hit_id,
        "kind": hit.kind,
        "received_at_ms": hit.received_at_ms,
        "method": hit.method,
        "path": hit.path,
        "query": hit.query,
        "headers": hit.headers,
        "body_b64": base64.b64encode(hit.body).decode("ascii"),
        "remote_addr": hit.remote_addr,
    }
    try:
        return orjson.dumps(envelope)
    except TypeError:  # a header (or another text field) holds a surrogate: rare, so checked late
        return orjson.dumps({**envelope, **_split_headers(hit.headers), **_texts(hit)})


def _split_headers(headers: dict[str, str]) -> dict[str, dict[str, str]]:
    """`headers` (text that is UTF-8) and `headers_b64` (the bytes of every other header)."""
    text: dict[str, str] = {}
    raw: dict[str, str] = {}
    for name, value in headers.items():
        if clean_text(value) == value:
            text[name] = value
        else:
            raw[clean_text(name)] = base64.b64encode(to_bytes(value)).decode("ascii")
    return {"headers": text, "headers_b64": raw}


def _texts(hit: RawHit) -> dict[str, str]:
    """The other text fields made encodable (the gateway fills them with ASCII; a direct
    producer's lone surrogate becomes U+FFFD rather than an exception)."""
    return {
        name: clean_text(getattr(hit, name))
        for name in ("hit_id", "kind", "method", "path", "query", "remote_addr")
    }


class RawHitError(ValueError):
    """A raw message is not a valid v1 envelope; `reason` is a stable dead-letter code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode(data: bytes) -> RawHit:
    """Decode one `hits.raw` message; raises `RawHitError` with a reason code when invalid."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RawHitError("envelope_not_json", str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise RawHitError("envelope_not_object", type(obj).__name__)
    if obj.get("v") != VERSION:
        raise RawHitError("envelope_version", f"unsupported envelope version {obj.get('v')!r}")
    hit_id, kind, received = obj.get("hit_id"), obj.get("kind"), obj.get("received_at_ms")
    if not isinstance(hit_id, str) or not 0 < len(hit_id) <= MAX_HIT_ID:
        raise RawHitError("envelope_hit_id", "hit_id must be a non-empty string")
    if not isinstance(kind, str) or kind not in KINDS:  # a list or object is no kind either
        raise RawHitError("envelope_kind", f"unknown kind {kind!r}")
    if not isinstance(received, int) or isinstance(received, bool) or received < 0:
        raise RawHitError("envelope_received_at", "received_at_ms must be a non-negative int")
    headers = obj.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise RawHitError("envelope_headers", "headers must map strings to strings")
    raw_headers = _raw_headers(obj.get("headers_b64", {}))
    if isinstance(raw_headers, RawHitError):
        raise raw_headers
    strings = {
        name: obj.get(name, "") for name in ("method", "path", "query", "body_b64", "remote_addr")
    }
    bad = [name for name, value in strings.items() if not isinstance(value, str)]
    if bad:
        raise RawHitError("envelope_field_type", f"{', '.join(bad)} must be strings")
    try:
        body = base64.b64decode(strings["body_b64"], validate=True)
    except (binascii.Error, ValueError):
        raise RawHitError("envelope_body", "body_b64 is not base64") from None
    return RawHit(
        hit_id=hit_id,
        kind=kind,
        received_at_ms=received,
        method=strings["method"],
        path=strings["path"],
        query=strings["query"],
        headers={**headers, **raw_headers},
        body=body,
        remote_addr=strings["remote_addr"],
    )


def _raw_headers(value: object) -> dict[str, str] | RawHitError:
    """`headers_b64` as header text with surrogate escapes (as aiohttp hands them over)."""
    if not isinstance(value, dict):
        return RawHitError("envelope_headers", "headers_b64 must map strings to base64")
    out: dict[str, str] = {}
    for name, encoded in value.items():
        if not isinstance(name, str) or not isinstance(encoded, str):
            return RawHitError("envelope_headers", "headers_b64 must map strings to base64")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return RawHitError("envelope_headers", f"headers_b64[{name!r}] is not base64")
        out[name] = data.decode("utf-8", "surrogateescape")
    return out


def as_json_text(data: bytes) -> str:
    """The raw message as text for a dead letter: UTF-8 when it is, else escaped bytes."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="backslashreplace")


def to_dict(hit: RawHit) -> dict[str, Any]:
    return orjson.loads(encode(hit))  # type: ignore[no-any-return]
