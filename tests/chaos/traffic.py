"""What the chaos suite sends, and the reference model of what ClickHouse must then hold.

Logical hit i (0 <= i < n) is one of: an Optimizely impression or conversion, a Monetate event,
or a deliberately bad hit (an Optimizely hit without a visitor, a Monetate body that is not JSON).
Every HTTP attempt carries its own tag `s1=<i>a<attempt>` in the query: the Optimizely parser
keeps it as `dimensions['1']`, a Monetate event as `properties['attempt']`, and a dead letter's
raw message holds the query verbatim. So each row in ClickHouse names the attempt it came from,
and the reconciliation is exact per attempt, not only per count.

An attempt that fails (connection refused or reset, a timeout, a non-200) is retried as a new
attempt of the same logical hit (same fingerprint, new tag); some logical hits are also resent
once after their 200, as a client retry. The pipeline must store every accepted attempt once,
and count each logical hit once (retries get `duplicate_of`, no impression or conversion).
An attempt that got no answer may or may not have been stored (a gateway killed after the fsync
and before the 200): it may appear at most once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

TENANT = "900"
SITE = "chaos"
EXPERIMENT = "500"
CONVERSION_GOAL = "777"
TAG_PATTERN = r"s1=([0-9a-z]+)"
BAD_REASONS = frozenset({"missing_user_id", "body_not_json"})


@dataclass(frozen=True, slots=True)
class Logical:
    index: int
    kind: str  # impression | conversion | monetate | bad_optimizely | bad_monetate
    client_retry: bool  # resent once after its 200

    @property
    def bad(self) -> bool:
        return self.kind.startswith("bad_")

    @property
    def session_key(self) -> tuple[str, str]:
        visitor = f"m{self.index % 500}"
        return f"{visitor}-{(self.index // 500) % 3}", f"k{self.index % 7}"


def plan(n: int) -> list[Logical]:
    out = []
    for i in range(n):
        if i % 50 == 7:
            kind = "bad_optimizely"
        elif i % 50 == 33:
            kind = "bad_monetate"
        elif i % 10 in (1, 4):
            kind = "monetate"
        else:
            kind = "impression" if i % 3 == 0 else "conversion"
        out.append(Logical(i, kind, client_retry=i % 20 in (2, 11)))
    return out


@dataclass(frozen=True, slots=True)
class Reference:
    good: int  # logical hits that must each give one non-retry event
    bad: int
    impressions: int
    conversions: int
    first_in_session: int

    @classmethod
    def of(cls, hits: list[Logical]) -> Reference:
        kinds = [h.kind for h in hits]
        return cls(
            good=sum(not h.bad for h in hits),
            bad=sum(h.bad for h in hits),
            impressions=kinds.count("impression"),
            conversions=kinds.count("conversion"),
            first_in_session=len({h.session_key for h in hits if h.kind == "monetate"}),
        )


def request(hit: Logical, tag: str) -> tuple[str, str, bytes | None]:
    """(method, path and query, body) of one attempt."""
    i = hit.index
    if hit.kind == "bad_optimizely":
        return "GET", f"/event?a={TENANT}&n=bad&v={i}&s1={tag}", None
    if hit.kind == "bad_monetate":
        return "POST", f"/monetate/collect?s1={tag}", b"\xff\xfe{not json " + tag.encode()
    if hit.kind == "monetate":
        session, key = hit.session_key
        now = int(time.time() * 1000)
        body = {
            "v": 1,
            "site": SITE,
            "visitor": session.partition("-")[0],
            "session": session,
            "session_start": now,
            "sent_at": now,
            "page": {"url": "https://shop.example/", "view": f"view{i}"},
            "experiments": {},
            "events": [{"key": key, "at": now, "seq": 0, "props": {"attempt": tag}}],
        }
        return "POST", f"/monetate/collect?s1={tag}", orjson.dumps(body)
    goal = EXPERIMENT if hit.kind == "impression" else CONVERSION_GOAL
    query = f"a={TENANT}&u=u{i % 1000}&n=chaos&x{EXPERIMENT}={i % 2 + 1}&g={goal}&v={i}&s1={tag}"
    return "GET", f"/event?{query}", None


@dataclass
class Ledger:
    """Every attempt's tag, by outcome: a 200 (accepted) or no answer (unknown)."""

    accepted_good: set[str] = field(default_factory=set)
    accepted_bad: set[str] = field(default_factory=set)
    unanswered_good: set[str] = field(default_factory=set)
    unanswered_bad: set[str] = field(default_factory=set)
    sent: int = 0  # logical hits done
    failures: int = 0

    @property
    def accepted(self) -> int:
        return len(self.accepted_good) + len(self.accepted_bad)


async def send_all(
    bases: list[str],
    hits: list[Logical],
    ledger: Ledger,
    concurrency: int,
    rate: float,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Send each logical hit until accepted (and its client retry); `rate`: hits/s, 0: no limit.

    With several gateways (`bases`) attempt k of hit i goes to gateway (i + k) mod their number,
    as a load balancer spreads them: a retry after a failure goes to the next gateway."""
    queue: asyncio.Queue[Logical] = asyncio.Queue()
    for hit in hits:
        queue.put_nowait(hit)
    began = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def attempt(hit: Logical, number: int) -> bool:
            tag = f"{hit.index}a{number}"
            method, path, body = request(hit, tag)
            url = bases[(hit.index + number) % len(bases)] + path
            headers = {"Content-Type": "text/plain"} if body is not None else {}
            try:
                async with session.request(method, url, data=body, headers=headers) as reply:
                    await reply.read()
                    ok = reply.status == 200
            except (aiohttp.ClientError, TimeoutError, OSError):
                ok = False
            if ok:
                (ledger.accepted_bad if hit.bad else ledger.accepted_good).add(tag)
            else:
                ledger.failures += 1
                (ledger.unanswered_bad if hit.bad else ledger.unanswered_good).add(tag)
            return ok

        async def one(hit: Logical) -> None:
            number = 0
            while not await attempt(hit, number) and keep_going():
                number += 1
                await asyncio.sleep(0.2)
            if hit.client_retry:
                number += 1
                while not await attempt(hit, number) and keep_going():
                    number += 1
                    await asyncio.sleep(0.2)
            ledger.sent += 1

        async def lane() -> None:
            while not queue.empty():
                hit = queue.get_nowait()
                if rate:
                    ahead = hit.index / rate - (time.monotonic() - began)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                await one(hit)

        await asyncio.gather(*(lane() for _ in range(concurrency)))
