"""What the Octeth endpoints answer: error codes with the seed's messages, and the 200 bodies.

Codes 1 to 10 and their messages are the seed's, verbatim (1 to 3 on the properties endpoint, 4
to 10 on the event endpoint). Codes 100 and up are hitstream's documented extensions; their
messages are ours. Bodies are compact JSON, keys in the seed's order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

MISSING_LIST_ID = 1
INVALID_LIST_ID_PROPERTIES = 2
LIST_NOT_FOUND = 3
INVALID_LIST_ID = 4
MISSING_EVENT = 5
MISSING_EMAIL = 6
INVALID_EMAIL = 7
MISSING_CONVERSION_ID = 8
MISSING_CONVERSION_NAME = 9
MISSING_CONVERSION_VALUE = 10
# Extensions (docs/protocols.md, Octeth section).
MISSING_CREDENTIAL = 100
UNKNOWN_CREDENTIAL = 101
NOT_A_JSON_OBJECT = 102
RATE_LIMITED = 103
CANNOT_STORE = 104
BODY_TOO_LARGE = 105

MESSAGES: Mapping[int, str] = {
    MISSING_LIST_ID: "Missing ListID parameter",
    INVALID_LIST_ID_PROPERTIES: "Invalid ListID parameter",
    LIST_NOT_FOUND: "List not found",
    INVALID_LIST_ID: "Invalid ListID parameter",
    MISSING_EVENT: "Missing event parameter.",
    MISSING_EMAIL: "Missing email parameter.",
    INVALID_EMAIL: "Invalid email parameter.",
    MISSING_CONVERSION_ID: "Missing conversion-id event property.",
    MISSING_CONVERSION_NAME: "Missing conversion-name event property.",
    MISSING_CONVERSION_VALUE: "Missing conversion-value event property.",
    MISSING_CREDENTIAL: "Missing APIKey or SessionID parameter.",
    UNKNOWN_CREDENTIAL: "Invalid APIKey or SessionID parameter.",
    NOT_A_JSON_OBJECT: "Request body is not a JSON object.",
    RATE_LIMITED: "Too many requests.",
    CANNOT_STORE: "Service temporarily unavailable.",
    BODY_TOO_LARGE: "Request body is too large.",
}
_STATUS: Mapping[int, int] = {
    MISSING_CREDENTIAL: 401,
    UNKNOWN_CREDENTIAL: 401,
    NOT_A_JSON_OBJECT: 400,
    RATE_LIMITED: 429,
    CANNOT_STORE: 503,
    BODY_TOO_LARGE: 413,
}


def status_of(code: int) -> int:
    """The HTTP status that answers `code`: 422 for the seed's codes, the extensions' own."""
    return _STATUS.get(code, 422)


@dataclass(frozen=True, slots=True)
class OctethErrors:
    """A refused request: the HTTP status and every (code, message), sorted by code."""

    status: int
    errors: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, codes: Iterable[int]) -> OctethErrors:
        """Errors for `codes` (deduplicated, sorted); the status is the lowest code's."""
        unique = sorted(set(codes))
        if not unique:
            raise ValueError("OctethErrors needs at least one code")
        return cls(status_of(unique[0]), tuple((code, MESSAGES[code]) for code in unique))

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(code for code, _ in self.errors)

    def body(self) -> bytes:
        """`{"Errors":[{"Code":N,"Message":"..."}]}`, compact."""
        return orjson.dumps(
            {"Errors": [{"Code": code, "Message": message} for code, message in self.errors]}
        )


def success_body(uuid: str, external_id: str | None, identify_event_sent: bool) -> bytes:
    """The 200 answer of `POST /api/v1/event`, keys in the seed's order."""
    return orjson.dumps(
        {
            "status": "success",
            "uuid": uuid,
            "external_id": external_id,
            "identify_event_sent": identify_event_sent,
        }
    )


def properties_body(list_id: int, properties: Mapping[str, Iterable[str]]) -> bytes:
    """The 200 answer of `POST /api/v1/website_events.properties`: ListID as a string, event
    names and each event's property keys sorted (by code point, as the seed's example), keys
    deduplicated."""
    return orjson.dumps(
        {
            "ListID": str(list_id),
            "Properties": {event: sorted(set(properties[event])) for event in sorted(properties)},
        }
    )
