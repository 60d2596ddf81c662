"""Table-driven tests of `schemas.monetate`: the seed's examples, then one table per rule."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import event as event_codec
from schemas.event import Event, stable_id
from schemas.formats import ParseContext
from schemas.formats import parse as parse_any
from schemas.monetate import (
    MAX_EVENTS,
    key_problem,
    parse,
    partition_key,
    split_bad_keys,
)
from schemas.outcome import Accepted, Outcome, Rejected
from schemas.rawhit import RawHit

RECEIVED = 1_700_000_000_000
HOUR_MS = 3_600_000
HORIZON_MS = 7 * 24 * HOUR_MS
CONTEXT = ParseContext(late_horizon_ms=HORIZON_MS)
SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
HEADERS = {"content-type": "text/plain;charset=UTF-8", "user-agent": "Mozilla/5.0 test"}


def beacon(**overrides: Any) -> dict[str, Any]:
    """The tag's body for one event, with top-level fields replaced (None removes one)."""
    body: dict[str, Any] = {
        "v": 1,
        "site": "shop-eu",
        "visitor": "0123456789abcdef0123456789abcdef",
        "session": "fedcba9876543210",
        "session_start": RECEIVED - 60_000,
        "sent_at": RECEIVED - 5,
        "page": {
            "url": "https://shop.example/checkout",
            "referrer": "https://search.example/?q=x",
            "device": "mobile",
            "view": "a1b2c3d4",
        },
        "experiments": {"exp-1": "control", "42": "7"},
        "events": [{"key": "reached_platinum", "at": RECEIVED - 10, "seq": 0}],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def make_hit(
    body: bytes | dict[str, Any] | list[Any] | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    kind: str = "monetate",
    hit_id: str = "h1",
) -> RawHit:
    # stdlib json: it writes integers beyond 64 bits, which orjson reads back as floats
    raw = (
        body if isinstance(body, bytes) else json.dumps(beacon() if body is None else body).encode()
    )
    return RawHit(
        hit_id=hit_id,
        kind=kind,
        received_at_ms=RECEIVED,
        method=method,
        path="/monetate/collect",
        headers=dict(HEADERS) if headers is None else headers,
        body=raw,
    )


def run(body: bytes | dict[str, Any] | list[Any] | None = None, **kwargs: Any) -> Outcome:
    return parse(make_hit(body, **kwargs), CONTEXT)


def events_of(body: bytes | dict[str, Any] | None = None, **kwargs: Any) -> tuple[Event, ...]:
    outcome = run(body, **kwargs)
    assert isinstance(outcome, Accepted), outcome
    return outcome.events


def one(body: bytes | dict[str, Any] | None = None, **kwargs: Any) -> Event:
    (event,) = events_of(body, **kwargs)
    return event


def with_events(*entries: Any, **overrides: Any) -> dict[str, Any]:
    return beacon(events=list(entries), **overrides)


# -- the seed's examples ---------------------------------------------------------------------


def test_seed_reached_platinum_gives_the_canonical_event() -> None:
    event = one()
    assert event == Event(
        event_id=stable_id("h1", 0),
        hit_id="h1",
        source="monetate",
        tenant="shop-eu",
        visitor_id="0123456789abcdef0123456789abcdef",
        name="reached_platinum",
        occurred_at_ms=RECEIVED - 10,
        received_at_ms=RECEIVED,
        session_id="fedcba9876543210",
        experiments={"exp-1": "control", "42": "7"},
        page_url="https://shop.example/checkout",
        referrer="https://search.example/?q=x",
        user_agent="Mozilla/5.0 test",
        device_type="mobile",
        fingerprint=event.fingerprint,
    )
    assert len(event.fingerprint) == 64
    assert event_codec.decode(event_codec.encode(event)) == event


def test_seed_event_key_with_capital_and_space_is_kept_verbatim() -> None:
    event = one(with_events({"key": "Event Key", "at": RECEIVED}))
    assert (event.name, event.flags) == ("Event Key", ())


def test_registered_in_the_formats_registry() -> None:
    assert parse_any(make_hit(), CONTEXT) == run()


# -- the key rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["reached_platinum", "Event Key", "a", "played-video 2", "x" * 255, " padded ", "___", "-"],
)
def test_good_keys(key: str) -> None:
    assert key_problem(key) == ""
    assert one(with_events({"key": key})).flags == ()


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "chars"),
        ("x" * 256, "chars"),
        ("   ", "only spaces"),
        ("bad!", "char other"),
        ("événement", "char other"),
        ("tab\there", "char other"),
        ("new\nline", "char other"),
        ("dotted.key", "char other"),
        ("https://shop.example/", "char other"),
        (123, "not a string (int)"),
        (None, "not a string (NoneType)"),
        (["nested"], "not a string (list)"),
    ],
)
def test_bad_key_is_flagged_not_rejected(key: Any, why: str) -> None:
    event = one(with_events({"key": key, "at": RECEIVED}))
    assert "bad_event_key" in event.flags
    assert why in event.properties["key_error"]
    assert event.name == (key[:1024] if isinstance(key, str) else "")
    assert event.fingerprint == ""


