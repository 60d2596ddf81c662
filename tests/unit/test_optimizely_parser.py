"""Table-driven tests of `schemas.optimizely`: the seed's golden hits, then one table per rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import event as event_codec
from schemas.event import Event, stable_id
from schemas.optimizely import parse as parse_hit
from schemas.optimizely import partition_key
from schemas.outcome import Accepted, Outcome, Rejected
from schemas.rawhit import RawHit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "optimizely" / "seed_hits.json"
RECEIVED = 1_700_000_000_000
HOUR_MS = 3_600_000
HORIZON_MS = 7 * 24 * HOUR_MS
BASE = "a=1234567&u=v1&n=ev&d=8511325"
HOST = {"host": "1234567.log.example.com"}
GATEWAY = {"host": "hits.example.com"}  # default: no project in the Host
SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
REGISTRY = {"987654321": frozenset({"1111111", "1111112"}), "555": frozenset({"7"})}


def make_hit(
    query: str = BASE,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    received: int = RECEIVED,
    hit_id: str = "h1",
    kind: str = "optimizely",
) -> RawHit:
    return RawHit(
        hit_id=hit_id,
        kind=kind,
        received_at_ms=received,
        method=method,
        path="/event",
        query=query,
        headers=dict(GATEWAY) if headers is None else headers,
        body=body,
    )


def run(
    query: str = BASE, *, registry: dict[str, frozenset[str]] | None = None, **kwargs: Any
) -> Outcome:
    return parse_hit(make_hit(query, **kwargs), late_horizon_ms=HORIZON_MS, experiments=registry)


def reason_or(field: str, query: str) -> Any:
    """The rejection reason of `query`, or its event's `field` when it is accepted."""
    outcome = run(query)
    return outcome.reason if isinstance(outcome, Rejected) else getattr(outcome.events[0], field)


def accepted(query: str = BASE, **kwargs: Any) -> Event:
    outcome = run(query, **kwargs)
    assert isinstance(outcome, Accepted), outcome
    (event,) = outcome.events
    return event


# -- golden hits from the seed ------------------------------------------------------------------

SEED = orjson.loads(FIXTURES.read_bytes())


@pytest.mark.parametrize("case", SEED["hits"], ids=[case["id"] for case in SEED["hits"]])
def test_seed_golden_hits(case: dict[str, Any]) -> None:
    registry = {k: frozenset(v) for k, v in case.get("registry", {}).items()} or None
    hit = make_hit(
        case["query"],
        method=case.get("method", "GET"),
        body=case.get("body", "").encode(),
        headers=case["headers"],
        received=SEED["received_at_ms"],
    )
    outcome = parse_hit(hit, late_horizon_ms=HORIZON_MS, experiments=registry)
    expect = dict(case["expect"])
    if "reason" in expect:
        assert isinstance(outcome, Rejected)
        assert outcome.reason == expect["reason"]
        return
    assert isinstance(outcome, Accepted), outcome
    got = orjson.loads(event_codec.encode(outcome.events[0]))
    assert {key: got[key] for key in expect} == expect


# -- envelope: kind, method, body, parameter cap ------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"kind": "monetate"}, "wrong_kind"),
        ({"method": "PUT"}, "unsupported_method"),
        ({"method": "DELETE"}, "unsupported_method"),
        ({"query": "&".join(f"p{i}=1" for i in range(1001))}, "too_many_parameters"),
        (
            {"query": "", "method": "POST", "body": "&".join(["z=1"] * 1001).encode()},
            "too_many_parameters",
        ),
    ],
    ids=["kind", "put", "delete", "1001-query-params", "1001-body-params"],
)
def test_envelope_rejections(kwargs: dict[str, Any], reason: str) -> None:
    outcome = run(**kwargs)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == reason
    assert outcome.detail


@pytest.mark.parametrize(
    ("query", "method", "body", "name", "flags"),
    [
        ("", "POST", b"a=1234567&u=v1&n=beacon&d=1", "beacon", ()),
        ("", "post", b"a=1234567&u=v1&n=beacon&d=1", "beacon", ()),
        ("a=1234567&u=v1&d=1", "POST", b"n=from+body", "from body", ()),
        ("n=query&a=1234567&u=v1&d=1", "POST", b"n=body", "query", ("duplicate_parameter",)),
        ("n=query&a=1234567&u=v1&d=1", "POST", b"n=query", "query", ()),
        (BASE, "GET", b"n=ignored", "ev", ()),
        ("?" + BASE, "GET", b"", "ev", ()),
        (BASE + "&" + "&".join(f"p{i}=1" for i in range(996)), "GET", b"", "ev", ()),
    ],
    ids=[
        "beacon-text-plain",
        "lowercase-method",
        "query-then-body",
        "query-wins-flagged",
        "same-repeat-not-flagged",
        "get-ignores-body",
        "leading-question-mark",
        "exactly-1000-params",
    ],
)
def test_post_bodies_and_merge(
    query: str, method: str, body: bytes, name: str, flags: tuple[str, ...]
) -> None:
    event = accepted(query, method=method, body=body)
    assert event.name == name
    assert event.flags == flags


