"""Parser of the beacons of hitstream's Monetate tag (`gateway/static/monetate-tag.js`).

Pure (no I/O) and total: bad input gives `Rejected(reason, detail)`, never an exception. The spec
is the Monetate section of docs/protocols.md. The tag sends `POST` with a `text/plain` body (what
`navigator.sendBeacon` sends without a CORS preflight); `application/json` is accepted too.

Wire format, version 1 (one JSON object; unknown fields are ignored here, kept in the raw hit):

    {"v": 1, "site": "shop-eu", "visitor": "<hs_vid>", "session": "<hs_sid id>",
     "session_start": 1700000000000, "sent_at": 1700000000123,
     "page": {"url": "https://...", "referrer": "https://...", "device": "desktop|mobile|tablet",
              "view": "<random id of the page load>"},
     "experiments": {"<experiment>": "<variation>", ...},
     "events": [{"key": "reached_platinum", "at": 1700000000120, "seq": 0,
                 "props": {"<name>": "string|number|bool"}}, ...]}

Times are epoch milliseconds of the client clock. `props` is optional (the tag's extension
`["trackEvent", keys, {props}]`). One beacon gives one `Event` per entry of `events` (at most
MAX_EVENTS), index i, `event_id = stable_id(hit_id, i)`: tenant = site, visitor_id = visitor,
session_id = session, name = key, occurred_at from `at`, page context and experiments from the
beacon, user agent from the headers, `page_url` falling back to the Referer header.

Bad event keys: an entry whose key breaks the rule (ASCII letters, digits, spaces, underscores,
hyphens; 1..255 chars; not only spaces) never rejects the beacon. It still becomes an `Event` at
its own index, flagged `bad_event_key` with `properties["key_error"]` saying why, and the
pipeline sends each such event to the dead-letter topic on its own (`split_bad_keys`; the dead
letter's lineage index is the event's index, so its `dlq_id` is stable under replay). Good keys
of the same beacon keep their ids; nothing is lost and there is one dead letter per bad key.
Keys are taken verbatim: case and spaces matter ("Event Key" is not "event key").

Time: no `at` means the receive time; a non-number, or outside 1900..2299 (ClickHouse
DateTime64), means the receive time and `bad_time`; more than 23 h in the future, the receive time
and `future_time_clamped`; older than the late horizon, kept and flagged `late`.
`fingerprint` (exact retries, see pipeline/seen.py) is set when the entry has an integer `seq`
and the page a `view` id: (site, visitor, view, seq, key) identifies one push on one page load.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

import orjson

from schemas.event import Event, stable_id
from schemas.optimizely import FUTURE_TOLERANCE_MS, MAX_TIME_MS, MIN_TIME_MS
from schemas.outcome import Accepted, Outcome, Rejected
from schemas.rawhit import RawHit

SOURCE = "monetate"
VERSION = 1
MAX_EVENTS = 200
MAX_KEY = 255
MAX_ID = 256  # visitor and session ids
MAX_TEXT = 8192  # page url and referrer, longer ones truncated
MAX_EXPERIMENTS = 256
MAX_ARM = 255  # experiment and variation ids
MAX_PROPERTIES = 64
DEVICES = frozenset({"desktop", "mobile", "tablet"})
CONTENT_TYPES = frozenset({"", "text/plain", "application/json"})

# Reasons: the whole beacon goes to the dead-letter topic.
WRONG_KIND = "wrong_kind"  # not a `monetate` hit (routing bug upstream)
UNSUPPORTED_METHOD = "unsupported_method"  # not POST
EMPTY_BODY = "empty_body"  # no body (or only whitespace)
BODY_NOT_JSON = "body_not_json"  # not UTF-8 JSON
BODY_NOT_OBJECT = "body_not_object"  # JSON, but not an object
UNSUPPORTED_VERSION = "unsupported_version"  # `v` missing or not 1
MISSING_SITE = "missing_site"  # no `site`, or blank
BAD_SITE = "bad_site"  # not [A-Za-z0-9][A-Za-z0-9._-]{0,127} (a string, or an integer)
MISSING_VISITOR = "missing_visitor"  # no `visitor`, or blank
BAD_VISITOR = "bad_visitor"  # not a string of 1..MAX_ID printable chars
NO_EVENTS = "no_events"  # `events` missing, not a list, or empty
TOO_MANY_EVENTS = "too_many_events"  # more than MAX_EVENTS entries
TOO_MANY_EXPERIMENTS = "too_many_experiments"  # more than MAX_EXPERIMENTS experiments
# Flags: the event is kept, `Event.flags` says what was odd.
BAD_EVENT_KEY = "bad_event_key"  # key breaks the rule: the pipeline dead-letters this event
MISSING_SESSION = "missing_session"  # no `session`: session_id ""
BAD_SESSION = "bad_session"  # `session` not a valid id: session_id ""
BAD_PAGE = "bad_page"  # `page` not an object, or url/referrer/device not strings
BAD_DEVICE_TYPE = "bad_device_type"  # device not desktop|mobile|tablet: device_type ""
TRUNCATED = "truncated"  # url or referrer longer than MAX_TEXT: cut
BAD_EXPERIMENT = "bad_experiment"  # experiments not a map, or a pair not two short ids: skipped
BAD_PROPERTIES = "bad_properties"  # `props` not a map of scalars, or too many: bad ones dropped
UNEXPECTED_CONTENT_TYPE = "unexpected_content_type"  # neither text/plain nor application/json
BAD_TIME = "bad_time"
INVALID_UTF8 = "invalid_utf8"  # a header read (content-type, referer, user-agent) not UTF-8: U+FFFD
FUTURE_TIME_CLAMPED = "future_time_clamped"
LATE = "late"

KEY_ERROR = "key_error"  # property: why the key is bad (reserved: dropped from client props)
_KEY = re.compile(r"[A-Za-z0-9 _-]{1,255}")
SITE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_BAD_ID_CHAR = re.compile(r"[\x00-\x1f\x7f\ufffd]")


class Context(Protocol):
    """What the parser needs from `schemas.formats.ParseContext`."""

    @property
    def late_horizon_ms(self) -> int: ...


def parse(hit: RawHit, context: Context) -> Outcome:
    """Parse one beacon of the Monetate tag into one event per entry of `events`."""
    if hit.kind != SOURCE:
        return Rejected(WRONG_KIND, f"kind {hit.kind[:20]!r} is not {SOURCE}")
    if hit.method.upper() != "POST":
        return Rejected(UNSUPPORTED_METHOD, f"method {hit.method[:10]!r}, only POST")
    obj = _load(hit.body)
    if isinstance(obj, Rejected):
        return obj
    if obj.get("v") != VERSION or type(obj.get("v")) is not int:
        return Rejected(UNSUPPORTED_VERSION, f"v={str(obj.get('v'))[:20]!r}, expected {VERSION}")
    identity = _identity(obj)
    if isinstance(identity, Rejected):
        return identity
    site, visitor = identity
    entries = obj.get("events")
    if not isinstance(entries, list) or not entries:
        return Rejected(NO_EVENTS, "events must be a non-empty list")
    if len(entries) > MAX_EVENTS:
        return Rejected(TOO_MANY_EVENTS, f"{len(entries)} events, at most {MAX_EVENTS}")
    flags: set[str] = set()
    if hit.not_utf8("content-type", "referer", "user-agent"):
        flags.add(INVALID_UTF8)
    content_type = hit.text("content-type").partition(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        flags.add(UNEXPECTED_CONTENT_TYPE)
    experiments = _experiments(obj.get("experiments"), flags)
    if len(experiments) > MAX_EXPERIMENTS:
        return Rejected(TOO_MANY_EXPERIMENTS, f"{len(experiments)}, at most {MAX_EXPERIMENTS}")
    session = _session(obj.get("session"), flags)
    page = obj.get("page", {})
    if not isinstance(page, dict):
        flags.add(BAD_PAGE)
        page = {}
    page_url = _text(page.get("url"), flags) or hit.text("referer")[:MAX_TEXT]
    referrer = _text(page.get("referrer"), flags)
    device = _text(page.get("device"), flags)
    if device and device not in DEVICES:
        flags.add(BAD_DEVICE_TYPE)
        device = ""
    view = page.get("view") if isinstance(page.get("view"), str) else None
    beacon = Event(
        event_id="",
        hit_id=hit.hit_id,
        source=SOURCE,
        tenant=site,
        visitor_id=visitor,
        name="",
        occurred_at_ms=hit.received_at_ms,
        received_at_ms=hit.received_at_ms,
        session_id=session,
        experiments=experiments,
        page_url=page_url,
        referrer=referrer,
        user_agent=hit.text("user-agent"),
        device_type=device,
    )
    return Accepted(
        tuple(
            _event(beacon, i, entry, flags, view, context.late_horizon_ms)
            for i, entry in enumerate(entries)
        )
    )


def direct_hit(body: bytes, *, hit_id: str, received_at_ms: int) -> tuple[bytes, RawHit]:
    """(Kafka key, raw hit) of a beacon body as a backend producer writes it to `hits.raw`: the
    envelope the gateway's collector gives it (POST /monetate/collect, text/plain)."""
    hit = RawHit(
        hit_id=hit_id,
        kind=SOURCE,
        received_at_ms=received_at_ms,
        method="POST",
        path="/monetate/collect",
        headers={"content-type": "text/plain"},
        body=body,
    )
    return partition_key(body), hit


