"""The gateway's app factory: routes, the Kafka publisher as a cleanup context, health, metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import admin, beacons, monetate, octeth
from gateway.delivery import Delivery
from gateway.keys import DELIVERY, PUBLISHER, SETTINGS
from gateway.publisher import KafkaPublisher
from gateway.spool import Spool
from schemas.settings import Settings


def create_app(settings: Settings, publisher: KafkaPublisher | None = None) -> web.Application:
    # aiohttp answers 400 itself, before any handler, to a request line or header over 8190
    # bytes: a beacon with a long query (too_many_parameters, long values) or a big cookie would
    # be lost instead of answered 200 and dead-lettered. Allow what a body may carry.
    lines = max(8190, settings.max_body_bytes)
    app = web.Application(
        client_max_size=settings.max_body_bytes + 1,
        handler_args={"max_line_size": lines, "max_field_size": lines},
    )
    app[SETTINGS] = settings
    app[PUBLISHER] = publisher = publisher or KafkaPublisher(settings)
    app[DELIVERY] = Delivery(publisher, Spool(Path(settings.spool_dir), settings.spool_max_bytes))
    app.cleanup_ctx.append(_publisher_ctx)
    app.router.add_get("/event", beacons.optimizely_event)
    app.router.add_post("/event", beacons.optimizely_event)
    app.router.add_route("OPTIONS", "/event", beacons.preflight)
    app.router.add_post("/monetate/collect", monetate.collect)
    app.router.add_route("OPTIONS", "/monetate/collect", beacons.preflight)
    app.router.add_get("/monetate/tag.js", monetate.tag)
    octeth.add_routes(app)
    admin.add_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def _publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Kafka producer, spool and drainer: up before the first request, down after the last."""
    publisher, delivery = app[PUBLISHER], app[DELIVERY]
    await publisher.start()
    drainer = asyncio.create_task(delivery.drain_forever())
    yield
    drainer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await drainer
    await publisher.stop()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready while hits can be kept: through Kafka, or in the spool while it has room."""
    delivery = request.app[DELIVERY]
    kafka = request.app[PUBLISHER].started and not delivery.spooling
    spool_ok = not delivery.spool.full()
    body = {"kafka": kafka, "spool_ok": spool_ok, "spooled": delivery.spool.records}
    ready = spool_ok and request.app[PUBLISHER].started
    return web.json_response(
        {"status": "ready" if ready else "not ready", **body}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