# -- project id ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "host", "tenant", "flags"),
    [
        ("a=42&u=v&n=e&d=1", "1234567.log.example.com", "42", ("project_host_mismatch",)),
        ("a=1234567&u=v&n=e&d=1", "1234567.log.example.com", "1234567", ()),
        ("a=42&u=v&n=e&d=1", "gateway.example.com", "42", ()),
        ("a=42&u=v&n=e&d=1", "", "42", ()),
        ("u=v&n=e&d=1", "1234567.log.example.com", "1234567", ()),
        ("u=v&n=e&d=1", "1234567.log.example.com:8443", "1234567", ()),
        ("a=&u=v&n=e&d=1", "1234567.log.example.com", "1234567", ()),
        ("a=+42+&u=v&n=e&d=1", "", "42", ()),
        ("a=42&a=43&u=v&n=e&d=1", "", "42", ("duplicate_parameter",)),
    ],
    ids=[
        "a-wins-mismatch",
        "a-equals-host",
        "host-not-numeric",
        "no-host",
        "host-only",
        "host-with-port",
        "empty-a-falls-back",
        "a-trimmed",
        "repeated-a-first-wins",
    ],
)
def test_project_id(query: str, host: str, tenant: str, flags: tuple[str, ...]) -> None:
    event = accepted(query, headers={"host": host})
    assert event.tenant == tenant
    assert event.flags == flags


@pytest.mark.parametrize(
    ("query", "host", "reason"),
    [
        ("u=v&n=e", "", "missing_project_id"),
        ("u=v&n=e", "gateway.example.com", "missing_project_id"),
        ("u=v&n=e", "127.0.0.1:8080", "missing_project_id"),
        ("u=v&n=e", "[::1]:8080", "missing_project_id"),
        ("u=v&n=e", "1234567", "missing_project_id"),
        ("a=abc&u=v&n=e", "1234567.log.example.com", "bad_project_id"),
        ("a=12.5&u=v&n=e", "", "bad_project_id"),
        ("a=-12&u=v&n=e", "", "bad_project_id"),
        ("a=%D9%A1%D9%A2&u=v&n=e", "", "bad_project_id"),
        ("a=" + "9" * 21 + "&u=v&n=e", "", "bad_project_id"),
    ],
    ids=[
        "nothing",
        "host-label-not-numeric",
        "ipv4-host",
        "ipv6-host",
        "single-label-host",
        "a-letters",
        "a-decimal",
        "a-negative",
        "a-arabic-digits",
        "a-too-long",
    ],
)
def test_project_rejections(query: str, host: str, reason: str) -> None:
    outcome = run(query, headers={"host": host})
    assert isinstance(outcome, Rejected)
    assert outcome.reason == reason


