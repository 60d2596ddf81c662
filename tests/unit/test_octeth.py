"""Tests of the Octeth Event Tracking API validator and parser (`schemas.octeth` and helpers).

Golden first (the seed's requests and answers under tests/fixtures/octeth/), then one table per
rule: each error row of the seed's tables, case-insensitive keys, all violations at once, the
extensions (100, 102, lenient comments), silent, page_view, conversions, emails kept out of
events, the properties endpoint; last, properties that no input can break.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import event as event_codec
from schemas.event import Event, stable_id
from schemas.formats import ParseContext
from schemas.formats import parse as parse_any
from schemas.octeth import (
    MINTED_UUID_HEADER,
    Credential,
    OctethRequest,
    PropertiesRequest,
    parse,
    read_credential,
    validate_event,
    validate_properties_request,
)
from schemas.octeth.body import MAX_DEPTH, strip_line_comments
from schemas.octeth.events import to_events
from schemas.octeth.fields import is_email
from schemas.octeth.messages import (
    MESSAGES,
    OctethErrors,
    properties_body,
    success_body,
)
from schemas.outcome import Accepted, Rejected
from schemas.rawhit import RawHit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "octeth"
EXPECTED = orjson.loads((FIXTURES / "expected.json").read_bytes())
MINTED = EXPECTED["minted_uuid"]
RECEIVED = EXPECTED["received_at_ms"]
KEY = "k-123"
UUID = "aae6840b-3b7e-4f95-a9d5-6dbf5da8d84d"


def request_text(name: str) -> bytes:
    return (FIXTURES / "requests" / f"{name}.jsonc").read_bytes()


def response_compact(name: str) -> bytes:
    return orjson.dumps(orjson.loads((FIXTURES / "responses" / f"{name}.json").read_bytes()))


def body(**fields: Any) -> bytes:
    return orjson.dumps({"APIKey": KEY, "ListID": 94, **fields})


def ok(data: bytes, **kwargs: Any) -> OctethRequest:
    result = validate_event(data, **kwargs)
    assert isinstance(result, OctethRequest), result
    return result


def codes_of(data: bytes, **kwargs: Any) -> tuple[int, ...]:
    result = validate_event(data, **kwargs)
    assert isinstance(result, OctethErrors), result
    return result.codes


def make_hit(data: bytes, *, headers: dict[str, str] | None = None, hit_id: str = "h1") -> RawHit:
    return RawHit(
        hit_id=hit_id,
        kind="octeth",
        received_at_ms=RECEIVED,
        method="POST",
        path="/api/v1/event",
        headers={} if headers is None else headers,
        body=data,
    )


def event_of(data: bytes, **kwargs: Any) -> Event:
    (event,) = to_events(ok(data), make_hit(data, **kwargs), minted_uuid=MINTED)
    return event


# -- golden: the seed's requests and answers ------------------------------------------------


def _as_fixture(request: OctethRequest) -> dict[str, Any]:
    conversion = request.conversion
    return {
        "list_id": request.list_id,
        "event": request.event,
        "event_type": request.event_type,
        "credential": [request.credential.kind, request.credential.value],
        "external_id": request.external_id,
        "uuid": request.uuid,
        "email": request.email,
        "properties": request.properties,
        "is_silent": request.is_silent,
        "conversion": None
        if conversion is None
        else {
            "id": conversion.id,
            "name": conversion.name,
            "value": str(conversion.value),
            "value_cents": conversion.value_cents,
            "currency": conversion.currency,
            "quantity": conversion.quantity,
        },
        "flags": list(request.flags),
    }


@pytest.mark.parametrize("name", sorted(EXPECTED["events"]))
def test_seed_requests_lenient(name: str) -> None:
    case = EXPECTED["events"][name]
    request = ok(request_text(name), lenient=True)
    assert _as_fixture(request) == case["request"]
    answer = success_body(request.uuid or MINTED, request.external_id, request.identify_event_sent)
    if "success_file" in case:
        assert answer == response_compact(case["success_file"].removesuffix(".json"))
    else:
        assert orjson.loads(answer) == case["success"]
    hit = make_hit(request_text(name))
    (event,) = to_events(request, hit, minted_uuid=MINTED)
    got = orjson.loads(event_codec.encode(event))
    assert {key: got[key] for key in case["event"]} == case["event"]
    assert got["source"] == "octeth"
    assert got["session_id"] == ""
    assert got["event_id"] == stable_id("h1", 0)


@pytest.mark.parametrize("name", sorted(EXPECTED["events"]))
def test_seed_requests_strict(name: str) -> None:
    """The seed's `//` comments are not JSON: strict mode answers 102; without them, the same."""
    text = request_text(name)
    strict = validate_event(text)
    assert isinstance(strict, OctethErrors)
    assert (strict.status, strict.codes) == (400, (102,))
    without = b"\n".join(line for line in text.splitlines() if not line.lstrip().startswith(b"//"))
    assert ok(without) == ok(text, lenient=True)