def test_entry_that_is_not_an_object_is_a_bad_key() -> None:
    event = one(with_events("reached_platinum"))
    assert event.flags == ("bad_event_key",)
    assert event.properties == {"key_error": "entry is not an object"}


def test_one_beacon_good_and_bad_keys_keep_indices_and_split_one_dead_letter_per_bad_key() -> None:
    events = events_of(
        with_events({"key": "ok_1"}, {"key": "bad!"}, {"key": "Ok 2"}, {"key": 7}, {"key": "ok_1"})
    )
    assert [e.event_id for e in events] == [stable_id("h1", i) for i in range(5)]
    good, bad = split_bad_keys(events)
    assert [e.name for e in good] == ["ok_1", "Ok 2", "ok_1"]
    assert [(e.event_id, r.reason) for e, r in bad] == [
        (stable_id("h1", 1), "bad_event_key"),
        (stable_id("h1", 3), "bad_event_key"),
    ]
    assert "'bad!'" in bad[0][1].detail


def test_all_keys_bad_is_still_accepted_so_each_gets_its_dead_letter() -> None:
    events = events_of(with_events({"key": "a!"}, {"key": "b?"}))
    good, bad = split_bad_keys(events)
    assert good == () and len(bad) == 2


# -- whole-beacon rejections -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kwargs", "reason"),
    [
        (None, {"kind": "optimizely"}, "wrong_kind"),
        (None, {"method": "GET"}, "unsupported_method"),
        (b"", {}, "empty_body"),
        (b"  \n ", {}, "empty_body"),
        (b"{not json", {}, "body_not_json"),
        (b"\xff\xfe{}", {}, "body_not_json"),
        (b'{"v":1,"t":1e400}', {}, "body_not_json"),
        (b"NaN", {}, "body_not_json"),
        (b"[1,2]", {}, "body_not_object"),
        (b'"text"', {}, "body_not_object"),
        (beacon(v=None), {}, "unsupported_version"),
        (beacon(v=2), {}, "unsupported_version"),
        (beacon(v="1"), {}, "unsupported_version"),
        (beacon(v=True), {}, "unsupported_version"),
        (beacon(v=1.0), {}, "unsupported_version"),
        (beacon(site=None), {}, "missing_site"),
        (beacon(site="  "), {}, "missing_site"),
        (beacon(site="shop eu"), {}, "bad_site"),
        (beacon(site="shop:eu"), {}, "bad_site"),
        (beacon(site="x" * 129), {}, "bad_site"),
        (beacon(site=-1), {}, "bad_site"),
        (beacon(site=True), {}, "bad_site"),
        (beacon(site={"id": 1}), {}, "bad_site"),
        (beacon(visitor=None), {}, "missing_visitor"),
        (beacon(visitor=""), {}, "missing_visitor"),
        (beacon(visitor=12), {}, "bad_visitor"),
        (beacon(visitor="v" * 257), {}, "bad_visitor"),
        (beacon(visitor="a\x00b"), {}, "bad_visitor"),
        (beacon(events=None), {}, "no_events"),
        (beacon(events=[]), {}, "no_events"),
        (beacon(events={"key": "x"}), {}, "no_events"),
        (beacon(events=[{"key": "k"}] * (MAX_EVENTS + 1)), {}, "too_many_events"),
        (beacon(experiments={str(i): "1" for i in range(257)}), {}, "too_many_experiments"),
    ],
)
def test_rejections(body: Any, kwargs: dict[str, Any], reason: str) -> None:
    outcome = run(body, **kwargs)
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason == reason
    assert SNAKE.fullmatch(outcome.reason)


def test_limits_are_inclusive() -> None:
    assert len(events_of(beacon(events=[{"key": "k"}] * MAX_EVENTS))) == MAX_EVENTS
    assert one(beacon(site="x" * 128, visitor="v" * 256)).tenant == "x" * 128