# -- visitor, event name, account ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&n=e&d=1", "missing_user_id"),
        ("a=1&n=e&d=1&u=", "missing_user_id"),
        ("a=1&n=e&d=1&u=+%20+", "missing_user_id"),
        ("a=1&n=e&d=1&u=" + "x" * 257, "bad_user_id"),
        ("a=1&n=e&d=1&u=ab%00c", "bad_user_id"),
        ("a=1&n=e&d=1&u=ab%0Ac", "bad_user_id"),
        ("a=1&n=e&d=1&u=ab%FFc", "bad_user_id"),
        ("a=1&n=e&d=1&u=%EF%BF%BD", "bad_user_id"),
        ("a=1&n=e&d=1&u=+abc+", "abc"),
        ("a=1&n=e&d=1&u=%C3%A9t%C3%A9", "été"),
        ("a=1&n=e&d=1&u=" + "x" * 256, "x" * 256),
        ("a=1&n=e&d=1&u=first&u=second", "first"),
    ],
    ids=[
        "absent",
        "empty",
        "blank",
        "too-long",
        "nul",
        "newline",
        "invalid-utf8",
        "replacement-char",
        "trimmed",
        "unicode",
        "max-length",
        "first-wins",
    ],
)
def test_user_id(query: str, expected: str) -> None:
    assert reason_or("visitor_id", query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&u=v&d=1", "missing_event_name"),
        ("a=1&u=v&d=1&n=", "missing_event_name"),
        ("a=1&u=v&d=1&g=abc", "missing_event_name"),
        ("a=1&u=v&d=1&n=" + "e" * 2049, "bad_event_name"),
        ("a=1&u=v&d=1&g=55", ""),
        ("a=1&u=v&d=1&n=add+to+cart", "add to cart"),
        (
            "a=1&u=v&d=1&n=https%3A%2F%2Fshop.example%2Fcheckout%3Fstep%3D2",
            "https://shop.example/checkout?step=2",
        ),
        ("a=1&u=v&d=1&n=100%25+off", "100% off"),
        ("a=1&u=v&d=1&n=50%zz", "50%zz"),
    ],
    ids=[
        "no-n-no-g",
        "empty-n-no-g",
        "only-bad-goals",
        "too-long",
        "goal-only-empty-name",
        "plus-is-space",
        "url-name",
        "percent-escape",
        "malformed-escape-kept",
    ],
)
def test_event_name(query: str, expected: str) -> None:
    assert reason_or("name", query) == expected


@pytest.mark.parametrize(
    ("query", "account", "flags"),
    [
        ("a=1&u=v&n=e&d=8511325", "8511325", ()),
        ("a=1&u=v&n=e", "", ("missing_account_id",)),
        ("a=1&u=v&n=e&d=", "", ("missing_account_id",)),
        ("a=1&u=v&n=e&d=acme", "", ("bad_account_id",)),
    ],
    ids=["present", "absent", "empty", "not-numeric"],
)
def test_account_id(query: str, account: str, flags: tuple[str, ...]) -> None:
    event = accepted(query)
    assert (event.account_id, event.flags) == (account, flags)


# -- experiments: x pairs, multivariate, swaps, optimizelyBuckets ----------------------------------

BUCKETS = "%7B%22987654321%22%3A%221111111%22%2C%22876543210%22%3A%222222222_3333333%22%7D"


