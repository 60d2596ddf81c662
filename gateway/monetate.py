"""Monetate tag endpoints: `POST /monetate/collect` (beacons) and `GET /monetate/tag.js`.

A beacon is answered like every beacon (`gateway.beacons`: always 200, no-store, CORS) and
published as a RawHit of kind "monetate", keyed by `schemas.monetate.partition_key` (tenant:
visitor, like every event downstream). The parser judges the body, never the gateway.
"""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import web

from gateway.beacons import publish_beacon
from gateway.capture import capture
from gateway.keys import SETTINGS
from schemas import monetate

TAG = Path(__file__).parent / "static" / "monetate-tag.js"
TAG_CACHE = "public, max-age=300"


async def collect(request: web.Request) -> web.Response:
    started = time.perf_counter()
    hit = await capture(request, monetate.SOURCE, request.app[SETTINGS].max_body_bytes)
    return await publish_beacon(request, hit, monetate.partition_key(hit.body), started)


async def tag(request: web.Request) -> web.Response:
    return web.Response(
        body=TAG.read_bytes(),
        headers={
            "Content-Type": "application/javascript; charset=utf-8",
            "Cache-Control": TAG_CACHE,
            "Access-Control-Allow-Origin": "*",
        },
    )