def test_seed_success_body_is_byte_exact() -> None:
    assert success_body(MINTED, "user-id-2006", True) == response_compact("event_success")
    assert success_body("u-1", None, False) == (
        b'{"status":"success","uuid":"u-1","external_id":null,"identify_event_sent":false}'
    )


def test_seed_error_body_is_byte_exact() -> None:
    errors = validate_event(body(ListID="nope", event="test"))
    assert isinstance(errors, OctethErrors)
    assert errors.status == 422
    assert errors.body() == response_compact("event_error_4")
    assert errors.body() == b'{"Errors":[{"Code":4,"Message":"Invalid ListID parameter"}]}'


def test_seed_properties_request_and_answers() -> None:
    case = EXPECTED["properties_request"]
    text = (FIXTURES / "requests" / case["file"]).read_bytes()
    found = validate_properties_request(text, lenient=True, lists=lambda list_id: list_id == 3)
    assert found == PropertiesRequest(case["list_id"], Credential(*case["credential"]))
    strict = validate_properties_request(text)
    assert isinstance(strict, OctethErrors)
    assert strict.codes == (102,)
    missing = validate_properties_request(text, lenient=True, lists=lambda _: False)
    assert isinstance(missing, OctethErrors)
    assert missing.body() == response_compact("properties_error_3")
    seed = orjson.loads((FIXTURES / "responses" / "properties_success.json").read_bytes())
    shuffled = {event: list(reversed(keys)) * 2 for event, keys in seed["Properties"].items()}
    shuffled = dict(reversed(shuffled.items()))
    assert properties_body(3, shuffled) == response_compact("properties_success")


# -- every error row of the seed's tables --------------------------------------------------

EVENT_ROWS = [
    (4, body(ListID=None, event="e"), "list-null"),
    (4, orjson.dumps({"APIKey": KEY, "event": "e"}), "list-missing"),
    (4, body(ListID=0, event="e"), "list-zero"),
    (4, body(ListID=-3, event="e"), "list-negative"),
    (4, body(ListID="abc", event="e"), "list-text"),
    (4, body(ListID="", event="e"), "list-empty"),
    (4, body(ListID=1.5, event="e"), "list-float"),
    (4, body(ListID=94.0, event="e"), "list-integral-float"),
    (4, body(ListID=True, event="e"), "list-bool"),
    (4, body(ListID=[94], event="e"), "list-array"),
    (4, body(ListID="9" * 20, event="e"), "list-too-big"),
    (5, body(), "event-missing"),
    (5, body(event=""), "event-empty"),
    (5, body(event="   "), "event-blank"),
    (5, body(event=None), "event-null"),
    (5, body(event=7), "event-number"),
    (5, body(event="x" * 256), "event-too-long"),
    (6, body(event="identify"), "identify-no-email"),
    (6, body(event="identify", email=""), "identify-empty-email"),
    (6, body(event="identify", email=None), "identify-null-email"),
    (7, body(event="test", email="not-an-email"), "email-invalid"),
    (7, body(event="identify", email="a@b"), "identify-email-invalid"),
    (7, body(event="test", email=42), "email-number"),
    (7, body(event="test", email="a b@test.com"), "email-space"),
    (
        8,
        body(event="conversion", properties={"conversion-name": "n", "conversion-value": 1}),
        "c-id",
    ),
    (
        9,
        body(event="conversion", properties={"conversion-id": "i", "conversion-value": 1}),
        "c-name",
    ),
    (
        10,
        body(event="conversion", properties={"conversion-id": "i", "conversion-name": "n"}),
        "c-v",
    ),
]


@pytest.mark.parametrize(
    ("code", "data"), [row[:2] for row in EVENT_ROWS], ids=[row[2] for row in EVENT_ROWS]
)
def test_event_error_rows(code: int, data: bytes) -> None:
    result = validate_event(data)
    assert isinstance(result, OctethErrors)
    assert result.codes == (code,)
    assert result.status == 422
    assert orjson.loads(result.body()) == {"Errors": [{"Code": code, "Message": MESSAGES[code]}]}