@pytest.mark.parametrize(
    ("extra", "cookie", "registry", "experiments", "flags"),
    [
        ("&x1=2&x3=4", "", None, {"1": "2", "3": "4"}, ()),
        ("&x876543210=2222222_3333333", "", None, {"876543210": "2222222_3333333"}, ()),
        ("&x1=+2+", "", None, {"1": "2"}, ()),
        ("&xabc=1&x1=2", "", None, {"1": "2"}, ("bad_experiment_param",)),
        ("&x1=abc", "", None, {}, ("bad_experiment_param",)),
        ("&x1=", "", None, {}, ("bad_experiment_param",)),
        ("&x=1", "", None, {}, ("bad_experiment_param",)),
        ("&x1=2_", "", None, {}, ("bad_experiment_param",)),
        ("&x%7B1%7D=2", "", None, {}, ("bad_experiment_param",)),
        ("&x1=2&x1=3", "", None, {"1": "2"}, ("duplicate_parameter",)),
        ("&x1111111=987654321", "", REGISTRY, {"987654321": "1111111"}, ("x_param_swapped",)),
        ("&x987654321=1111111", "", REGISTRY, {"987654321": "1111111"}, ()),
        ("&x1111113=987654321", "", REGISTRY, {"1111113": "987654321"}, ()),
        ("&x555=987654321", "", REGISTRY, {"555": "987654321"}, ()),
        (
            "&x7=555&x1111111=987654321",
            "",
            REGISTRY,
            {"555": "7", "987654321": "1111111"},
            ("x_param_swapped",),
        ),
        ("&x7=555&x555=8", "", REGISTRY, {"555": "7"}, ("duplicate_parameter", "x_param_swapped")),
        (
            "",
            f"optimizelyBuckets={BUCKETS}",
            None,
            {"987654321": "1111111", "876543210": "2222222_3333333"},
            (),
        ),
        (
            "",
            f'a=b; optimizelyBuckets="{BUCKETS}"',
            None,
            {"987654321": "1111111", "876543210": "2222222_3333333"},
            (),
        ),
        ("&x1=2", f"optimizelyBuckets={BUCKETS}", None, {"1": "2"}, ()),
        ("&x1=2", "optimizelyBuckets=garbage", None, {"1": "2"}, ()),
        (
            "&xbad=2",
            f"optimizelyBuckets={BUCKETS}",
            None,
            {"987654321": "1111111", "876543210": "2222222_3333333"},
            ("bad_experiment_param",),
        ),
        (
            "&optimizelyBuckets=%7B%221%22%3A%222%22%7D",
            f"optimizelyBuckets={BUCKETS}",
            None,
            {"1": "2"},
            (),
        ),
        ("", "optimizelyBuckets=%7B%221%22%3A2%7D", None, {"1": "2"}, ()),
        (
            "",
            "optimizelyBuckets=%7B%221111111%22%3A%22987654321%22%7D",
            REGISTRY,
            {"987654321": "1111111"},
            ("x_param_swapped",),
        ),
        (
            "",
            "optimizelyBuckets=%7B%221%22%3A%22x%22%2C%223%22%3A%224%22%7D",
            None,
            {"3": "4"},
            ("bad_buckets_cookie",),
        ),
        ("", "optimizelyBuckets=%7B%221%22%3Atrue%7D", None, {}, ("bad_buckets_cookie",)),
        ("", "optimizelyBuckets=%7B%221%22%3Anull%7D", None, {}, ("bad_buckets_cookie",)),
        ("", "optimizelyBuckets=%7Bnot-json", None, {}, ("bad_buckets_cookie",)),
        ("", "optimizelyBuckets=%5B1%2C2%5D", None, {}, ("bad_buckets_cookie",)),
        ("", "optimizelyBuckets=", None, {}, ("bad_buckets_cookie",)),
        ("&optimizelyBuckets=%7B%7D", "", None, {}, ()),
        ("", "other=1", None, {}, ()),
    ],
    ids=[
        "two-pairs",
        "multivariate",
        "trimmed",
        "non-numeric-experiment",
        "non-numeric-variation",
        "empty-variation",
        "bare-x",
        "dangling-underscore",
        "placeholder-braces",
        "repeated-experiment",
        "swapped-by-registry",
        "canonical-not-swapped",
        "unknown-variation-not-swapped",
        "known-experiment-not-swapped",
        "swap-one-of-two",
        "swap-collides",
        "buckets-cookie",
        "buckets-cookie-quoted",
        "x-beats-cookie",
        "x-present-cookie-not-read",
        "all-x-bad-cookie-used",
        "buckets-param-beats-cookie",
        "buckets-int-variation",
        "buckets-swapped",
        "buckets-bad-entry-skipped",
        "buckets-bool",
        "buckets-null",
        "buckets-not-json",
        "buckets-array",
        "buckets-empty",
        "buckets-empty-object",
        "no-experiments",
    ],
)
def test_experiments(
    extra: str,
    cookie: str,
    registry: dict[str, frozenset[str]] | None,
    experiments: dict[str, str],
    flags: tuple[str, ...],
) -> None:
    event = accepted(BASE + extra, registry=registry, headers={**HOST, "cookie": cookie})
    assert event.experiments == experiments
    assert event.flags == flags


@pytest.mark.parametrize(
    ("extra", "sections"),
    [
        ("&x1=2", None),
        ("&x1=2_3&x4=5", {"1": ["2", "3"]}),
        ("&x1=2_3_4&x5=6_7", {"1": ["2", "3", "4"], "5": ["6", "7"]}),
    ],
    ids=["none", "one-multivariate", "two-multivariate"],
)
def test_multivariate_sections(extra: str, sections: dict[str, list[str]] | None) -> None:
    event = accepted(BASE + extra)
    assert event.properties.get("sections") == sections
    assert all("_".join(parts) == event.experiments[exp] for exp, parts in (sections or {}).items())


def test_too_many_experiments() -> None:
    outcome = run(BASE + "".join(f"&x{i}=1" for i in range(257)))
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "too_many_experiments"


# -- goals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "goals", "flags"),
    [
        ("", (), ()),
        ("&g=12345,4324234", ("12345", "4324234"), ()),
        ("&g=12345&g=4324234", ("12345", "4324234"), ()),
        ("&g=+3+,+,1,&g=2,3&g=1", ("3", "1", "2"), ()),
        ("&g=,,&g=", (), ()),
        ("&g=1,abc,2", ("1", "2"), ("bad_goal",)),
        ("&g=1%2C2", ("1", "2"), ()),
    ],
    ids=[
        "none",
        "comma",
        "repeated",
        "trim-dedupe-keep-order",
        "only-empties",
        "bad-goal-dropped",
        "encoded-comma",
    ],
)
def test_goals(extra: str, goals: tuple[str, ...], flags: tuple[str, ...]) -> None:
    event = accepted(BASE + extra)
    assert (event.goals, event.flags) == (goals, flags)


