"""Validator and parser of the Octeth Event Tracking API (`POST /api/v1/event`, raw JSON body).

Pure (no I/O) and total: a body gives an `OctethRequest` or `OctethErrors` (every violation at
once, sorted by code, the seed's messages verbatim), never an exception. The spec is the Octeth
section of docs/protocols.md; the parsed types live in `schemas.octeth.model`, codes and bodies in
`schemas.octeth.messages`, field readers in `schemas.octeth.fields`, JSON reading (strict, or
lenient with `//` comments) in `schemas.octeth.body`, the shared names in
`schemas.octeth.vocabulary`. The gateway answers from `validate_event`; the pipeline re-reads the
raw hit with `parse`, which gives one `Event`.

Order of checks, as the gateway applies them: 400 (102, the body is not a JSON object), then 401
(100, neither APIKey nor SessionID; 101 is the gateway's registry check, `read_credential` gives
it the credential first), then 422 with every one of codes 4 to 10 that applies.

Decisions where the seed is silent:
- Top-level keys match ASCII-case-insensitively; the first spelling in document order wins and a
  repeat is flagged `duplicate_parameter`. APIKey wins over SessionID; a credential must be a
  non-blank string. Unknown keys are ignored (the raw hit keeps them).
- "Absent" means missing, null or a blank string. ListID: a JSON integer or a digit string,
  1..2**63-1. Event: a non-blank string of at most 255 characters (trimmed), else code 5;
  `page_view`, `pageView`, `pageview` have the event type `page_view`; `identify` and
  `conversion` are matched exactly. Email: trimmed, a plain ASCII address; any other present
  value is code 7.
- ID (external id): a non-blank string (trimmed, <= 255) or an integer; anything else is ignored
  and flagged `bad_id`. UUID: a printable string of at most 128 characters, echoed trimmed;
  anything else is ignored (the gateway mints one) and flagged `bad_uuid`.
- Properties: an object; `[]` (PHP's empty array) and null are `{}`; another type is `{}` and
  flagged `bad_properties`. Property keys are case-sensitive (`isSilent`, `conversion-id`).
- Conversion: id and name are non-blank strings or integers; value a JSON number or a plain
  decimal string within +-1e10 (negative kept, flagged `negative_value`; sub-cent rounded half
  away from zero, flagged `value_rounded`); the value is the conversion's total, not multiplied
  by the quantity. An invalid `conversion-currency` is a flag (`bad_currency`, currency None), not
  an error: the seed has no code for it. An invalid `conversion-quantity` is flagged
  `bad_quantity` and taken as 1.
- Events: see `schemas.octeth.events` (no email in clear). Conversions get a fingerprint over
  their conversion id, so a client retry of the same order inside the retry window is stored once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.event import stable_id
from schemas.octeth import fields
from schemas.octeth import messages as codes
from schemas.octeth.body import fold_keys, load_object
from schemas.octeth.events import to_events
from schemas.octeth.messages import OctethErrors
from schemas.octeth.model import Conversion, Credential, OctethRequest, PropertiesRequest
from schemas.octeth.vocabulary import (
    BAD_CURRENCY,
    BAD_ID,
    BAD_PROPERTIES,
    BAD_QUANTITY,
    BAD_UUID,
    CONVERSION,
    DUPLICATE_PARAMETER,
    IDENTIFY,
    MINTED_UUID_HEADER,
    NEGATIVE_VALUE,
    PAGE_VIEW,
    PAGE_VIEW_NAMES,
    SOURCE,
    VALUE_ROUNDED,
    WRONG_KIND,
)
from schemas.outcome import Accepted, Outcome, Rejected
from schemas.rawhit import RawHit

TOP_LEVEL = frozenset(
    {"apikey", "sessionid", "listid", "event", "id", "email", "uuid", "properties", "issilent"}
)


def partition_key(request: OctethRequest, visitor: str) -> bytes:
    """The Kafka key of an accepted Octeth hit (the gateway's, and a direct producer's).

    `<list>:<uuid>`, except for a conversion: `<list>:conversion:<conversion id>`, so that every
    conversion with one id lands in one partition, where the pipeline's first-conversion table
    (pipeline/octeth.py) sees them all, whichever visitor sent them."""
    if request.conversion is not None:
        return f"{request.list_id}:conversion:{request.conversion.id}".encode()
    return f"{request.list_id}:{visitor}".encode()


def read_credential(body: bytes, *, lenient: bool = False) -> Credential | OctethErrors:
    """The request's credential, or 102 (not a JSON object) / 100 (no credential)."""
    found = _authenticated(body, lenient)
    return found if isinstance(found, OctethErrors) else found[2]


