"""Octeth Event Tracking API: `POST /api/v1/event` and `POST /api/v1/website_events.properties`.

Unlike beacons, Octeth answers only once Kafka has acknowledged the hit (no spool): a hit that
cannot be stored now is refused with 503 code 104 and `Retry-After`, and the client retries.
Checks, in order: size (413, code 105), body and credential (400 102, 401 100), registry (401
101), per-credential rate (429 103 with `Retry-After`), then the parser (`schemas.octeth`, the
same one the pipeline re-reads the hit with: 422 with every code that applies). Every non-200
answer is the `{"Errors":[...]}` envelope. Bodies and credentials are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from aiohttp import web

from deploy.clickhouse_client import connect
from gateway import metrics
from gateway.capture import capture
from gateway.keys import PUBLISHER, SETTINGS
from gateway.octeth_registry import OctethRegistry, digest
from gateway.publisher import PublishError
from gateway.ratelimit import TokenBucket
from schemas import octeth, rawhit
from schemas.octeth import MINTED_UUID_HEADER, Credential, OctethErrors
from schemas.octeth import messages as codes
from schemas.octeth.vocabulary import SOURCE
from schemas.topics import RAW

log = logging.getLogger(__name__)
T = TypeVar("T")

REGISTRY = web.AppKey("octeth_registry", OctethRegistry)
LIMITER = web.AppKey("octeth_limiter", TokenBucket)
RETRY_AFTER_UNAVAILABLE = "2"
JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store"}


def add_routes(app: web.Application) -> None:
    """Routes, the registry (refreshed in the background) and the rate limiter.

    Tests may replace `app[REGISTRY]` with an in-memory registry before the app starts."""
    settings = app[SETTINGS]
    app[REGISTRY] = OctethRegistry(lambda: connect(settings))
    app[LIMITER] = TokenBucket(settings.octeth_rate_per_minute)
    app.cleanup_ctx.append(_registry_ctx)
    app.router.add_post("/api/v1/event", event)
    app.router.add_post("/api/v1/website_events.properties", properties)


async def _registry_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[REGISTRY].refresh_forever())  # first read at once
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def refuse(errors: OctethErrors, retry_after: str | None = None) -> web.Response:
    headers = dict(NO_STORE)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return web.Response(
        status=errors.status, body=errors.body(), content_type=JSON, headers=headers
    )


def ok(body: bytes) -> web.Response:
    return web.Response(status=200, body=body, content_type=JSON, headers=NO_STORE)


async def _read(request: web.Request) -> rawhit.RawHit | web.Response:
    """The request as a raw hit, or the 413 answer."""
    limit = request.app[SETTINGS].max_body_bytes
    if (request.content_length or 0) > limit:
        return refuse(OctethErrors.of([codes.BODY_TOO_LARGE]))
    hit = await capture(request, SOURCE, limit)
    if hit.header(rawhit.REJECT_HEADER):
        return refuse(OctethErrors.of([codes.BODY_TOO_LARGE]))
    return hit


def _admit(request: web.Request, body: bytes) -> tuple[str, Credential] | web.Response:
    """(account, credential) of a known, not rate-limited credential, or the refusal."""
    credential = octeth.read_credential(body, lenient=request.app[SETTINGS].octeth_lenient_json)
    if isinstance(credential, OctethErrors):
        return refuse(credential)
    account = request.app[REGISTRY].account(credential.kind, credential.value)
    if account is None:
        return refuse(OctethErrors.of([codes.UNKNOWN_CREDENTIAL]))
    wait = request.app[LIMITER].take(f"{credential.kind}:{digest(credential.value)}")
    if wait > 0:
        return refuse(OctethErrors.of([codes.RATE_LIMITED]), TokenBucket.retry_after(wait))
    return account, credential


async def _accepted(
    request: web.Request, validate: Callable[..., T | OctethErrors]
) -> tuple[rawhit.RawHit, T] | web.Response:
    """The request as a raw hit and its body as `validate` reads it (with the lists the
    credential's account may use), or the refusal: body too large, unknown credential, rate
    limited, or what `validate` refused."""
    hit = await _read(request)
    if isinstance(hit, web.Response):
        return hit
    admitted = _admit(request, hit.body)
    if isinstance(admitted, web.Response):
        return admitted
    lists = request.app[REGISTRY].lists(admitted[0])
    lenient = request.app[SETTINGS].octeth_lenient_json
    result = validate(hit.body, lenient=lenient, lists=lists.__contains__)
    if isinstance(result, OctethErrors):
        return refuse(result)
    return hit, result


async def event(request: web.Request) -> web.Response:
    started = time.perf_counter()
    accepted = await _accepted(request, octeth.validate_event)
    if isinstance(accepted, web.Response):
        return accepted
    hit, result = accepted
    settings = request.app[SETTINGS]
    visitor = result.uuid
    if visitor is None:
        visitor = str(uuid.uuid4())
        hit = dataclasses.replace(hit, headers={**hit.headers, MINTED_UUID_HEADER: visitor})
    key = octeth.partition_key(result, visitor)
    try:
        await request.app[PUBLISHER].publish(settings.topic(RAW), rawhit.encode(hit), key)
    except PublishError as exc:
        metrics.HITS.labels(SOURCE, "refused").inc()
        log.warning(
            "octeth hit %s refused: Kafka did not acknowledge it (%s)",
            hit.hit_id,
            exc,
            extra={"hit_id": hit.hit_id},
        )
        return refuse(OctethErrors.of([codes.CANNOT_STORE]), RETRY_AFTER_UNAVAILABLE)
    metrics.HITS.labels(SOURCE, "kafka").inc()
    metrics.LATENCY.labels(SOURCE).observe(time.perf_counter() - started)
    return ok(codes.success_body(visitor, result.external_id, result.identify_event_sent))


async def properties(request: web.Request) -> web.Response:
    accepted = await _accepted(request, octeth.validate_properties_request)
    if isinstance(accepted, web.Response):
        return accepted
    result, registry = accepted[1], request.app[REGISTRY]
    try:
        found = await registry.properties(result.list_id)
    except Exception as exc:
        log.warning("octeth properties of list %d not read: %s", result.list_id, exc)
        return refuse(OctethErrors.of([codes.CANNOT_STORE]), RETRY_AFTER_UNAVAILABLE)
    return ok(codes.properties_body(result.list_id, found))