def test_impression_goal_is_kept_as_a_goal() -> None:
    event = accepted(BASE + "&x987654321=1111111&g=987654321,42")
    assert event.goals == ("987654321", "42")
    assert event.experiments == {"987654321": "1111111"}


def test_too_many_goals() -> None:
    outcome = run(BASE + "&g=" + ",".join(str(i) for i in range(257)))
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "too_many_goals"


# -- value ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v", "cents", "flags"),
    [
        ("500", 500, ()),
        ("+7", 7, ()),
        ("0", 0, ()),
        ("", None, ()),
        ("+500+", 500, ()),
        ("500.0", 500, ()),
        ("500.4", 500, ("value_rounded",)),
        ("500.5", 501, ("value_rounded",)),
        ("501.5", 502, ("value_rounded",)),
        (".5", 1, ("value_rounded",)),
        ("-250", -250, ("negative_value",)),
        ("-0.5", -1, ("negative_value", "value_rounded")),
        ("-0.4", 0, ("value_rounded",)),
        ("1000000000000", 10**12, ()),
        ("1000000000001", None, ("bad_value",)),
        ("9223372036854775808", None, ("bad_value",)),
        ("abc", None, ("bad_value",)),
        ("5$", None, ("bad_value",)),
        ("1e3", None, ("bad_value",)),
        ("NaN", None, ("bad_value",)),
        ("inf", None, ("bad_value",)),
        ("-Infinity", None, ("bad_value",)),
        ("5_000", None, ("bad_value",)),
        ("1,50", None, ("bad_value",)),
        ("%D9%A5", None, ("bad_value",)),
        ("1" * 50, None, ("bad_value",)),
    ],
    ids=[
        "int",
        "plus-sign",
        "zero",
        "empty",
        "trimmed",
        "zero-fraction",
        "round-down",
        "half-up",
        "half-up-odd",
        "leading-dot",
        "negative",
        "negative-half-away-from-zero",
        "negative-rounds-to-zero",
        "max",
        "above-max",
        "beyond-int64",
        "letters",
        "currency",
        "exponent",
        "nan",
        "inf",
        "neg-infinity",
        "underscore",
        "comma-decimal",
        "arabic-digit",
        "fifty-digits",
    ],
)
def test_value(v: str, cents: int | None, flags: tuple[str, ...]) -> None:
    event = accepted(BASE + "&v=" + v)
    assert (event.value_cents, event.flags) == (cents, flags)


# -- time ----------------------------------------------------------------------------------------

SEED_TIME_MS = 1_462_472_175_000