def test_seed_messages_verbatim() -> None:
    assert {code: MESSAGES[code] for code in range(1, 11) if code not in (1, 2, 3)} == {
        4: "Invalid ListID parameter",
        5: "Missing event parameter.",
        6: "Missing email parameter.",
        7: "Invalid email parameter.",
        8: "Missing conversion-id event property.",
        9: "Missing conversion-name event property.",
        10: "Missing conversion-value event property.",
    }
    assert [MESSAGES[code] for code in (1, 2, 3)] == [
        "Missing ListID parameter",
        "Invalid ListID parameter",
        "List not found",
    ]


def test_list_not_in_account_is_code_4() -> None:
    asked: list[int] = []

    def lists(list_id: int) -> bool:
        asked.append(list_id)
        return list_id == 3

    assert codes_of(body(event="e"), lists=lists) == (4,)
    assert ok(body(ListID="3", event="e"), lists=lists).list_id == 3
    assert asked == [94, 3]


@pytest.mark.parametrize(
    ("value", "list_id"),
    [(94, 94), ("94", 94), (" 94 ", 94), ("094", 94), (2**63 - 1, 2**63 - 1)],
    ids=["int", "string", "blanks", "leading-zero", "max"],
)
def test_list_id_accepted(value: Any, list_id: int) -> None:
    assert ok(body(ListID=value, event="e")).list_id == list_id


PROPERTIES_ROWS = [
    (1, {"APIKey": KEY}, "missing"),
    (1, {"APIKey": KEY, "ListID": None}, "null"),
    (1, {"APIKey": KEY, "ListID": " "}, "blank"),
    (2, {"APIKey": KEY, "ListID": "abc"}, "text"),
    (2, {"APIKey": KEY, "ListID": 0}, "zero"),
    (2, {"APIKey": KEY, "ListID": 3.5}, "float"),
    (3, {"APIKey": KEY, "ListID": 4}, "not-found"),
    (100, {"ListID": 3}, "no-credential"),
]


@pytest.mark.parametrize(
    ("code", "payload"),
    [row[:2] for row in PROPERTIES_ROWS],
    ids=[row[2] for row in PROPERTIES_ROWS],
)
def test_properties_error_rows(code: int, payload: dict[str, Any]) -> None:
    result = validate_properties_request(orjson.dumps(payload), lists=lambda i: i == 3)
    assert isinstance(result, OctethErrors)
    assert result.errors == ((code, MESSAGES[code]),)
    assert result.status == (401 if code == 100 else 422)


def test_properties_request_ok_and_body() -> None:
    found = validate_properties_request(orjson.dumps({"sessionid": "s-1", "listid": "3"}))
    assert found == PropertiesRequest(3, Credential("session_id", "s-1"))
    assert properties_body(3, {}) == b'{"ListID":"3","Properties":{}}'
    assert properties_body(7, {"b": ["z", "a", "z"], "A": ["$x"]}) == (
        b'{"ListID":"7","Properties":{"A":["$x"],"b":["a","z"]}}'
    )


# -- all violations at once, sorted ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "codes"),
    [
        ({"APIKey": KEY, "ListID": "x"}, (4, 5)),
        ({"APIKey": KEY, "event": "identify"}, (4, 6)),
        ({"APIKey": KEY, "ListID": 0, "event": "identify", "email": "bad"}, (4, 7)),
        (
            {"properties": {}, "email": "@", "event": "conversion", "ListID": -1, "APIKey": KEY},
            (4, 7, 8, 9, 10),
        ),
        ({"APIKey": KEY, "ListID": 1, "event": "conversion", "properties": []}, (8, 9, 10)),
        ({"APIKey": KEY, "ListID": 1, "event": "conversion", "properties": "x"}, (8, 9, 10)),
    ],
    ids=["list-event", "list-email", "list-bad-email", "five", "conversion-empty", "props-text"],
)
def test_all_violations_at_once_sorted(payload: dict[str, Any], codes: tuple[int, ...]) -> None:
    result = validate_event(orjson.dumps(payload))
    assert isinstance(result, OctethErrors)
    assert result.codes == codes
    assert [e["Code"] for e in orjson.loads(result.body())["Errors"]] == list(codes)


# -- keys: top level case-insensitive, properties case-sensitive -----------------------------


