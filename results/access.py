"""Who may read results: the read key (`HITS_RESULTS_KEY`) unless the server is bound to loopback.

`refusal` is the decision, pure: with a key set, every request must present it; without one,
a server bound to loopback answers anyone who can reach it (the machine's own users), and a
server bound elsewhere answers nobody (403), so results are never public by accident. The key
is presented as the `X-Results-Key` header, `Authorization: Bearer <key>`, `?key=<key>` or the
`hits_results_key` cookie; a page opened with a right `?key=` sets that cookie (HttpOnly,
SameSite=Strict) and redirects to the address without the key, so links on the page work and the
key leaves the address bar. Keys are compared with `hmac.compare_digest`.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

COOKIE = "hits_results_key"
HEADER = "X-Results-Key"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int  # 401: no key presented, 403: a wrong key, or no key configured off loopback
    message: str


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for 0.0.0.0, :: and any other name."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal(expected: str, loopback: bool, presented: str | None) -> Refusal | None:
    """None when the request may read results, else why not."""
    if not expected:
        if loopback:
            return None
        return Refusal(
            403,
            "results are not served off loopback without a read key: set HITS_RESULTS_KEY "
            "on the server (or bind it to 127.0.0.1)",
        )
    if not presented:
        return Refusal(
            401,
            f"a read key is required: send the {HEADER} header, Authorization: Bearer <key>, "
            "or open the page once with ?key=<key>",
        )
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        return Refusal(403, "the read key is wrong")
    return None


def presented_key(request: web.Request) -> str | None:
    """The key the request carries: header, bearer token, query, then cookie."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    for candidate in (
        request.headers.get(HEADER),
        token.strip() if scheme.lower() == "bearer" else None,
        request.query.get("key"),
        request.cookies.get(COOKIE),
    ):
        if candidate:
            return candidate
    return None


def middleware(expected: str, loopback: bool) -> Middleware:
    """The aiohttp middleware that applies `refusal` to every request."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refusal(expected, loopback, presented_key(request))
        if refused is not None:
            headers = {"Cache-Control": "no-store"}
            if refused.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="hitstream results"'
            return web.Response(status=refused.status, text=refused.message + "\n", headers=headers)
        if expected and "key" in request.query and not request.path.startswith("/api/"):
            location = str(request.rel_url.without_query_params("key"))
            response = web.Response(status=303, headers={"Location": location})
            response.set_cookie(
                COOKIE, expected, httponly=True, samesite="Strict", secure=request.secure, path="/"
            )
            return response
        return await handler(request)

    return check