@pytest.mark.parametrize(
    ("extra", "received", "occurred", "flags"),
    [
        ("", RECEIVED, RECEIVED, ()),
        ("&time=1462472175", SEED_TIME_MS + 1000, SEED_TIME_MS, ()),
        ("&timestamp=1462472175", SEED_TIME_MS + 1000, SEED_TIME_MS, ()),
        ("&t=1462472175", SEED_TIME_MS + 1000, SEED_TIME_MS, ()),
        ("&t=1&timestamp=2&time=1462472175", SEED_TIME_MS + 1000, SEED_TIME_MS, ()),
        ("&t=1462472175&timestamp=1462472176", SEED_TIME_MS + 5000, SEED_TIME_MS + 1000, ()),
        ("&time=&t=1462472175", SEED_TIME_MS + 1000, SEED_TIME_MS, ()),
        ("&time=1462472175000", SEED_TIME_MS + 1000, SEED_TIME_MS, ()),
        ("&time=1462472175000000", SEED_TIME_MS + 1000, SEED_TIME_MS, ()),
        ("&time=1462472175.25", SEED_TIME_MS + 1000, SEED_TIME_MS + 250, ()),
        ("&time=1462472175000.6", SEED_TIME_MS + 1000, SEED_TIME_MS + 1, ()),
        ("&time=1462472175123456", SEED_TIME_MS + 1000, SEED_TIME_MS + 123, ()),
        ("&time=1462472175", SEED_TIME_MS + HORIZON_MS + 1, SEED_TIME_MS, ("late",)),
        ("&time=1462472175", SEED_TIME_MS + HORIZON_MS, SEED_TIME_MS, ()),
        ("&time=1462472175", SEED_TIME_MS - 23 * HOUR_MS, SEED_TIME_MS, ()),
        (
            "&time=1462472175",
            SEED_TIME_MS - 23 * HOUR_MS - 1,
            SEED_TIME_MS - 23 * HOUR_MS - 1,
            ("future_time_clamped",),
        ),
        ("&time=yesterday", RECEIVED, RECEIVED, ("bad_time",)),
        ("&time=NaN", RECEIVED, RECEIVED, ("bad_time",)),
        ("&time=1.4e9", RECEIVED, RECEIVED, ("bad_time",)),
        ("&time=2016-05-04T19:36:15Z", RECEIVED, RECEIVED, ("bad_time",)),
        ("&time=100000000000000000", RECEIVED, RECEIVED, ("bad_time",)),
        ("&time=10413792000", RECEIVED, RECEIVED, ("bad_time",)),
        ("&time=10413791999", 10_413_791_999_000, 10_413_791_999_000, ()),
        ("&time=-2208988800", -2_208_988_800_000, -2_208_988_800_000, ()),
        ("&time=-2208988801", RECEIVED, RECEIVED, ("bad_time",)),
        ("&time=0", 3 * HOUR_MS, 0, ()),
        ("&time=-5", 0, -5000, ()),
    ],
    ids=[
        "absent",
        "seconds",
        "timestamp-alias",
        "t-alias",
        "time-first",
        "timestamp-before-t",
        "blank-time-skipped",
        "milliseconds",
        "microseconds",
        "decimal-seconds",
        "decimal-millis-rounded",
        "microseconds-truncated-to-ms",
        "late",
        "at-horizon-not-late",
        "23h-future-kept",
        "beyond-23h-clamped",
        "words",
        "nan",
        "exponent",
        "iso-8601",
        "beyond-microseconds",
        "year-2300",
        "year-2299",
        "year-1900",
        "before-1900",
        "epoch",
        "before-epoch",
    ],
)
def test_time(extra: str, received: int, occurred: int, flags: tuple[str, ...]) -> None:
    event = accepted(BASE + extra, received=received)
    assert (event.occurred_at_ms, event.received_at_ms, event.flags) == (occurred, received, flags)


def test_future_time_clamped_far_future() -> None:
    event = accepted(BASE + "&time=4102444800", received=RECEIVED)  # 2100-01-01
    assert (event.occurred_at_ms, event.flags) == (RECEIVED, ("future_time_clamped",))


# -- dimensions, unknown parameters, decoding ----------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "dimensions", "properties", "flags"),
    [
        ("&s983745985=gc", {"983745985": "gc"}, {}, ()),
        ("&s1=a&s2=", {"1": "a", "2": ""}, {}, ()),
        ("&s1=a&s1=b", {"1": "a"}, {}, ("duplicate_parameter",)),
        ("&sfoo=1&source=ads", {}, {"sfoo": "1", "source": "ads"}, ()),
        ("&utm=x&utm=y&utm=z", {}, {"utm": ["x", "y", "z"]}, ()),
        ("&flag", {}, {"flag": ""}, ()),
        ("&=orphan&&", {}, {}, ()),
        ("&A=1&U=2", {}, {"A": "1", "U": "2"}, ()),
        ("&sections=mine&x1=2_3", {}, {"sections": {"1": ["2", "3"]}}, ("duplicate_parameter",)),
        ("&k%C3%A9=v%C3%A9", {}, {"ké": "vé"}, ()),
        ("&k=%FF%FE", {}, {"k": "\ufffd\ufffd"}, ("invalid_utf8",)),
        ("&k%80=1", {}, {"k\ufffd": "1"}, ("invalid_utf8",)),
        ("&k=\ud800", {}, {"k": "\ufffd" * 3}, ("invalid_utf8",)),
        ("&k=\udcff", {}, {"k": "\ufffd"}, ("invalid_utf8",)),
        ("&k=%C3\udca9", {}, {"k": "é"}, ()),
        ("&k=%ED%A0%80", {}, {"k": "\ufffd\ufffd\ufffd"}, ("invalid_utf8",)),
    ],
    ids=[
        "seed-dimension",
        "empty-dimension-value",
        "repeated-dimension",
        "s-prefixed-unknown",
        "repeated-unknown-list",
        "no-equals",
        "empty-names-dropped",
        "names-case-sensitive",
        "sections-collision",
        "utf8-name-and-value",
        "invalid-utf8-value",
        "invalid-utf8-name",
        "lone-surrogate-in-str",
        "surrogate-escape-in-str",
        "surrogate-escaped-bytes-restored",
        "encoded-surrogate",
    ],
)
def test_dimensions_and_properties(
    extra: str, dimensions: dict[str, str], properties: dict[str, Any], flags: tuple[str, ...]
) -> None:
    event = accepted(BASE + extra)
    assert (event.dimensions, event.properties, event.flags) == (dimensions, properties, flags)
    event_codec.encode(event)  # always encodable


