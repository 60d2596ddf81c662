"""An accepted Octeth request as one canonical `Event` (see `schemas.octeth.request` for the
decisions).

No email in clear: a valid top-level email only sets the flag `email_present` (the pipeline HMACs
it from the raw hit); string property values that are email addresses become "[email]", as do
email-shaped dimensions (ID, conversion id or name), flagged `email_redacted`. `dimensions` holds
the request's parsed attributes: `event_type` (canonical), `external_id` (the ID), and for a
conversion `conversion_id`, `conversion_name`, `quantity` and `currency` (when valid).
"""

from __future__ import annotations

import hashlib
from typing import Any

from schemas.event import Event, stable_id
from schemas.octeth import fields
from schemas.octeth.model import OctethRequest
from schemas.octeth.vocabulary import (
    CONVERSION,
    EMAIL_PRESENT,
    EMAIL_REDACTED,
    IDENTIFY,
    IDENTIFY_FLAG,
    INVALID_UTF8,
    REDACTED,
    SILENT,
    SOURCE,
    UUID_MINTED,
)
from schemas.rawhit import RawHit


def to_events(request: OctethRequest, hit: RawHit, *, minted_uuid: str) -> tuple[Event, ...]:
    """The request as one canonical `Event` (emails kept out, see the module's decisions)."""
    flags = set(request.flags)
    flags.update(
        flag
        for flag, on in (
            (UUID_MINTED, request.uuid is None),
            (SILENT, request.is_silent),
            (IDENTIFY_FLAG, request.event_type == IDENTIFY),
            (EMAIL_PRESENT, request.email is not None),
            (INVALID_UTF8, hit.not_utf8("user-agent")),
        )
        if on
    )
    properties, redacted = _redact(request.properties)
    dimensions = {"event_type": request.event_type}
    if request.external_id is not None:
        dimensions["external_id"] = request.external_id
    fingerprint = ""
    conversion = request.conversion
    if conversion is not None:
        dimensions["conversion_id"] = conversion.id
        dimensions["conversion_name"] = conversion.name
        dimensions["quantity"] = str(conversion.quantity)
        if conversion.currency is not None:
            dimensions["currency"] = conversion.currency
        fingerprint = hashlib.sha256(f"{CONVERSION}\x1f{conversion.id}".encode()).hexdigest()
    for key, text in dimensions.items():
        if fields.is_email(text):
            dimensions[key] = REDACTED
            redacted = True
    if redacted:
        flags.add(EMAIL_REDACTED)
    event = Event(
        event_id=stable_id(hit.hit_id, 0),
        hit_id=hit.hit_id,
        source=SOURCE,
        tenant=str(request.list_id),
        visitor_id=request.uuid or minted_uuid,
        name=request.event,
        occurred_at_ms=hit.received_at_ms,
        received_at_ms=hit.received_at_ms,
        value_cents=None if conversion is None else conversion.value_cents,
        dimensions=dimensions,
        properties=properties,
        page_url=_string(properties.get("$current_url")),
        referrer=_string(properties.get("$referrer")),
        user_agent=hit.text("user-agent"),
        device_type=_string(properties.get("$device_type")),
        flags=tuple(sorted(flags)),
        fingerprint=fingerprint,
    )
    return (event,)


def _redact(value: Any) -> tuple[Any, bool]:
    """`value` with every string that is an email address replaced by REDACTED (depth is bounded
    by the body reader)."""
    if isinstance(value, str):
        return (REDACTED, True) if fields.is_email(value.strip()) else (value, False)
    if isinstance(value, dict):
        pairs = [(key, _redact(item)) for key, item in value.items()]
        return {key: item for key, (item, _) in pairs}, any(hit for _, (_, hit) in pairs)
    if isinstance(value, list):
        items = [_redact(item) for item in value]
        return [item for item, _ in items], any(hit for _, hit in items)
    return value, False


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""