def validate_event(
    body: bytes, *, lenient: bool = False, lists: Callable[[int], bool] | None = None
) -> OctethRequest | OctethErrors:
    """Validate a `POST /api/v1/event` body; `lists(id)` says whether the list is the account's."""
    found = _authenticated(body, lenient)
    if isinstance(found, OctethErrors):
        return found
    top, repeated, credential = found
    errors: list[int] = []
    flags = {DUPLICATE_PARAMETER} if repeated else set()
    list_id = fields.list_id(top.get("listid"))
    if list_id is None or (lists is not None and not lists(list_id)):
        errors.append(codes.INVALID_LIST_ID)
    raw_event = top.get("event")
    event = fields.text(raw_event) if isinstance(raw_event, str) else None
    event_type = PAGE_VIEW if event in PAGE_VIEW_NAMES else event
    if event is None:
        errors.append(codes.MISSING_EVENT)
    email, bad_email = fields.email(top.get("email"))
    if bad_email:
        errors.append(codes.INVALID_EMAIL)
    elif email is None and event_type == IDENTIFY:
        errors.append(codes.MISSING_EMAIL)
    properties = _properties(top.get("properties"), flags)
    conversion = None
    if event_type == CONVERSION:
        conversion = _conversion(properties, errors, flags)
    external_id = _optional(top.get("id"), fields.text, BAD_ID, flags)
    uuid = _optional(top.get("uuid"), fields.uuid, BAD_UUID, flags)
    if errors or list_id is None or event is None or event_type is None:
        return OctethErrors.of(errors)
    return OctethRequest(
        list_id=list_id,
        event=event,
        event_type=event_type,
        credential=credential,
        external_id=external_id,
        uuid=uuid,
        email=email,
        properties=properties,
        is_silent=fields.is_silent(top.get("issilent"))
        or fields.is_silent(properties.get("isSilent")),
        conversion=conversion,
        flags=tuple(sorted(flags)),
    )


def validate_properties_request(
    body: bytes, *, lenient: bool = False, lists: Callable[[int], bool] | None = None
) -> PropertiesRequest | OctethErrors:
    """Validate a `POST /api/v1/website_events.properties` body: codes 1, 2, 3 (and 102, 100)."""
    found = _authenticated(body, lenient)
    if isinstance(found, OctethErrors):
        return found
    top, _, credential = found
    raw = top.get("listid")
    if fields.blank(raw):
        return OctethErrors.of([codes.MISSING_LIST_ID])
    list_id = fields.list_id(raw)
    if list_id is None:
        return OctethErrors.of([codes.INVALID_LIST_ID_PROPERTIES])
    if lists is not None and not lists(list_id):
        return OctethErrors.of([codes.LIST_NOT_FOUND])
    return PropertiesRequest(list_id, credential)


def parse(hit: RawHit, context: object = None, *, lenient: bool = True) -> Outcome:
    """Re-read an Octeth hit in the pipeline: `Accepted` with one event, or `Rejected` with the
    reason `octeth_<lowest code>` and every code and message in the detail.

    `context` (the registry's `ParseContext`) is not needed. Lenient by default: lenient mode
    accepts a superset of strict JSON, so whatever the gateway accepted reads again. Lists are
    not re-checked (the gateway did; a replay must not depend on today's registry). The visitor
    id of a request without a uuid is the one the gateway minted and answered with (header
    `x-hitstream-minted-uuid`), else a uuid5 of the hit id: replays give the same id."""
    if hit.kind != SOURCE:
        return Rejected(WRONG_KIND, f"kind {hit.kind[:20]!r} is not {SOURCE}")
    result = validate_event(hit.body, lenient=lenient)
    if isinstance(result, OctethErrors):
        detail = "; ".join(f"{code} {message}" for code, message in result.errors)
        return Rejected(f"octeth_{result.errors[0][0]}", detail)
    minted = fields.uuid(hit.header(MINTED_UUID_HEADER)) or stable_id(hit.hit_id)
    return Accepted(to_events(result, hit, minted_uuid=minted))


def _authenticated(
    body: bytes, lenient: bool
) -> tuple[dict[str, Any], bool, Credential] | OctethErrors:
    obj = load_object(body, lenient=lenient)
    if obj is None:
        return OctethErrors.of([codes.NOT_A_JSON_OBJECT])
    top, repeated = fold_keys(obj, TOP_LEVEL)
    for key, kind in (("apikey", "api_key"), ("sessionid", "session_id")):
        value = top.get(key)
        if isinstance(value, str) and value.strip():
            return top, repeated, Credential(kind, value)
    return OctethErrors.of([codes.MISSING_CREDENTIAL])


def _optional(
    value: Any, read: Callable[[Any], str | None], bad_flag: str, flags: set[str]
) -> str | None:
    if fields.blank(value):
        return None
    found = read(value)
    if found is None:
        flags.add(bad_flag)
    return found


def _properties(value: Any, flags: set[str]) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value is not None and value != []:
        flags.add(BAD_PROPERTIES)
    return {}


def _conversion(
    properties: dict[str, Any], errors: list[int], flags: set[str]
) -> Conversion | None:
    conversion_id = fields.text(properties.get("conversion-id"))
    name = fields.text(properties.get("conversion-name"))
    value = fields.decimal_value(properties.get("conversion-value"))
    errors.extend(
        code
        for code, found in (
            (codes.MISSING_CONVERSION_ID, conversion_id),
            (codes.MISSING_CONVERSION_NAME, name),
            (codes.MISSING_CONVERSION_VALUE, value),
        )
        if found is None
    )
    if conversion_id is None or name is None or value is None:
        return None
    value_cents, rounded = fields.cents(value)
    if rounded:
        flags.add(VALUE_ROUNDED)
    if value < 0:
        flags.add(NEGATIVE_VALUE)
    raw_currency = properties.get("conversion-currency")
    currency = None if fields.blank(raw_currency) else fields.currency(raw_currency)
    if currency is None and not fields.blank(raw_currency):
        flags.add(BAD_CURRENCY)
    raw_quantity = properties.get("conversion-quantity")
    quantity = 1 if fields.blank(raw_quantity) else fields.quantity(raw_quantity)
    if quantity is None:
        flags.add(BAD_QUANTITY)
    return Conversion(
        id=conversion_id,
        name=name,
        value=value,
        value_cents=value_cents,
        currency=currency,
        quantity=quantity or 1,
    )