# -- event envelope, flags, fingerprint -------------------------------------------------------


def test_event_envelope_fields() -> None:
    headers = {
        **HOST,
        "user-agent": "Mozilla/5.0",
        "referer": "https://shop.example/p?q=1",
        "cookie": "x=1",
    }
    event = accepted(BASE + "&g=5&v=1.5&d=acme&s1=a", hit_id="hit-42", headers=headers)
    assert event.event_id == stable_id("hit-42", 0)
    assert (event.hit_id, event.source, event.received_at_ms) == ("hit-42", "optimizely", RECEIVED)
    assert (event.user_agent, event.page_url, event.referrer) == (
        "Mozilla/5.0",
        "https://shop.example/p?q=1",
        "",
    )
    assert event.flags == ("duplicate_parameter", "value_rounded")  # d repeated: first wins
    assert event.flags == tuple(sorted(set(event.flags)))
    assert event.key() == b"1234567:v1"
    assert event_codec.decode(event_codec.encode(event)) == event


def test_headers_with_surrogates_are_cleaned() -> None:
    event = accepted(headers={**HOST, "user-agent": "bot\udcff", "referer": "\ud800"})
    assert (event.user_agent, event.page_url) == ("bot\ufffd", "\ufffd")


FP_BASE = "a=1&u=v&n=e&x1=2&x3=4&g=5,6&v=100&time=1462472175"


@pytest.mark.parametrize(
    ("other", "kwargs", "same"),
    [
        (FP_BASE, {"hit_id": "other", "received": RECEIVED + 5000}, True),
        ("a=1&u=v&n=e&x3=4&x1=2&g=6,5&v=100&time=1462472175", {}, True),
        (FP_BASE + "&extra=1&d=9", {"headers": {"user-agent": "other"}}, True),
        ("a=1&u=v&n=e&x1=2&x3=4&g=5,6&v=101&time=1462472175", {}, False),
        ("a=1&u=w&n=e&x1=2&x3=4&g=5,6&v=100&time=1462472175", {}, False),
        ("a=1&u=v&n=f&x1=2&x3=4&g=5,6&v=100&time=1462472175", {}, False),
        ("a=1&u=v&n=e&x1=9&x3=4&g=5,6&v=100&time=1462472175", {}, False),
        ("a=1&u=v&n=e&x1=2&x3=4&g=5&v=100&time=1462472175", {}, False),
        ("a=1&u=v&n=e&x1=2&x3=4&g=5,6&v=100&time=1462472176", {}, False),
        ("a=2&u=v&n=e&x1=2&x3=4&g=5,6&v=100&time=1462472175", {}, False),
        ("a=1&u=v&n=e&x1=2&x3=4&g=5,6&v=100", {}, False),
    ],
    ids=[
        "retry-same",
        "param-order-irrelevant",
        "non-identity-params-ignored",
        "value",
        "user",
        "name",
        "experiments",
        "goals",
        "time",
        "project",
        "time-absent",
    ],
)
def test_fingerprint(other: str, kwargs: dict[str, Any], same: bool) -> None:
    first = accepted(FP_BASE, headers={})
    second = accepted(other, **{"headers": {}, **kwargs})
    assert re.fullmatch(r"[0-9a-f]{64}", first.fingerprint)
    assert (first.fingerprint == second.fingerprint) is same


# -- partition key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "host", "key"),
    [
        ("a=1234567&u=1316548451038r0&n=e", "", b"1234567:1316548451038r0"),
        ("u=v1&n=e", "1234567.log.example.com", b"1234567:v1"),
        ("a=42&u=v1", "1234567.log.example.com", b"42:v1"),
        ("?a=42&u=v1", "", b"42:v1"),
        ("a=&a=42&u=&u=+v1+", "", b"42:v1"),
        ("a=42&u=%C3%A9t%C3%A9+x", "", "42:été x".encode()),
        ("ba=1&a=42&xu=2&u=v1", "", b"42:v1"),
        ("a=42&u=a%26b", "", b"42:a&b"),
        ("a=42", "", b""),
        ("u=v1", "", b""),
        ("u=v1", "127.0.0.1", b""),
        ("a=abc&u=v1", "1234567.log.example.com", b""),
        ("a=42&u=%FF", "", b""),
        ("a=42&u=" + "x" * 257, "", b""),
        ("", "", b""),
    ],
    ids=[
        "seed",
        "host-label",
        "a-wins",
        "leading-question-mark",
        "first-non-blank",
        "decoded",
        "exact-names-only",
        "encoded-ampersand",
        "no-user",
        "no-project",
        "ip-host",
        "bad-a",
        "invalid-utf8-user",
        "user-too-long",
        "empty",
    ],
)
def test_partition_key(query: str, host: str, key: bytes) -> None:
    assert partition_key(query, host) == key