def test_top_level_keys_are_case_insensitive() -> None:
    data = orjson.dumps(
        {
            "APIKEY": KEY,
            "listId": "94",
            "EVENT": "identify",
            "EMAIL": "ann@example.com",
            "Id": "u-1",
            "Uuid": UUID,
            "PROPERTIES": {"a": 1},
            "ISSILENT": "true",
        }
    )
    request = ok(data)
    assert (request.list_id, request.event, request.email) == (94, "identify", "ann@example.com")
    assert (request.external_id, request.uuid, request.properties) == ("u-1", UUID, {"a": 1})
    assert request.is_silent
    assert request.credential == Credential("api_key", KEY)


def test_property_keys_are_case_sensitive() -> None:
    props = {"Conversion-Id": "i", "conversion-name": "n", "conversion-value": 1, "IsSilent": 1}
    assert codes_of(body(event="conversion", properties=props)) == (8,)
    assert not ok(body(event="e", properties={"issilent": True})).is_silent


def test_repeated_key_first_spelling_wins_and_is_flagged() -> None:
    data = b'{"APIKey":"k","ListID":1,"event":"first","Event":"second"}'
    request = ok(data)
    assert request.event == "first"
    assert request.flags == ("duplicate_parameter",)
    assert ok(b'{"APIKey":"k","ListID":1,"event":"a","event":"b"}').flags == ()


def test_non_ascii_key_spellings_do_not_match() -> None:
    data = orjson.dumps({"APIKey": KEY, "ListID": 1, "\u0130D": "x", "event": "e"})  # dotted I
    assert ok(data).external_id is None


# -- extensions: credential (100), body not an object (102), lenient comments ----------------


@pytest.mark.parametrize(
    ("payload", "credential"),
    [
        ({"APIKey": "k", "SessionID": "s"}, Credential("api_key", "k")),
        ({"SessionID": "s"}, Credential("session_id", "s")),
        ({"apikey": " ", "sessionID": "s"}, Credential("session_id", "s")),
        ({"APIKey": 5}, None),
        ({"APIKey": ""}, None),
        ({"APIKey": None, "SessionID": []}, None),
        ({}, None),
    ],
    ids=["apikey-wins", "session", "blank-key", "number", "empty", "null", "none"],
)
def test_credential(payload: dict[str, Any], credential: Credential | None) -> None:
    data = orjson.dumps({**payload, "ListID": 1, "event": "e"})
    found = read_credential(data)
    if credential is None:
        assert isinstance(found, OctethErrors)
        assert (found.status, found.codes) == (401, (100,))
        assert validate_event(data) == found
        assert validate_properties_request(data) == found
    else:
        assert found == credential
        assert ok(data).credential == credential


def test_credential_and_email_never_in_repr() -> None:
    request = ok(body(APIKey="secret-key-9", event="e", email="ann@example.com"))
    assert "secret-key-9" not in repr(request)
    assert "ann@example.com" not in repr(request)


NOT_OBJECTS = [
    (b"", "empty"),
    (b"   ", "blank"),
    (b"null", "null"),
    (b"[]", "array"),
    (b'"text"', "string"),
    (b"42", "number"),
    (b"{", "truncated"),
    (b'{"APIKey":"k","ListID":1,"event":"e",}', "trailing-comma"),
    (b'{"APIKey":"k","ListID":NaN,"event":"e"}', "nan"),
    (b'{"APIKey":"k","ListID":Infinity,"event":"e"}', "infinity"),
    (b'{"APIKey":"k","ListID":1,"event":"\\ud800"}', "lone-surrogate"),
    (b'{"APIKey":"k","ListID":1,"event":"\xff"}', "bad-utf8"),
    (b'{"APIKey":"k","ListID":1,"event":"\xed\xa0\x80"}', "encoded-surrogate"),
    (b"{'APIKey':'k'}", "single-quotes"),
    (b'{"APIKey":"k"} {"x":1}', "two-documents"),
    (b'{"APIKey":"k", /* c */ "ListID":1,"event":"e"}', "block-comment"),
    (b'// {"APIKey":"k","ListID":1,"event":"e"}', "only-a-comment"),
]


@pytest.mark.parametrize("data", [row[0] for row in NOT_OBJECTS], ids=[r[1] for r in NOT_OBJECTS])
@pytest.mark.parametrize("lenient", [False, True], ids=["strict", "lenient"])
def test_body_not_a_json_object_is_102(data: bytes, lenient: bool) -> None:
    result = validate_event(data, lenient=lenient)
    assert isinstance(result, OctethErrors)
    assert (result.status, result.codes) == (400, (102,))
    assert (
        result.body() == b'{"Errors":[{"Code":102,"Message":"Request body is not a JSON object."}]}'
    )


