"""Readers of single Octeth fields: list id, email, ids, conversion value and its companions.

Each reader takes the JSON value as decoded (any type) and never raises. Flags name what was odd
but kept (see `schemas.octeth.request` for the list).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

MAX_LIST_ID = 2**63 - 1
MAX_VALUE = Decimal(10) ** 10  # currency units; 10**12 cents, as the Optimizely parser
MAX_TEXT = 255  # event names, ID, conversion id and name
MAX_UUID = 128
_DIGITS = re.compile(r"[0-9]{1,19}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CENTS = Context(prec=64, rounding=ROUND_HALF_UP, traps=[])  # half away from zero


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole_number(value: Any, low: int, high: int) -> int | None:
    """A JSON integer or a string of ASCII digits (surrounding blanks ignored) in low..high."""
    if is_int(value):
        number: int = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        return None
    return number if low <= number <= high else None


def list_id(value: Any) -> int | None:
    """A positive integer, or a string of ASCII digits (surrounding blanks ignored); else None."""
    return whole_number(value, 1, MAX_LIST_ID)


def blank(value: Any) -> bool:
    """Absent in the seed's sense: missing, null, or a string of only blanks."""
    return value is None or (isinstance(value, str) and not value.strip())


def is_email(text: str) -> bool:
    """A plain ASCII address (what PHP's FILTER_VALIDATE_EMAIL takes, near enough)."""
    match = _EMAIL.fullmatch(text) if len(text) <= 254 else None
    return match is not None and len(match[1]) <= 64


def email(value: Any) -> tuple[str | None, bool]:
    """(the trimmed address or None, whether it was present but invalid)."""
    if blank(value):
        return None, False
    if isinstance(value, str) and is_email(value.strip()):
        return value.strip(), False
    return None, True


def text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """A trimmed, non-empty string of at most `limit` characters (an integer as its digits)."""
    if is_int(value):
        return str(value)
    if isinstance(value, str) and 0 < len(stripped := value.strip()) <= limit:
        return stripped
    return None


def uuid(value: Any) -> str | None:
    """The visitor id as sent (trimmed): any printable string up to MAX_UUID characters."""
    found = text(value, MAX_UUID) if isinstance(value, str) else None
    return found if found is not None and not _CONTROL.search(found) else None


def decimal_value(value: Any) -> Decimal | None:
    """A JSON number or a plain decimal string, within +-MAX_VALUE; else None."""
    if is_int(value):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the shortest text that reads back as the float
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = Decimal(value.strip())
    else:
        return None
    return number if number.is_finite() and number.copy_abs() <= MAX_VALUE else None


def cents(value: Decimal) -> tuple[int, bool]:
    """(value in cents rounded half away from zero, whether rounding changed it)."""
    scaled = _CENTS.multiply(value, 100)
    rounded = int(scaled.to_integral_value(context=_CENTS))
    return rounded, rounded != scaled


def currency(value: Any) -> str | None:
    """An ISO 4217 shaped code: three uppercase ASCII letters (not checked against the list)."""
    return value if isinstance(value, str) and _CURRENCY.fullmatch(value) else None


def quantity(value: Any) -> int | None:
    """An integer of at least 1 (a JSON integer or a digit string); else None."""
    return whole_number(value, 1, MAX_LIST_ID)


def is_silent(value: Any) -> bool:
    """`true`, `"true"` or `1`, exactly (not `"1"`, `"TRUE"` or `1.0`)."""
    return value is True or value == "true" or (is_int(value) and value == 1)
