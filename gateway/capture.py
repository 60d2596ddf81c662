"""Turn an aiohttp request into a `RawHit`: byte-faithful, parsing nothing it need not."""

from __future__ import annotations

import os
import time

from aiohttp import web

from schemas.rawhit import REJECT_HEADER, RawHit

KEPT_HEADERS = (
    "host",
    "user-agent",
    "referer",
    "origin",
    "cookie",
    "content-type",
    "accept",
    "x-forwarded-for",
    "accept-language",
)


def new_hit_id() -> str:
    """A random (version 4) UUID as 32 hex digits, as `uuid.uuid4().hex` without the UUID object
    (a visible share of the request on the gateway's profile)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


async def read_body(request: web.Request, limit: int) -> bytes:
    """Up to `limit` bytes of the body. `StreamReader.read(n)` returns what has arrived so far,
    not n bytes: a body in several TCP segments needs reads until the end (found by the fuzzer:
    a body was cut at its first segment). A client that closes before its body is complete never
    gets here: aiohttp cancels the handler, nothing is published and nothing is answered."""
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := await request.content.read(limit - size)):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def capture(request: web.Request, kind: str, max_body: int) -> RawHit:
    """The request as a raw hit. A body over `max_body` is cut and marked for the dead letters."""
    headers = {name: value for name in KEPT_HEADERS if (value := request.headers.get(name))}
    body = b""
    if request.can_read_body:
        body = await read_body(request, max_body + 1)
        if len(body) > max_body:
            headers[REJECT_HEADER] = f"body_too_large: more than {max_body} bytes"
            body = body[:max_body]
    return RawHit(
        hit_id=new_hit_id(),
        kind=kind,
        received_at_ms=time.time_ns() // 1_000_000,
        method=request.method,
        path=request.path,
        query=request.rel_url.raw_query_string,
        headers=headers,
        body=body,
        remote_addr=request.remote or "",
    )