def _nested(depth: int) -> bytes:
    """A valid request whose properties nest `depth` levels in all (the body itself is level 1)."""
    inner = b"[" * (depth - 2) + b"1" + b"]" * (depth - 2)
    return b'{"APIKey":"k","ListID":1,"event":"e","properties":{"p":' + inner + b"}}"


def test_nesting_limit() -> None:
    assert ok(_nested(MAX_DEPTH)).properties
    assert codes_of(_nested(MAX_DEPTH + 1)) == (102,)
    assert codes_of(b"[" * 5000 + b"]" * 5000) == (102,)


def test_byte_order_mark_is_skipped() -> None:
    assert ok(b"\xef\xbb\xbf" + body(event="e")).event == "e"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"a": "http://x//y"} // c', b'{"a": "http://x//y"} '),
        (b'{"a": "q\\"//not a comment"}', b'{"a": "q\\"//not a comment"}'),
        (b'{"a": 1} // "unclosed', b'{"a": 1} '),
        (b'// first\r\n{"a": 1}', b'\r\n{"a": 1}'),
        (b'{"a": "\\\\"// c\n}', b'{"a": "\\\\"\n}'),
        (b'{"a": "//', b'{"a": "//'),
    ],
    ids=["url-in-string", "escaped-quote", "quote-in-comment", "crlf", "escaped-backslash", "open"],
)
def test_strip_line_comments(text: bytes, expected: bytes) -> None:
    assert strip_line_comments(text) == expected


def test_lenient_keeps_strings_intact() -> None:
    data = b'{ // creds\n"APIKey": "k//1", // the key\n"ListID": 1,\n"event": "e", "id": "a//b"}'
    request = ok(data, lenient=True)
    assert (request.credential.value, request.external_id) == ("k//1", "a//b")
    assert codes_of(data) == (102,)


# -- isSilent, page_view, identify ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "silent"),
    [
        ({"isSilent": True}, True),
        ({"isSilent": "true"}, True),
        ({"isSilent": 1}, True),
        ({"ISSILENT": True}, True),
        ({"properties": {"isSilent": True}}, True),
        ({"properties": {"isSilent": "true"}}, True),
        ({"properties": {"isSilent": 1}}, True),
        ({"isSilent": False}, False),
        ({"isSilent": "TRUE"}, False),
        ({"isSilent": "1"}, False),
        ({"isSilent": 1.0}, False),
        ({"isSilent": 2}, False),
        ({"isSilent": 0, "properties": {"isSilent": True}}, True),
        ({}, False),
    ],
    ids=[
        "true", "string-true", "one", "key-case", "prop-true", "prop-string", "prop-one",
        "false", "upper-string", "string-one", "float-one", "two", "either", "absent",
    ],
)  # fmt: skip
def test_is_silent(fields: dict[str, Any], silent: bool) -> None:
    data = body(event="e", **fields)
    assert ok(data).is_silent is silent
    assert ("silent" in event_of(data).flags) is silent


@pytest.mark.parametrize("name", ["page_view", "pageView", "pageview"])
def test_page_view_spellings_are_one_type(name: str) -> None:
    request = ok(body(event=name))
    assert (request.event, request.event_type) == (name, "page_view")
    event = event_of(body(event=name))
    assert (event.name, event.dimensions["event_type"]) == (name, "page_view")


@pytest.mark.parametrize("name", ["PageView", "page-view", "Page_View"])
def test_other_spellings_are_their_own_type(name: str) -> None:
    assert ok(body(event=name)).event_type == name


def test_event_name_is_trimmed() -> None:
    assert ok(body(event="  test  ")).event == "test"
    assert ok(body(event="x" * 255)).event == "x" * 255


def test_identify_with_email() -> None:
    data = body(event="identify", email=" Ann.Lee+tag@Example.co.uk ")
    request = ok(data)
    assert request.email == "Ann.Lee+tag@Example.co.uk"
    assert request.identify_event_sent
    assert event_of(data).flags == ("email_present", "identify", "uuid_minted")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2006@test.com", True),
        ("event-test-001@test.com", True),
        ("a.b-c_d+e@sub.example.museum", True),
        ("o'neil@example.ie", True),
        ("a@b.co", True),
        ("a@b", False),
        ("a@b.c", False),
        ("@b.com", False),
        ("a@", False),
        ("a..b@test.com", False),
        (".a@test.com", False),
        ("a@-b.com", False),
        ("a@b..com", False),
        ("a@@b.com", False),
        ("a@b.com.", False),
        ("ann@exämple.com", False),
        ("x" * 65 + "@test.com", False),
        ("x@" + "a" * 250 + ".com", False),
    ],
)
def test_email_shape(text: str, valid: bool) -> None:
    assert is_email(text) is valid


