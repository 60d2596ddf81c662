"""Octeth identity links without the email in clear.

The parser (`schemas.octeth.events`) keeps the email out of the `Event` and only flags
`email_present`. The validate stage reads the address again from the raw hit and puts only
`email_hmac` = hex HMAC-SHA256(HITS_IDENTITY_SECRET, trimmed lowercased address) in the event's
dimensions; the derive stage turns that into an `identities` row (list, uuid, external id,
email_hmac, first seen). The same secret gives the same HMAC, so links join across events; without
the secret an HMAC cannot be tested against a guessed address. An empty setting uses `DEV_SECRET`
(documented, for development only) and logs a warning.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import replace

from schemas.event import Event
from schemas.octeth import fields
from schemas.octeth.body import fold_keys, load_object
from schemas.octeth.vocabulary import EMAIL_PRESENT
from schemas.rawhit import RawHit

log = logging.getLogger(__name__)

DEV_SECRET = "hitstream-development-identity-secret"  # never in production: set the setting
EMAIL_HMAC = "email_hmac"  # the dimension that carries it
_EMAIL_KEY = frozenset({"email"})


def secret_bytes(configured: str) -> bytes:
    if not configured:
        log.warning(
            "HITS_IDENTITY_SECRET is empty: email HMACs use the development secret; "
            "set it in production"
        )
        return DEV_SECRET.encode()
    return configured.encode()


def email_hmac(email: str, secret: bytes) -> str:
    return hmac.new(secret, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def read_email(body: bytes) -> str | None:
    """The request's valid top-level email, read as the parser reads it (lenient)."""
    obj = load_object(body, lenient=True)
    if obj is None:
        return None
    found, _ = fold_keys(obj, _EMAIL_KEY)
    return fields.email(found.get("email"))[0]


def link(events: tuple[Event, ...], hit: RawHit, secret: bytes) -> tuple[Event, ...]:
    """`events` with `dimensions["email_hmac"]` on those flagged `email_present`."""
    if not any(EMAIL_PRESENT in e.flags for e in events):
        return events
    email = read_email(hit.body)
    if email is None:
        return events
    digest = email_hmac(email, secret)
    return tuple(
        replace(e, dimensions={**e.dimensions, EMAIL_HMAC: digest})
        if EMAIL_PRESENT in e.flags
        else e
        for e in events
    )