# -- beacon-level fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected", "flags"),
    [
        ({"site": 12345}, {"tenant": "12345"}, ()),
        ({"session": None}, {"session_id": ""}, ("missing_session",)),
        ({"session": 5}, {"session_id": ""}, ("bad_session",)),
        ({"session": "s\x7f"}, {"session_id": ""}, ("bad_session",)),
        ({"page": None}, {"page_url": "", "referrer": "", "device_type": ""}, ()),
        ({"page": "https://x"}, {"page_url": ""}, ("bad_page",)),
        ({"page": {"url": 1, "device": "desktop"}}, {"device_type": "desktop"}, ("bad_page",)),
        ({"page": {"device": "Phone"}}, {"device_type": ""}, ("bad_device_type",)),
        ({"page": {"url": "u" * 9000}}, {"page_url": "u" * 8192}, ("truncated",)),
        ({"experiments": None}, {"experiments": {}}, ()),
        ({"experiments": ["a"]}, {"experiments": {}}, ("bad_experiment",)),
        ({"experiments": {"e": 3}}, {"experiments": {"e": "3"}}, ()),
        ({"experiments": {"e": None, "f": "1"}}, {"experiments": {"f": "1"}}, ("bad_experiment",)),
        ({"experiments": {"e": True}}, {"experiments": {}}, ("bad_experiment",)),
        ({"experiments": {"e": ""}}, {"experiments": {}}, ("bad_experiment",)),
        ({"unknown_field": [1, 2]}, {"tenant": "shop-eu"}, ()),
    ],
)
def test_beacon_fields(
    overrides: dict[str, Any], expected: dict[str, Any], flags: tuple[str, ...]
) -> None:
    body = beacon()
    body.update(overrides)
    event = one({k: v for k, v in body.items() if v is not None})
    assert {name: getattr(event, name) for name in expected} == expected
    assert event.flags == flags


def test_page_url_falls_back_to_the_referer_header() -> None:
    event = one(beacon(page={"device": "tablet"}), headers={"referer": "https://shop.example/p"})
    assert (event.page_url, event.device_type) == ("https://shop.example/p", "tablet")


@pytest.mark.parametrize(
    ("content_type", "flags"),
    [
        ("text/plain;charset=UTF-8", ()),
        ("application/json", ()),
        ("Application/JSON; charset=utf-8", ()),
        ("", ()),
        ("application/x-www-form-urlencoded", ("unexpected_content_type",)),
    ],
)
def test_content_types(content_type: str, flags: tuple[str, ...]) -> None:
    assert one(headers={"content-type": content_type}).flags == flags


def test_bom_and_whitespace_around_the_body_are_tolerated() -> None:
    assert one(b"\xef\xbb\xbf  " + orjson.dumps(beacon()) + b"\n").name == "reached_platinum"


# -- time ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "occurred", "flags"),
    [
        (None, RECEIVED, ()),
        (RECEIVED - 1, RECEIVED - 1, ()),
        (RECEIVED - 0.4, RECEIVED, ()),
        (float(RECEIVED - 2), RECEIVED - 2, ()),
        (RECEIVED + 23 * HOUR_MS, RECEIVED + 23 * HOUR_MS, ()),
        (RECEIVED + 23 * HOUR_MS + 1, RECEIVED, ("future_time_clamped",)),
        (RECEIVED - HORIZON_MS, RECEIVED - HORIZON_MS, ()),
        (RECEIVED - HORIZON_MS - 1, RECEIVED - HORIZON_MS - 1, ("late",)),
        (0, 0, ("late",)),
        (-2_208_988_800_000, -2_208_988_800_000, ("late",)),
        (-2_208_988_800_001, RECEIVED, ("bad_time",)),
        (10_413_792_000_000, RECEIVED, ("bad_time",)),
        (2**64 - 1, RECEIVED, ("bad_time",)),
        (2**70, RECEIVED, ("bad_time",)),
        (-(2**63), RECEIVED, ("bad_time",)),
        (1e308, RECEIVED, ("bad_time",)),
        ("1700000000000", RECEIVED, ("bad_time",)),
        (True, RECEIVED, ("bad_time",)),
        ([RECEIVED], RECEIVED, ("bad_time",)),
    ],
)
def test_time(at: Any, occurred: int, flags: tuple[str, ...]) -> None:
    entry: dict[str, Any] = {"key": "k"} if at is None else {"key": "k", "at": at}
    event = one(with_events(entry))
    assert (event.occurred_at_ms, event.flags) == (occurred, flags)


def test_flags_are_per_event() -> None:
    first, second = events_of(with_events({"key": "k", "at": "x"}, {"key": "k", "at": RECEIVED}))
    assert (first.flags, second.flags) == (("bad_time",), ())


