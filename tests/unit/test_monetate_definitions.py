"""Tests of `schemas.monetate_definitions`: validation, JSON, and condition matching."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.event import Event
from schemas.monetate_definitions import (
    Condition,
    EventDefinition,
    Invalid,
    decode,
    encode,
    from_dict,
    matches,
    validate,
)

SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def definition(*conditions: Condition, **overrides: Any) -> EventDefinition:
    base: dict[str, Any] = {
        "site": "shop-eu",
        "key": "reached_platinum",
        "title": "Reached platinum",
        "description": "The visitor reached the platinum tier.",
        "conditions": conditions,
    }
    return EventDefinition(**{**base, **overrides})


def cond(field: str, op: str, value: str | tuple[str, ...]) -> Condition:
    return Condition(field=field, op=op, value=value)


def event(**overrides: Any) -> Event:
    base: dict[str, Any] = {
        "event_id": "e1",
        "hit_id": "h1",
        "source": "monetate",
        "tenant": "shop-eu",
        "visitor_id": "v1",
        "name": "reached_platinum",
        "occurred_at_ms": 1,
        "received_at_ms": 1,
        "session_id": "s1",
        "page_url": "https://shop.example/checkout?step=2",
        "referrer": "https://search.example/?q=shoes",
        "device_type": "mobile",
        "properties": {"plan": "gold", "items": 3, "vip": True, "ratio": 1.5, "tags": ["a"]},
    }
    return Event(**{**base, **overrides})


def codes(problems: tuple[Any, ...]) -> list[tuple[str, str]]:
    return [(p.code, p.where) for p in problems]


# -- validation --------------------------------------------------------------------------------


def test_a_valid_definition_has_no_problem() -> None:
    assert validate(definition()) == ()
    assert validate(definition(key="Event Key", description="")) == ()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"site": ""}, [("bad_site", "site")]),
        ({"site": "a b"}, [("bad_site", "site")]),
        ({"key": "bad!"}, [("bad_key", "key")]),
        ({"key": ""}, [("bad_key", "key")]),
        ({"key": "k" * 256}, [("bad_key", "key")]),
        ({"title": "  "}, [("missing_title", "title")]),
        ({"title": "t" * 201}, [("title_too_long", "title")]),
        ({"description": "d" * 2001}, [("description_too_long", "description")]),
        (
            {"conditions": (cond("page_url", "equals", "x"),) * 21},
            [("too_many_conditions", "conditions")],
        ),
        (
            {"site": "", "key": "", "title": ""},
            [("bad_site", "site"), ("bad_key", "key"), ("missing_title", "title")],
        ),
    ],
)
def test_definition_problems(overrides: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert codes(validate(definition(**overrides))) == expected


@pytest.mark.parametrize(
    ("condition", "code"),
    [
        (cond("page_url", "equals", ""), None),
        (cond("referrer", "in", ("", "https://a/")), None),
        (cond("device_type", "in", ("mobile", "tablet")), None),
        (cond("device_type", "regex", "mobile|tablet"), None),
        (cond("property:plan", "starts_with", "go"), None),
        (cond("page_url", "regex", r"(?i)/checkout(/|\?|$)"), None),
        (cond("page_url", "regex", r"^https://[a-z.]+/p/\d{1,6}$"), None),
        (cond("page_url", "regex", r"(?:ab)+c"), None),
        (cond("url", "equals", "x"), "bad_field"),
        (cond("property:", "equals", "x"), "bad_field"),
        (cond("page_url", "like", "x"), "bad_op"),
        (cond("page_url", "in", "x"), "bad_value"),
        (cond("page_url", "equals", ("x",)), "bad_value"),
        (cond("page_url", "in", ()), "bad_value"),
        (cond("page_url", "in", tuple(str(i) for i in range(101))), "bad_value"),
        (cond("page_url", "contains", ""), "bad_value"),
        (cond("page_url", "regex", ""), "bad_value"),
        (cond("device_type", "equals", "phone"), "bad_value"),
        (cond("device_type", "in", ("mobile", "tv")), "bad_value"),
        (cond("page_url", "contains", "x" * 2049), "value_too_long"),
        (cond("page_url", "regex", "a" * 257), "regex_too_long"),
        (cond("page_url", "regex", "("), "bad_regex"),
        (cond("page_url", "regex", "a{2,1}"), "bad_regex"),
        (cond("page_url", "regex", "(a+)+$"), "unsafe_regex"),
        (cond("page_url", "regex", r"((\w+)\s?)*$"), "unsafe_regex"),
        (cond("page_url", "regex", "(x{1,9})*y"), "unsafe_regex"),
        (cond("page_url", "regex", "(a|aa)+$"), "unsafe_regex"),
        (cond("page_url", "regex", "(a?){30}"), "unsafe_regex"),
        (cond("page_url", "regex", "^" + "a?" * 30 + "a" * 30), "unsafe_regex"),
        (cond("page_url", "regex", "^" + "a{0,32}" * 8), "unsafe_regex"),
        (cond("page_url", "regex", "a*a*b"), "unsafe_regex"),
        (cond("page_url", "regex", ".*foo.*bar"), "unsafe_regex"),
        (cond("page_url", "regex", r"(a)\1"), "unsafe_regex"),
        (cond("page_url", "regex", "(?P<x>a)(?P=x)"), "unsafe_regex"),
        (cond("page_url", "regex", "^.*foo.*bar"), None),
        (cond("page_url", "regex", r"^https?://(www\.)?[^/]+/p/\d+$"), None),
        (cond("page_url", "regex", r"^\d{4}-\d{2}-\d{2}$"), None),
        (cond("page_url", "regex", r"[\]a]*x"), None),
    ],
)
def test_condition_problems(condition: Condition, code: str | None) -> None:
    problems = validate(definition(cond("page_url", "contains", "ok"), condition))
    assert [p.code for p in problems] == ([] if code is None else [code])
    assert all(p.where.startswith("conditions[1]") for p in problems)


# -- JSON ----------------------------------------------------------------------------------------


def test_round_trip() -> None:
    original = definition(
        cond("page_url", "contains", "/checkout"),
        cond("device_type", "in", ("mobile", "tablet")),
        cond("property:plan", "regex", "^(gold|platinum)$"),
    )
    data = encode(original)
    assert orjson.loads(data)["v"] == 1
    assert orjson.loads(data)["conditions"][1]["value"] == ["mobile", "tablet"]
    assert decode(data) == original


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{", [("bad_json", "")]),
        (b"[]", [("bad_shape", "")]),
        (b'{"v": 2}', [("bad_version", "v")]),
        (b'{"v": true}', [("bad_version", "v")]),
        (
            b'{"v": 1, "site": "s", "key": "k", "title": "t", "extra": 1}',
            [("unknown_field", "extra")],
        ),
        (b'{"v": 1, "site": 5, "key": "k", "title": "t"}', [("bad_shape", "site")]),
        (
            b'{"v": 1, "site": "s", "key": "k", "title": "t", "conditions": {}}',
            [("bad_shape", "conditions")],
        ),
        (
            b'{"v": 1, "site": "s", "key": "k", "title": "t",'
            b' "conditions": [{"field": "page_url"}]}',
            [("bad_shape", "conditions[0]")],
        ),
        (
            b'{"v": 1, "site": "s", "key": "k", "title": "t",'
            b' "conditions": [{"field": "page_url", "op": "in", "value": [1]}]}',
            [("bad_shape", "conditions[0]")],
        ),
        (
            b'{"v": 1, "site": "s", "key": "k!", "title": ""}',
            [("bad_key", "key"), ("missing_title", "title")],
        ),
    ],
)
def test_decode_problems(data: bytes, expected: list[tuple[str, str]]) -> None:
    result = decode(data)
    assert isinstance(result, Invalid)
    assert codes(result.problems) == expected
    assert all(SNAKE.fullmatch(p.code) for p in result.problems)


def test_decode_defaults() -> None:
    assert decode(b'{"v": 1, "site": "s", "key": "k", "title": "t"}') == EventDefinition(
        site="s", key="k", title="t"
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=15,
)
CONDITION = st.fixed_dictionaries(
    {},
    optional={
        "field": st.sampled_from(["page_url", "device_type", "property:plan", "x"]) | JSON,
        "op": st.sampled_from(["equals", "in", "regex", "contains"]) | JSON,
        "value": st.sampled_from(["(a+)+", "(", "mobile", ["a"], ""]) | JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"v": st.sampled_from([1, 1, 2])},
        optional={
            "site": st.sampled_from(["s", ""]) | JSON,
            "key": st.sampled_from(["k", "bad!"]) | JSON,
            "title": st.sampled_from(["t", ""]) | JSON,
            "conditions": st.lists(CONDITION, max_size=3) | JSON,
            "other": JSON,
        },
    )
)
def test_decode_never_raises(obj: dict[str, Any]) -> None:
    result = from_dict(json.loads(json.dumps(obj)))
    if isinstance(result, Invalid):
        assert result.problems
    else:
        assert validate(result) == ()
        assert decode(encode(result)) == result
        matches(result, event())


# -- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (cond("page_url", "equals", "https://shop.example/checkout?step=2"), True),
        (cond("page_url", "equals", "https://shop.example/checkout"), False),
        (cond("page_url", "contains", "/checkout"), True),
        (cond("page_url", "contains", "/CHECKOUT"), False),
        (cond("page_url", "starts_with", "https://shop.example/"), True),
        (cond("page_url", "starts_with", "http://"), False),
        (cond("page_url", "regex", r"step=\d"), True),
        (cond("page_url", "regex", r"(?i)CHECKOUT"), True),
        (cond("page_url", "regex", r"^/checkout"), False),
        (cond("referrer", "contains", "search.example"), True),
        (cond("referrer", "equals", ""), False),
        (cond("device_type", "equals", "mobile"), True),
        (cond("device_type", "in", ("desktop", "tablet")), False),
        (cond("device_type", "in", ("mobile", "tablet")), True),
        (cond("property:plan", "equals", "gold"), True),
        (cond("property:plan", "in", ("silver", "gold")), True),
        (cond("property:items", "equals", "3"), True),
        (cond("property:vip", "equals", "true"), True),
        (cond("property:ratio", "starts_with", "1.5"), True),
        (cond("property:tags", "contains", "a"), False),  # not a scalar: never matches
        (cond("property:missing", "equals", ""), False),  # missing: never matches
        (cond("page_url", "regex", "("), False),  # a bad regex that skipped validation
        (cond("page_url", "regex", "a" * 300), False),
        (cond("page_url", "regex", "(a+)+$"), False),  # an unsafe one is never run
    ],
)
def test_condition_matching(condition: Condition, expected: bool) -> None:
    assert matches(definition(condition), event()) is expected


def test_all_conditions_must_hold_and_none_means_always() -> None:
    yes, no = cond("device_type", "equals", "mobile"), cond("referrer", "equals", "")
    assert matches(definition(), event())
    assert matches(definition(yes, yes), event())
    assert not matches(definition(yes, no), event())
    assert matches(definition(yes, no), event(referrer=""))


@pytest.mark.parametrize(
    "overrides", [{"name": "Reached_platinum"}, {"name": "reached platinum"}, {"tenant": "other"}]
)
def test_only_the_same_site_and_key_match(overrides: dict[str, Any]) -> None:
    assert not matches(definition(), event(**overrides))


def test_matching_reads_a_bounded_subject() -> None:
    long_url = "https://shop.example/" + "a" * 100_000 + "/checkout"
    assert not matches(
        definition(cond("page_url", "contains", "/checkout")), event(page_url=long_url)
    )
    assert matches(definition(cond("page_url", "contains", "a" * 8000)), event(page_url=long_url))


@pytest.mark.parametrize(
    "pattern", ["^a*a*b", "^.*a.*b", "a*b", "^a*a*a{0,3}b", "^a*a*a?a?b", "^(a|aa)a*a*b"]
)
def test_the_slowest_accepted_regexes_stay_fast(pattern: str) -> None:
    slow = definition(cond("page_url", "regex", pattern))
    assert validate(slow) == ()
    started = time.perf_counter()
    assert not matches(slow, event(page_url="a" * 100_000))
    assert time.perf_counter() - started < 1.0