# -- ID and uuid ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "external_id", "uuid", "flags"),
    [
        ({"id": "user-1", "uuid": UUID}, "user-1", UUID, ()),
        ({"id": " user-1 ", "uuid": f" {UUID} "}, "user-1", UUID, ()),
        ({"id": 2006}, "2006", None, ()),
        ({"id": "", "uuid": ""}, None, None, ()),
        ({"id": None, "uuid": None}, None, None, ()),
        ({"id": {"a": 1}}, None, None, ("bad_id",)),
        ({"id": True}, None, None, ("bad_id",)),
        ({"id": "x" * 256}, None, None, ("bad_id",)),
        ({"uuid": 5}, None, None, ("bad_uuid",)),
        ({"uuid": "a\nb"}, None, None, ("bad_uuid",)),
        ({"uuid": "u" * 129}, None, None, ("bad_uuid",)),
        ({"uuid": "13f8e79a-f063-4b80-10e4-b65a699a2f56"}, None, MINTED, ()),
    ],
    ids=[
        "both", "trimmed", "int-id", "empty", "null", "object-id", "bool-id", "long-id",
        "int-uuid", "control-uuid", "long-uuid", "seed-non-rfc-uuid",
    ],
)  # fmt: skip
def test_ids(
    fields: dict[str, Any], external_id: str | None, uuid: str | None, flags: tuple[str, ...]
) -> None:
    request = ok(body(event="e", **fields))
    assert (request.external_id, request.uuid, request.flags) == (external_id, uuid, flags)


# -- conversions ------------------------------------------------------------------------------

BASE_CONVERSION = {"conversion-id": "o-1", "conversion-name": "Order"}


def conversion(**props: Any) -> bytes:
    return body(event="conversion", properties={**BASE_CONVERSION, **props})


@pytest.mark.parametrize(
    ("value", "cents", "flags"),
    [
        (50, 5000, ()),
        (290.50, 29050, ()),
        ("290.50", 29050, ()),
        (" 12 ", 1200, ()),
        ("12.345", 1235, ("value_rounded",)),
        (0.005, 1, ("value_rounded",)),
        (-0.005, -1, ("negative_value", "value_rounded")),
        ("-10", -1000, ("negative_value",)),
        (0, 0, ()),
        (1e3, 100000, ()),
        (".5", 50, ()),
        ("12.", 1200, ()),
        (10**10, 10**12, ()),
    ],
)
def test_conversion_value(value: Any, cents: int, flags: tuple[str, ...]) -> None:
    request = ok(conversion(**{"conversion-value": value}))
    assert request.conversion is not None
    assert request.conversion.value_cents == cents
    assert request.flags == flags
    assert event_of(conversion(**{"conversion-value": value})).value_cents == cents


@pytest.mark.parametrize(
    "value",
    ["", "abc", "1e3", "1,5", ".", "--1", True, None, [], {}, 10**10 + 1, 1e300, "١٢"],
)
def test_conversion_value_not_a_number_is_code_10(value: Any) -> None:
    assert codes_of(conversion(**{"conversion-value": value})) == (10,)


@pytest.mark.parametrize(
    ("props", "currency", "quantity", "flags"),
    [
        ({"conversion-currency": "USD", "conversion-quantity": 2}, "USD", 2, ()),
        ({}, None, 1, ()),
        ({"conversion-currency": "", "conversion-quantity": None}, None, 1, ()),
        ({"conversion-quantity": "3"}, None, 3, ()),
        ({"conversion-currency": "usd"}, None, 1, ("bad_currency",)),
        ({"conversion-currency": "US"}, None, 1, ("bad_currency",)),
        ({"conversion-currency": 840}, None, 1, ("bad_currency",)),
        ({"conversion-quantity": 0}, None, 1, ("bad_quantity",)),
        ({"conversion-quantity": -2}, None, 1, ("bad_quantity",)),
        ({"conversion-quantity": 2.5}, None, 1, ("bad_quantity",)),
        ({"conversion-quantity": True}, None, 1, ("bad_quantity",)),
    ],
    ids=[
        "seed", "absent", "blank", "string-qty", "lower-currency", "short-currency",
        "numeric-currency", "zero-qty", "negative-qty", "float-qty", "bool-qty",
    ],
)  # fmt: skip
def test_conversion_currency_and_quantity(
    props: dict[str, Any], currency: str | None, quantity: int, flags: tuple[str, ...]
) -> None:
    request = ok(conversion(**{"conversion-value": 1, **props}))
    assert request.conversion is not None
    assert (request.conversion.currency, request.conversion.quantity) == (currency, quantity)
    assert request.flags == flags