def partition_key(body: bytes) -> bytes:
    """`b"<site>:<visitor>"` for the gateway's Kafka key (equal to `Event.key()`), b"" if unknown.

    One orjson parse of the body (bounded by the gateway's body limit) and the same identity
    rules as `parse`; no event is looked at.
    """
    obj = _load(body)
    identity = obj if isinstance(obj, Rejected) else _identity(obj)
    if isinstance(identity, Rejected):
        return b""
    return f"{identity[0]}:{identity[1]}".encode()


def split_bad_keys(
    events: Iterable[Event],
) -> tuple[tuple[Event, ...], tuple[tuple[Event, Rejected], ...]]:
    """Events to publish, and each event with a bad key with the reason to dead-letter it.

    Call it once validate has set the lineage: a dead letter's lineage is its event's (the index
    is the entry's index in the beacon), which makes one stable `dlq_id` per bad key.
    """
    good: list[Event] = []
    bad: list[tuple[Event, Rejected]] = []
    for event in events:
        if BAD_EVENT_KEY in event.flags:
            detail = f"{event.properties.get(KEY_ERROR, '')}: {event.name[:80]!r}"
            bad.append((event, Rejected(BAD_EVENT_KEY, detail)))
        else:
            good.append(event)
    return tuple(good), tuple(bad)