# -- properties and fingerprints -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "expected", "flags"),
    [
        (None, {}, ()),
        (
            {"plan": "gold", "n": 3, "x": 1.5, "ok": True},
            {"plan": "gold", "n": 3, "x": 1.5, "ok": True},
            (),
        ),
        ("gold", {}, ("bad_properties",)),
        ({"plan": {"nested": 1}, "n": 3}, {"n": 3}, ("bad_properties",)),
        ({"plan": None}, {}, ("bad_properties",)),
        ({"": "x"}, {}, ("bad_properties",)),
        ({f"p{i}": i for i in range(65)}, {f"p{i}": i for i in range(64)}, ("bad_properties",)),
        ({"key_error": "spoof"}, {}, ()),
    ],
)
def test_properties(props: Any, expected: dict[str, Any], flags: tuple[str, ...]) -> None:
    entry: dict[str, Any] = {"key": "k"} if props is None else {"key": "k", "props": props}
    event = one(with_events(entry))
    assert (event.properties, event.flags) == (expected, flags)


def test_fingerprint_identifies_one_push_on_one_page_load() -> None:
    def fingerprint(seq: Any, view: Any = "pv", key: str = "k", hit_id: str = "h1") -> str:
        page = {"view": view} if view is not None else {}
        return one(with_events({"key": key, "seq": seq}, page=page), hit_id=hit_id).fingerprint

    assert fingerprint(0) == fingerprint(0, hit_id="h2")  # a resent beacon: same fingerprint
    assert (
        len({fingerprint(0), fingerprint(1), fingerprint(0, view="pv2"), fingerprint(0, key="j")})
        == 4
    )
    assert fingerprint(None) == fingerprint("0") == fingerprint(0, view=None) == ""


# -- partition key ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        beacon(),
        beacon(site=77),
        with_events({"key": "bad!"}),
        with_events({"key": "Event Key"}, page={"url": '","site":"evil'}),
    ],
)
def test_partition_key_equals_the_event_key(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    assert partition_key(raw) == events_of(raw)[0].key()


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", orjson.dumps(beacon(site=None)), orjson.dumps(beacon(visitor="a\nb"))],
)
def test_partition_key_is_empty_when_unknown(raw: bytes) -> None:
    assert partition_key(raw) == b""


# -- never raises -------------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def mostly(good: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly one of `good`, sometimes any JSON (so that most bodies get past the identity)."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good), JSON)


ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "key": mostly(["k", "Event Key", "bad!", "", " "]),
        "at": mostly([RECEIVED, RECEIVED + 10**12, -(10**15), 1.5e12, 2**63]),
        "seq": mostly([0, 1, 2**64 - 1]),
        "props": JSON | st.dictionaries(st.text(max_size=8), JSON, max_size=3),
    },
)
FIELDS = st.fixed_dictionaries(
    {
        "v": mostly([1]),
        "site": mostly(["s", "shop-eu", "7", 7]),
        "visitor": mostly(["v1", "0123abcd"]),
        "events": st.lists(st.one_of(ENTRY, ENTRY, ENTRY, JSON), max_size=5),
    },
    optional={
        "session": mostly(["s1", ""]),
        "page": JSON
        | st.fixed_dictionaries(
            {},
            optional={k: mostly(["", "https://x/", "mobile"]) for k in ("url", "device", "view")},
        ),
        "experiments": JSON | st.dictionaries(st.text(max_size=8), JSON, max_size=3),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    body=FIELDS.map(lambda obj: json.dumps(obj).encode()) | st.binary(max_size=200),
    method=st.sampled_from(["POST", "post", "GET"]),
    headers=st.dictionaries(
        st.sampled_from(["content-type", "user-agent", "referer"]), st.text(max_size=30), max_size=3
    ),
)
def test_never_raises_and_events_always_encode(
    body: bytes, method: str, headers: dict[str, str]
) -> None:
    outcome = parse(make_hit(body, method=method, headers=headers), CONTEXT)
    if isinstance(outcome, Rejected):
        assert SNAKE.fullmatch(outcome.reason)
        assert partition_key(body) == b"" or outcome.reason not in ("missing_site", "bad_site")
        return
    assert outcome.events
    for i, event in enumerate(outcome.events):
        assert event.event_id == stable_id("h1", i)
        assert event_codec.decode(event_codec.encode(event)) == event
        assert event.key() == partition_key(body)
        assert all(SNAKE.fullmatch(flag) for flag in event.flags)
