"""Beacon endpoints (Optimizely `GET|POST /event`): always 200, empty or a 1x1 GIF, no-store.

`publish_beacon` is shared with the Monetate tag's endpoint (gateway/monetate.py).

Whatever arrives is published; what cannot be used becomes a dead letter downstream. The 200
goes out once Kafka has acknowledged the hit, or once the local spool has it on disk.
"""

from __future__ import annotations

import base64
import logging
import time

from aiohttp import web

from gateway import metrics
from gateway.capture import capture
from gateway.keys import DELIVERY, SETTINGS
from gateway.spool import SpoolFull
from schemas import optimizely, rawhit
from schemas.topics import RAW

log = logging.getLogger(__name__)

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache"}


def cors_headers(request: web.Request) -> dict[str, str]:
    """Let any page send: echo its origin (credentialed sendBeacon needs that), else `*`."""
    origin = request.headers.get("Origin")
    if not origin:
        return {"Access-Control-Allow-Origin": "*"}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def beacon_response(request: web.Request) -> web.Response:
    headers = {**NO_STORE, **cors_headers(request)}
    if "image/" in request.headers.get("Accept", ""):
        return web.Response(body=GIF, content_type="image/gif", headers=headers)
    return web.Response(status=200, headers=headers)


async def preflight(request: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            **cors_headers(request),
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get(
                "Access-Control-Request-Headers", "Content-Type"
            ),
            "Access-Control-Max-Age": "86400",
        },
    )


async def optimizely_event(request: web.Request) -> web.Response:
    started = time.perf_counter()
    settings = request.app[SETTINGS]
    hit = await capture(request, "optimizely", settings.max_body_bytes)
    key = optimizely.partition_key(
        hit.query, hit.header("host"), body=hit.body if hit.method == "POST" else b""
    )
    return await publish_beacon(request, hit, key, started)


async def publish_beacon(
    request: web.Request, hit: rawhit.RawHit, key: bytes, started: float
) -> web.Response:
    """Publish a captured beacon hit (kind `hit.kind`) keyed by `key`; always the beacon 200.

    `started`: `time.perf_counter()` when the request arrived (the latency histogram).
    """
    kind = hit.kind
    settings = request.app[SETTINGS]
    # A hit without a visitor is keyed by its hit id, never left to the random partitioner: a
    # copy that reaches Kafka twice (a timed-out publish that landed, then the spool) must land in
    # the same partition, where the pipeline's hit-id dedup sees both (pipeline/seen.py).
    key = key or hit.hit_id.encode()
    try:
        where = await request.app[DELIVERY].deliver(settings.topic(RAW), rawhit.encode(hit), key)
        metrics.hits(kind, where).inc()
    except (SpoolFull, OSError) as exc:
        metrics.hits(kind, "dropped").inc()
        metrics.SPOOL_DROPS.inc()
        log.error(
            "hit %s dropped: Kafka is away and the spool cannot keep it (%s)", hit.hit_id, exc
        )
    metrics.latency(kind).observe(time.perf_counter() - started)
    return beacon_response(request)
