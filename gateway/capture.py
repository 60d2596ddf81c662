"""Turn an aiohttp request into a `RawHit`: byte-faithful, parsing nothing it need not."""

from __future__ import annotations

import time
import uuid

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
    return uuid.uuid4().hex


async def capture(request: web.Request, kind: str, max_body: int) -> RawHit:
    """The request as a raw hit. A body over `max_body` is cut and marked for the dead letters."""
    headers = {name: value for name in KEPT_HEADERS if (value := request.headers.get(name))}
    body = b""
    if request.can_read_body:
        body = await request.content.read(max_body + 1)
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
