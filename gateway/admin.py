"""The gateway's admin API: Monetate event definitions, behind `HITS_ADMIN_KEY`.

    GET    /admin/monetate/definitions[?site=S]     {"definitions": [...]}
    GET    /admin/monetate/definitions/{site}/{key} the definition, 404 when none
    PUT    /admin/monetate/definitions/{site}/{key} body: a definition (JSON, version 1; site
                                                    and key may be omitted, else must match)
    DELETE /admin/monetate/definitions/{site}/{key} 204, 404 when none

Every route answers 404 while `admin_key` is "" (the API is off), 401 without the key
(`Authorization: Bearer <key>` or `X-Admin-Key: <key>`, compared with `hmac.compare_digest`).
Invalid definitions: 422 `{"problems": [{"code", "where", "message"}]}`. ClickHouse is written
through `deploy.clickhouse_client.connect` in a thread; it being away gives 503.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web
from clickhouse_connect.driver.client import Client

from deploy import event_definitions as store
from deploy.clickhouse_client import connect
from gateway.keys import SETTINGS
from schemas import monetate_definitions as defs

log = logging.getLogger(__name__)
PREFIX = "/admin/monetate/definitions"
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    app.router.add_get(PREFIX, list_definitions)
    app.router.add_get(PREFIX + "/{site}/{key}", get_definition)
    app.router.add_put(PREFIX + "/{site}/{key}", put_definition)
    app.router.add_delete(PREFIX + "/{site}/{key}", delete_definition)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _refusal(request: web.Request) -> web.Response | None:
    expected = request.app[SETTINGS].admin_key
    if not expected:
        return _json({"error": "not found"}, 404)
    given = request.headers.get("X-Admin-Key", "")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        given = given or token.strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return _json({"error": "admin key missing or wrong"}, 401)
    return None


async def _with_client(request: web.Request, work: Callable[[Client], T]) -> T:
    settings = request.app[SETTINGS]

    def run() -> T:
        client = connect(settings)
        try:
            return work(client)
        finally:
            client.close()

    return await asyncio.to_thread(run)


def _problems(invalid: defs.Invalid) -> web.Response:
    return _json(
        {
            "problems": [
                {"code": p.code, "where": p.where, "message": p.message} for p in invalid.problems
            ]
        },
        422,
    )


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    refused = _refusal(request)
    if refused is not None:
        return refused
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:  # ClickHouse away or refusing: the operator retries
        log.warning("admin %s %s failed: %s", request.method, request.path, exc)
        return _json({"error": "the definitions store is unavailable"}, 503)


async def list_definitions(request: web.Request) -> web.StreamResponse:
    async def handle(request: web.Request) -> web.StreamResponse:
        site = request.query.get("site")
        good, _bad = await _with_client(request, lambda c: store.load(c, site))
        return _json({"definitions": [defs.to_dict(d) for d in good]})

    return await _guarded(request, handle)


async def get_definition(request: web.Request) -> web.StreamResponse:
    async def handle(request: web.Request) -> web.StreamResponse:
        site, key = request.match_info["site"], request.match_info["key"]
        found = await _with_client(request, lambda c: store.get(c, site, key))
        if found is None:
            return _json({"error": "no such definition"}, 404)
        return _json(defs.to_dict(found))

    return await _guarded(request, handle)


async def put_definition(request: web.Request) -> web.StreamResponse:
    async def handle(request: web.Request) -> web.StreamResponse:
        site, key = request.match_info["site"], request.match_info["key"]
        try:
            obj = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _problems(defs.Invalid((defs.Problem("bad_json", "", str(exc)[:200]),)))
        if isinstance(obj, dict):
            mismatched = [n for n, v in (("site", site), ("key", key)) if obj.get(n, v) != v]
            if mismatched:
                return _problems(
                    defs.Invalid(
                        tuple(
                            defs.Problem("path_mismatch", n, "differs from the URL")
                            for n in mismatched
                        )
                    )
                )
            obj = {"v": defs.VERSION, **obj, "site": site, "key": key}
        definition = defs.from_dict(obj)
        if isinstance(definition, defs.Invalid):
            return _problems(definition)
        await _with_client(request, lambda c: store.save(c, definition))
        return _json(defs.to_dict(definition))

    return await _guarded(request, handle)


async def delete_definition(request: web.Request) -> web.StreamResponse:
    async def handle(request: web.Request) -> web.StreamResponse:
        site, key = request.match_info["site"], request.match_info["key"]
        removed = await _with_client(request, lambda c: store.remove(c, site, key))
        return web.Response(status=204) if removed else _json({"error": "no such definition"}, 404)

    return await _guarded(request, handle)