def test_conversion_ids_and_fingerprint() -> None:
    data = conversion(**{"conversion-id": 234, "conversion-value": "9.99"})
    request = ok(data)
    assert request.conversion is not None
    assert (request.conversion.id, request.conversion.value) == ("234", Decimal("9.99"))
    first = event_of(data)
    again = event_of(conversion(**{"conversion-id": 234, "conversion-value": 1}), hit_id="h2")
    other = event_of(conversion(**{"conversion-id": 235, "conversion-value": "9.99"}))
    assert first.fingerprint == again.fingerprint != other.fingerprint
    assert event_of(body(event="e")).fingerprint == ""


def test_conversion_properties_only_checked_for_conversions() -> None:
    assert ok(body(event="purchase", properties={"conversion-value": "abc"})).conversion is None
    assert codes_of(body(event=" conversion ", properties={})) == (8, 9, 10)


# -- events: no email in clear, request attributes -----------------------------------------


def test_emails_never_reach_the_event() -> None:
    email = "ann@example.com"
    data = body(
        event="conversion",
        email=email,
        id="bob@example.com",
        properties={
            **BASE_CONVERSION,
            "conversion-value": 1,
            "conversion-name": "carl@example.com",
            "emailAddress": f" {email} ",
            "nested": {"list": ["x", "dan@example.com", 3]},
            "note": "no email here",
        },
    )
    event = event_of(data)
    encoded = event_codec.encode(event)
    assert b"@example.com" not in encoded
    assert {"email_present", "email_redacted"} <= set(event.flags)
    assert event.properties["emailAddress"] == "[email]"
    assert event.properties["nested"] == {"list": ["x", "[email]", 3]}
    assert event.properties["note"] == "no email here"
    assert event.dimensions["external_id"] == "[email]"
    assert event.dimensions["conversion_name"] == "[email]"
    plain = event_of(body(event="e", properties={"n": "[email]"}))
    assert "email_redacted" not in plain.flags


def test_event_page_context_from_properties() -> None:
    props = {
        "$current_url": "https://shop.example/p",
        "$referrer": "https://r.example/",
        "$device_type": "mobile",
    }
    event = event_of(body(event="pageView", properties=props), headers={"user-agent": "UA/1"})
    assert (event.page_url, event.referrer, event.device_type) == (
        "https://shop.example/p",
        "https://r.example/",
        "mobile",
    )
    assert event.user_agent == "UA/1"
    assert event_of(body(event="e", properties={"$current_url": 5})).page_url == ""


# -- parse: the pipeline's entry point ----------------------------------------------------


def test_parse_registered_and_deterministic() -> None:
    context = ParseContext(late_horizon_ms=0)
    data = request_text("event_2_page_view")  # has `//` comments: the pipeline reads leniently
    hit = make_hit(data, headers={MINTED_UUID_HEADER: MINTED})
    outcome = parse_any(hit, context)
    assert isinstance(outcome, Accepted)
    (event,) = outcome.events
    assert event.visitor_id == MINTED
    assert parse_any(hit, context) == outcome
    fallback = parse(make_hit(data, hit_id="h9"))
    assert isinstance(fallback, Accepted)
    assert fallback.events[0].visitor_id == stable_id("h9")
    bad_header = parse(make_hit(data, headers={MINTED_UUID_HEADER: "a\x00b"}, hit_id="h9"))
    assert bad_header == fallback
    sent = parse(make_hit(request_text("event_4_checkout"), headers={MINTED_UUID_HEADER: MINTED}))
    assert isinstance(sent, Accepted)
    assert sent.events[0].visitor_id == UUID


def test_parse_does_not_recheck_lists() -> None:
    outcome = parse(make_hit(body(ListID=123456, event="e")), ParseContext(late_horizon_ms=0))
    assert isinstance(outcome, Accepted)
    assert outcome.events[0].tenant == "123456"


