"""Experiment results over HTTP: `python -m results.web [--host 127.0.0.1] [--port 8090]`.

GET /                                  the tenants (straight to the one when there is one)
GET /results/{tenant}                  its experiments: name, status, days running, exposed
                                       visitors, sample-ratio badge, link to the results
GET /results/{tenant}/{experiment}?... the experiment page: health banner, freshness, a slice
                                       form, per goal the lift bars and the frequentist,
                                       sequential and Bayesian figures, the daily chart
GET /api/results, /api/results/{tenant}    the same indexes as JSON
GET /api/results/{tenant}/{experiment}?goal=G&slice=key=value&include_bots=1&include_multi=1
        &alpha=0.05&correction=holm|bh|none&prior_sd=0.3&target_lift=0.05&power=0.8
        &cap_cents=50000&cap_percentile=0.99&by=device_type&top=5&live=1
    the JSON document of `hitstream results --json` (defaults: the HITS_RESULTS_* settings)
    plus `freshness` (the age of the tenant's newest stored hit); the page shows these numbers.
    Its `source` says whether they come from the results snapshot (taken every few minutes, and
    when) or, with live=1 or before the first snapshot, from the live aggregates.

Every route needs the read key HITS_RESULTS_KEY unless the server is bound to loopback and no
key is set (results/access.py). ClickHouse comes from the HITS_* settings.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from clickhouse_connect.driver.client import Client

from deploy.clickhouse_client import connect
from results import access, catalog, overview, page
from results import listing as listing_page
from results.access import is_loopback
from results.analysis import Options
from results.html import path_of
from results.query import Filters, read, read_slices, reading
from results.report import analyse, to_json
from schemas.settings import Settings, load_settings

SETTINGS = web.AppKey("settings", Settings)
CLIENT = web.AppKey("client", Client)
_TRUE = {"1", "true", "yes", "on"}


def _float(query: Any, name: str) -> float | None:
    return float(query[name]) if name in query else None


def filters_from(query: Any, settings: Settings) -> tuple[Filters, Options]:
    """Filters and options from the query string; ValueError when one is malformed."""
    goals = tuple(g for value in query.getall("goal", []) for g in value.split(",") if g)
    options = Options.from_settings(
        settings, alpha=_float(query, "alpha"), correction=query.get("correction"),
        prior_sd=_float(query, "prior_sd"), target_lift=_float(query, "target_lift"),
        power=_float(query, "power"), by=query.get("by"),
        top=int(query["top"]) if "top" in query else None,
        live=query.get("live", "").lower() in _TRUE,
    )  # fmt: skip
    options.check()
    filters = Filters.parse_slices(
        query.getall("slice", []),
        goals=goals,
        include_bots=query.get("include_bots", "").lower() in _TRUE,
        include_multi=query.get("include_multi", "").lower() in _TRUE,
        cap_cents=int(query.get("cap_cents", 0)),
        cap_percentile=float(query.get("cap_percentile", 0)),
    )
    return filters, options


def _filters(request: web.Request) -> tuple[Filters, Options]:
    try:
        return filters_from(request.query, request.app[SETTINGS])
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def report(
    client: Client, tenant: str, experiment: str, filters: Filters, options: Options
) -> dict[str, Any]:
    """The experiment's results document with the tenant's freshness: what the API serves."""
    where = reading(client, options.live)
    aggregates = read(client, tenant, experiment, filters, where.source)
    by = None
    if options.by:
        by = read_slices(client, tenant, experiment, filters, options.by, where.source)
    document = analyse(aggregates, filters, options, by)
    now = _now()
    document["source"] = where.as_dict(now)
    document["freshness"] = overview.freshness(catalog.freshness(client, tenant), now)
    return document


def listing(client: Client, tenant: str, experiment: str = "") -> dict[str, Any]:
    """A tenant's experiments (or the one named) as index rows, with the tenant's freshness."""
    now = _now()
    return {
        "tenant": tenant,
        "freshness": overview.freshness(catalog.freshness(client, tenant), now),
        "experiments": [
            overview.summarize(item, now)
            for item in catalog.experiments(client, tenant, experiment)
        ],
    }


def tenants(client: Client) -> dict[str, Any]:
    found = catalog.tenants(client)
    return {"tenants": [{"tenant": t, "experiments": n} for t, n in found.items()]}


def _json(document: dict[str, Any]) -> web.Response:
    return web.Response(
        body=to_json(document), content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )  # fmt: skip


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


async def api(request: web.Request) -> web.Response:
    filters, options = _filters(request)
    tenant, experiment = request.match_info["tenant"], request.match_info["experiment"]
    client = request.app[CLIENT]
    return _json(await asyncio.to_thread(report, client, tenant, experiment, filters, options))


async def experiment_page(request: web.Request) -> web.Response:
    filters, options = _filters(request)
    tenant, experiment = request.match_info["tenant"], request.match_info["experiment"]
    client = request.app[CLIENT]

    def gather() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, list[str]]]:
        document = report(client, tenant, experiment, filters, options)
        rows = listing(client, tenant, experiment)["experiments"]
        return document, rows, catalog.dimension_values(client, tenant, experiment)

    document, rows, dimensions = await asyncio.to_thread(gather)
    query = urlencode([(k, v) for k, v in request.query.items() if k != "key"])
    return _html(page.render(document, rows[0] if rows else None, dimensions, query))


async def tenant_api(request: web.Request) -> web.Response:
    tenant = request.match_info["tenant"]
    return _json(await asyncio.to_thread(listing, request.app[CLIENT], tenant))


async def tenant_page(request: web.Request) -> web.Response:
    tenant = request.match_info["tenant"]
    return _html(
        listing_page.tenant_page(await asyncio.to_thread(listing, request.app[CLIENT], tenant))
    )


async def tenants_api(request: web.Request) -> web.Response:
    return _json(await asyncio.to_thread(tenants, request.app[CLIENT]))


async def tenants_page(request: web.Request) -> web.Response:
    """Every tenant; straight to the experiments when there is only one."""
    document = await asyncio.to_thread(tenants, request.app[CLIENT])
    if len(document["tenants"]) == 1:
        raise web.HTTPFound(path_of("results", document["tenants"][0]["tenant"]))
    return _html(listing_page.tenants_page(document))


def make_app(settings: Settings, host: str = "127.0.0.1") -> web.Application:
    """The results app as served on `host` (the read key is optional only on loopback)."""
    app = web.Application(middlewares=[access.middleware(settings.results_key, is_loopback(host))])
    app[SETTINGS] = settings

    async def clickhouse(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = await asyncio.to_thread(connect, app[SETTINGS])
        yield
        app[CLIENT].close()

    app.cleanup_ctx.append(clickhouse)
    app.router.add_get("/", tenants_page)
    app.router.add_get("/api/results", tenants_api)
    app.router.add_get("/api/results/{tenant}", tenant_api)
    app.router.add_get("/api/results/{tenant}/{experiment}", api)
    app.router.add_get("/results/{tenant}", tenant_page)
    app.router.add_get("/results/{tenant}/{experiment}", experiment_page)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m results.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    web.run_app(
        make_app(load_settings(), args.host), host=args.host, port=args.port, access_log=None
    )


if __name__ == "__main__":
    main()