@pytest.mark.parametrize(
    ("query", "body", "key"),
    [
        ("", b"a=42&u=v1&n=e", b"42:v1"),
        ("u=v1", b"a=42&u=v2", b"42:v1"),
        ("", b"u=%C3%A9&a=42", "42:é".encode()),
        ("", b"u=%FF&a=42", b""),
    ],
    ids=["body-only", "query-first", "body-decoded", "body-invalid-utf8"],
)
def test_partition_key_with_post_body(query: str, body: bytes, key: bytes) -> None:
    assert partition_key(query, "", body=body) == key


@pytest.mark.parametrize(
    "query",
    [
        "a=1234567&u=1316548451038r0&n=e",
        "u=v1&n=e",
        "a=42&u=+v1+&n=e&u=v2",
        "n=e&u=%C3%A9t%C3%A9",
        "a=42&a=43&u=v&g=1",
    ],
    ids=["seed", "host-only", "trimmed-first", "unicode", "repeated-a"],
)
def test_partition_key_matches_event_key(query: str) -> None:
    event = accepted(query, headers=HOST)
    assert partition_key(query, HOST["host"]) == event.key()


# -- property: parse never raises ----------------------------------------------------------------

NAMES = st.sampled_from(
    [
        "a",
        "u",
        "d",
        "n",
        "g",
        "v",
        "time",
        "timestamp",
        "t",
        "x1",
        "x",
        "x12",
        "s1",
        "optimizelyBuckets",
        "sections",
        "other",
        "%FF",
        "",
    ]
)
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "1",
            "12_34",
            "-1.5",
            "1e9",
            "NaN",
            "1462472175",
            "%7B%221%22%3A%222%22%7D",
            "%",
            "%E9",
            "\ud800",
            "1,2,,3",
            "9" * 30,
        ]
    ),
)
QUERIES = st.one_of(
    st.text(max_size=300),
    st.lists(st.tuples(NAMES, VALUES), max_size=25).map(
        lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
    ),
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "host": st.one_of(st.text(max_size=30), st.just("1234567.log.example.com")),
        "cookie": st.one_of(st.text(max_size=60), st.just(f"optimizelyBuckets={BUCKETS}")),
        "user-agent": st.text(max_size=20),
        "referer": st.text(max_size=20),
    },
)


def check(outcome: Outcome) -> None:
    if isinstance(outcome, Rejected):
        assert SNAKE.fullmatch(outcome.reason), outcome.reason
        return
    assert isinstance(outcome, Accepted)
    (event,) = outcome.events
    assert all(SNAKE.fullmatch(flag) for flag in event.flags)
    assert event.flags == tuple(sorted(set(event.flags)))
    assert event.tenant and event.visitor_id
    event_codec.encode(event)


@settings(max_examples=400, deadline=None)
@given(
    query=QUERIES,
    body=st.binary(max_size=300),
    method=st.sampled_from(["GET", "POST", "X"]),
    headers=HEADERS,
    received=st.integers(0, 2**45),
    horizon=st.integers(0, 2**40),
    registry=st.none() | st.just(REGISTRY),
)
def test_parse_never_raises(
    query: str,
    body: bytes,
    method: str,
    headers: dict[str, str],
    received: int,
    horizon: int,
    registry: dict[str, frozenset[str]] | None,
) -> None:
    hit = RawHit(
        hit_id="h",
        kind="optimizely",
        received_at_ms=received,
        method=method,
        query=query,
        headers=headers,
        body=body,
    )
    check(parse_hit(hit, late_horizon_ms=horizon, experiments=registry))
    key = partition_key(query, headers.get("host", ""), body=body if method == "POST" else b"")
    outcome = parse_hit(hit, late_horizon_ms=horizon)
    if isinstance(outcome, Accepted):
        assert key == outcome.events[0].key()


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=500))
def test_post_body_bytes_never_raise(body: bytes) -> None:
    check(run("a=1&u=v", method="POST", body=body))