@pytest.mark.parametrize(
    ("data", "reason", "detail"),
    [
        (b"nope", "octeth_102", "102 Request body is not a JSON object."),
        (orjson.dumps({"ListID": 1, "event": "e"}), "octeth_100", "100 Missing APIKey or"),
        (body(ListID="x"), "octeth_4", "4 Invalid ListID parameter; 5 Missing event parameter."),
        (body(event="identify", email="bad"), "octeth_7", "7 Invalid email parameter."),
    ],
    ids=["102", "100", "4-5", "7"],
)
def test_parse_rejections(data: bytes, reason: str, detail: str) -> None:
    outcome = parse(make_hit(data))
    assert isinstance(outcome, Rejected)
    assert outcome.reason == reason
    assert outcome.detail.startswith(detail)
    assert "bad" not in outcome.detail


def test_parse_wrong_kind() -> None:
    hit = RawHit(hit_id="h", kind="monetate", received_at_ms=0, body=body(event="e"))
    outcome = parse(hit)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == "wrong_kind"


def test_errors_need_a_code() -> None:
    with pytest.raises(ValueError, match="at least one code"):
        OctethErrors.of([])


# -- properties no input can break ----------------------------------------------------------

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["true", "", " ", "94", "a@b.co", "conversion", "identify", "USD", "1.5"])
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
PROPS = st.dictionaries(
    st.sampled_from(["conversion-id", "conversion-name", "conversion-value", "isSilent",
                     "conversion-currency", "conversion-quantity", "$current_url", "x"]),
    JSON_LEAF | JSON_VALUE,
    max_size=6,
)  # fmt: skip


def mostly(usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` three times in four, else `other`."""
    return st.integers(0, 3).flatmap(lambda pick: usual if pick else other)


# Near-valid requests: each field mostly plausible, sometimes arbitrary, plus unknown keys.
REQUESTS = st.fixed_dictionaries(
    {
        "APIKey": mostly(st.just(KEY), JSON_LEAF),
        "ListID": mostly(st.sampled_from([94, "3"]), JSON_LEAF),
        "event": mostly(st.sampled_from(["conversion", "identify", "pageView", "e"]), JSON_LEAF),
    },
    optional={
        "sessionid": JSON_LEAF,
        "EMAIL": mostly(st.sampled_from(["ann@example.com", ""]), JSON_LEAF),
        "Id": JSON_LEAF,
        "uuid": st.just(UUID) | JSON_LEAF,
        "properties": mostly(PROPS, JSON_VALUE),
        "isSilent": JSON_LEAF,
        "Event": JSON_LEAF,
        "extra": JSON_VALUE,
    },
)
ERROR_STATUS = {400: {102}, 401: {100}, 422: set(range(4, 11))}


def _check(result: OctethRequest | OctethErrors, data: bytes) -> None:
    if isinstance(result, OctethErrors):
        assert result.codes
        assert set(result.codes) <= ERROR_STATUS[result.status]
        assert list(result.codes) == sorted(set(result.codes))
        envelope = orjson.loads(result.body())
        assert list(envelope) == ["Errors"]
        assert [(e["Code"], e["Message"]) for e in envelope["Errors"]] == list(result.errors)
        return
    assert isinstance(result, OctethRequest)
    assert result.list_id > 0 and result.event
    (event,) = to_events(result, make_hit(data), minted_uuid=MINTED)
    assert event_codec.decode(event_codec.encode(event)) == event
    orjson.loads(success_body(event.visitor_id, result.external_id, result.identify_event_sent))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, lenient: bool) -> None:
    _check(validate_event(data, lenient=lenient), data)
    assert isinstance(parse(make_hit(data)), Accepted | Rejected)
    result = validate_properties_request(data, lenient=lenient)
    assert isinstance(result, PropertiesRequest | OctethErrors)


@settings(max_examples=400, deadline=None)
@given(REQUESTS, st.booleans(), st.booleans())
def test_arbitrary_json_never_raises(payload: dict[str, Any], lenient: bool, listed: bool) -> None:
    data = json.dumps(payload).encode()  # the stdlib writes integers of any size
    result = validate_event(data, lenient=lenient, lists=lambda _: listed)
    _check(result, data)
    if isinstance(result, OctethRequest):
        assert listed
    assert validate_event(data, lenient=True) == validate_event(data)
    outcome = parse(make_hit(data))
    assert isinstance(outcome, Accepted | Rejected)
    if isinstance(outcome, Rejected):
        assert re.fullmatch(r"octeth_(?:4|5|6|7|8|9|10|100)", outcome.reason)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUE)
def test_stripping_comments_is_a_no_op_on_json(value: Any) -> None:
    for data in (
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False, indent=2).encode(),
    ):
        assert strip_line_comments(data) == data
