"""The gateway's app factory: routes, the Kafka publisher as a cleanup context, health, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import beacons
from gateway.keys import PUBLISHER, SETTINGS
from gateway.publisher import KafkaPublisher
from schemas.settings import Settings


def create_app(settings: Settings, publisher: KafkaPublisher | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[PUBLISHER] = publisher or KafkaPublisher(settings)
    app.cleanup_ctx.append(_publisher_ctx)
    app.router.add_get("/event", beacons.optimizely_event)
    app.router.add_post("/event", beacons.optimizely_event)
    app.router.add_route("OPTIONS", "/event", beacons.preflight)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def _publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    publisher = app[PUBLISHER]
    await publisher.start()
    yield
    await publisher.stop()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready = request.app[PUBLISHER].started
    return web.json_response(
        {"status": "ready" if ready else "starting", "kafka": ready}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
