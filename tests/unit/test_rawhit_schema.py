"""The JSON Schema of the `RawHit` envelope (`schemas/rawhit.schema.json`) against the codec.

Producers in other languages validate against the schema; the pipeline decodes with
`schemas.rawhit.decode`. The two must agree: every envelope `rawhit.encode` writes validates,
and an envelope the decoder refuses is refused by the schema too (and the reverse), over a table
of broken envelopes and over generated ones. The known differences are named below.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas import rawhit
from schemas.rawhit import RawHit

SCHEMA = json.loads((Path(rawhit.__file__).parent / "rawhit.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


def schema_accepts(envelope: Any) -> bool:
    return VALIDATOR.is_valid(envelope)


def decoder_accepts(envelope: Any) -> bool:
    try:
        rawhit.decode(orjson.dumps(envelope))
    except rawhit.RawHitError:
        return False
    return True


def valid_envelope() -> dict[str, Any]:
    hit = RawHit(
        hit_id="h-1",
        kind="optimizely",
        received_at_ms=1_790_000_000_000,
        method="POST",
        path="/event",
        query="a=42&u=v1",
        headers={"user-agent": "backend/1.0"},
        body=b"n=view\xff",
        remote_addr="203.0.113.9",
    )
    envelope: dict[str, Any] = orjson.loads(rawhit.encode(hit))
    return envelope


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_names_every_field_the_encoder_writes() -> None:
    assert set(SCHEMA["properties"]) == set(valid_envelope())
    assert set(SCHEMA["properties"]["kind"]["enum"]) == rawhit.KINDS
    assert SCHEMA["properties"]["v"]["const"] == rawhit.VERSION
    assert SCHEMA["properties"]["hit_id"]["maxLength"] == rawhit.MAX_HIT_ID


hits = st.builds(
    RawHit,
    hit_id=st.text(min_size=1, max_size=rawhit.MAX_HIT_ID),
    kind=st.sampled_from(sorted(rawhit.KINDS)),
    received_at_ms=st.integers(min_value=0, max_value=2**63 - 1),
    method=st.sampled_from(["GET", "POST", "OPTIONS", ""]),
    path=st.text(max_size=40),
    query=st.text(max_size=80),
    headers=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5),
    body=st.binary(max_size=200),
    remote_addr=st.text(max_size=40),
)


@given(hits)
def test_every_envelope_the_encoder_writes_validates(hit: RawHit) -> None:
    encoded = rawhit.encode(hit)
    assert schema_accepts(orjson.loads(encoded))
    assert rawhit.decode(encoded) == hit


def without(key: str) -> dict[str, Any]:
    envelope = valid_envelope()
    del envelope[key]
    return envelope


def having(**fields: Any) -> dict[str, Any]:
    return {**valid_envelope(), **fields}


ACCEPTED = {
    "as encoded": valid_envelope(),
    "an unknown extra field": having(trace_id="t-1"),
    "only the required fields": {
        "v": 1,
        "hit_id": "h",
        "kind": "native",
        "received_at_ms": 0,
    },
    "an empty body": having(body_b64=""),
    "a one-byte body": having(body_b64="AQ=="),
    "a hit id of 128 characters": having(hit_id="é" * 128),
}
REJECTED = {
    "a list": [valid_envelope()],
    "a string": "hits",
    "no version": without("v"),
    "version 2": having(v=2),
    "no hit id": without("hit_id"),
    "an empty hit id": having(hit_id=""),
    "a hit id of 129 characters": having(hit_id="h" * 129),
    "a numeric hit id": having(hit_id=7),
    "no kind": without("kind"),
    "an unknown kind": having(kind="amplitude"),
    "a kind in capitals": having(kind="OCTETH"),
    "no receive time": without("received_at_ms"),
    "a negative receive time": having(received_at_ms=-1),
    "a receive time as text": having(received_at_ms="1790000000000"),
    "a boolean receive time": having(received_at_ms=True),
    "a fractional receive time": having(received_at_ms=1.5),
    "headers as a list": having(headers=[["host", "x"]]),
    "a numeric header value": having(headers={"content-length": 3}),
    "a null method": having(method=None),
    "a numeric query": having(query=1),
    "a list path": having(path=["/event"]),
    "a numeric remote address": having(remote_addr=1),
    "a body with a space": having(body_b64="AQ =="),
    "a body without its padding": having(body_b64="AQ"),
    "a body in url-safe base64": having(body_b64="-_8="),
    "a numeric body": having(body_b64=0),
}


@pytest.mark.parametrize("envelope", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_valid_envelopes_pass_both(envelope: Any) -> None:
    assert decoder_accepts(envelope)
    assert schema_accepts(envelope)


@pytest.mark.parametrize("envelope", REJECTED.values(), ids=REJECTED.keys())
def test_invalid_envelopes_fail_both(envelope: Any) -> None:
    assert not decoder_accepts(envelope)
    assert not schema_accepts(envelope)


@pytest.mark.parametrize("kind", [[], {}], ids=["a list", "an object"])
def test_an_unhashable_kind_is_refused_not_raised(kind: Any) -> None:
    """It once raised TypeError (`kind not in KINDS`): such a message stopped the worker."""
    assert not schema_accepts(having(kind=kind))
    assert not decoder_accepts(having(kind=kind))


def test_the_known_differences() -> None:
    """JSON Schema cannot tell 1 from 1.0 (the schema's $comment says so); the decoder does,
    and it takes `true` for version 1 (`True == 1` in Python). Neither lets a bad hit through:
    a fractional time is refused by the decoder, and `true` is never written by the encoder."""
    assert schema_accepts(having(received_at_ms=1.0))
    assert not decoder_accepts(having(received_at_ms=1.0))
    assert not schema_accepts(having(v=True))
    assert decoder_accepts(having(v=True))


def b64_decodes(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@given(st.text(alphabet="AQw+/=-_ \n", max_size=10))
def test_the_body_pattern_is_the_decoders_base64(text: str) -> None:
    assert schema_accepts(having(body_b64=text)) is b64_decodes(text)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "v": st.sampled_from([1, 2, 0, "1", None]),
    "hit_id": st.text(max_size=130) | json_values,
    "kind": st.sampled_from([*sorted(rawhit.KINDS), "x", "", None, 1, [], {}]),
    "received_at_ms": st.integers(-5, 2**63) | st.sampled_from(["0", None, 1.5, False]),
    "method": json_values,
    "path": json_values,
    "query": json_values,
    "headers": st.dictionaries(st.text(max_size=5), st.text(max_size=5) | json_values),
    "body_b64": st.sampled_from(["", "AQ==", "AQ", "A", "====", "YWJj"]) | json_values,
    "remote_addr": json_values,
}


DELETE = object()


@st.composite
def near_valid_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope with one to three fields replaced by generated values or removed."""
    envelope = valid_envelope()
    for key in draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=3)):
        value = draw(FIELDS[key] | st.just(DELETE))
        if value is DELETE:
            envelope.pop(key, None)
        else:
            envelope[key] = value
    return envelope


@given(near_valid_envelopes())
def test_schema_and_decoder_agree_on_generated_envelopes(envelope: dict[str, Any]) -> None:
    assert schema_accepts(envelope) is decoder_accepts(envelope), envelope