def key_problem(key: object) -> str:
    """Why `key` is not a valid event key ("" when it is one)."""
    if not isinstance(key, str):
        return f"key is not a string ({type(key).__name__})"
    if not 1 <= len(key) <= MAX_KEY:
        return f"key has {len(key)} chars, 1 to {MAX_KEY} allowed"
    if not _KEY.fullmatch(key):
        return "key holds a char other than ASCII letters, digits, space, _ and -"
    if not key.strip(" "):
        return "key is only spaces"
    return ""


def _load(body: bytes) -> dict[str, Any] | Rejected:
    data = body.strip().removeprefix(b"\xef\xbb\xbf")
    if not data:
        return Rejected(EMPTY_BODY, "no body")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Rejected(BODY_NOT_JSON, str(exc)[:200])
    if not isinstance(obj, dict):
        return Rejected(BODY_NOT_OBJECT, f"body is a JSON {type(obj).__name__}")
    return obj


def _identity(obj: dict[str, Any]) -> tuple[str, str] | Rejected:
    site = obj.get("site")
    if type(site) is int and site >= 0:
        site = str(site)
    if site is None or (isinstance(site, str) and not site.strip()):
        return Rejected(MISSING_SITE, "no site")
    if not isinstance(site, str) or not SITE_ID.fullmatch(site):
        return Rejected(BAD_SITE, f"site {str(site)[:40]!r}")
    visitor = obj.get("visitor")
    if visitor is None or (isinstance(visitor, str) and not visitor.strip()):
        return Rejected(MISSING_VISITOR, "no visitor")
    if not _valid_id(visitor):
        return Rejected(BAD_VISITOR, f"visitor must be 1..{MAX_ID} printable chars")
    return site, str(visitor)


def _valid_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID
        and bool(value.strip())
        and _BAD_ID_CHAR.search(value) is None
    )


def _session(value: object, flags: set[str]) -> str:
    if value is None or value == "":
        flags.add(MISSING_SESSION)
        return ""
    if not _valid_id(value):
        flags.add(BAD_SESSION)
        return ""
    return str(value)


def _text(value: object, flags: set[str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        flags.add(BAD_PAGE)
        return ""
    if len(value) > MAX_TEXT:
        flags.add(TRUNCATED)
        return value[:MAX_TEXT]
    return value


def _arm(value: object) -> str | None:
    text = str(value) if type(value) is int else value
    if isinstance(text, str) and 0 < len(text) <= MAX_ARM and not _BAD_ID_CHAR.search(text):
        return text
    return None


def _experiments(value: object, flags: set[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        flags.add(BAD_EXPERIMENT)
        return {}
    arms: dict[str, str] = {}
    for experiment, variation in value.items():
        exp, var = _arm(experiment), _arm(variation)
        if exp is None or var is None:
            flags.add(BAD_EXPERIMENT)
        else:
            arms[exp] = var
    return arms


def _properties(value: object, flags: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        flags.add(BAD_PROPERTIES)
        return {}
    props: dict[str, Any] = {}
    for name, item in value.items():
        scalar = isinstance(item, str | int | float)
        if len(props) >= MAX_PROPERTIES or not (0 < len(name) <= MAX_ARM and scalar):
            flags.add(BAD_PROPERTIES)
        elif name != KEY_ERROR:
            props[name] = item
    return props


def _occurred_at(value: object, received: int, late_horizon_ms: int, flags: set[str]) -> int:
    if value is None:
        return received
    if isinstance(value, bool) or not isinstance(value, int | float):
        flags.add(BAD_TIME)
        return received
    if not MIN_TIME_MS <= value < MAX_TIME_MS:
        flags.add(BAD_TIME)
        return received
    millis = round(value)
    if millis > received + FUTURE_TOLERANCE_MS:
        flags.add(FUTURE_TIME_CLAMPED)
        return received
    if millis < received - late_horizon_ms:
        flags.add(LATE)
    return millis


def _event(
    beacon: Event, index: int, entry: object, flags: set[str], view: str | None, horizon: int
) -> Event:
    """The event of `events[index]`: the beacon's fields, then the entry's own."""
    own = set(flags)
    fields: dict[str, Any] = entry if isinstance(entry, dict) else {}
    key = fields.get("key")
    problem = key_problem(key) if isinstance(entry, dict) else "entry is not an object"
    properties = _properties(fields.get("props"), own)
    if problem:
        own.add(BAD_EVENT_KEY)
        properties[KEY_ERROR] = problem
    name = key[:1024] if isinstance(key, str) else ""
    seq = fields.get("seq")
    fingerprint = ""
    if view is not None and type(seq) is int and not problem:
        identity = [beacon.tenant, beacon.visitor_id, view, seq, name]
        fingerprint = hashlib.sha256(orjson.dumps(identity)).hexdigest()
    received = beacon.received_at_ms
    return replace(
        beacon,
        event_id=stable_id(beacon.hit_id, index),
        name=name,
        occurred_at_ms=_occurred_at(fields.get("at"), received, horizon, own),
        experiments=dict(beacon.experiments),
        properties=properties,
        flags=tuple(sorted(own)),
        fingerprint=fingerprint,
    )
