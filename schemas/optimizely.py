"""Parser of the Optimizely classic Event API (`GET /event`, `POST /event` from sendBeacon).

Pure (no I/O) and total: bad input gives `Rejected(reason, detail)`, never an exception. The
spec is the Optimizely section of docs/protocols.md; one hit gives one `Event` (impressions and
conversion rows are derived later from its goals and experiment map). The raw hit is kept
byte-faithful upstream, so whatever is dropped here can be recovered by a replay.

The reason and flag codes are the constants below, each with when it applies.

Decisions where the spec is silent: single-valued parameters take the first non-blank value, the
query string before a POST body; ids are ASCII digits, unnormalised (`007` stays `007`); `u`, `a`,
`d`, `n`, `v` and the time are trimmed; every name starting with `x` is an experiment pair, a name
`s<digits>` a dimension, any other unknown name a property (a list of values when repeated); a
multivariate arm `2222222_3333333` is kept whole, its parts go to `properties["sections"]`
({experiment: [parts]}); the optimizelyBuckets map is read (query parameter first, then cookie)
only when no valid `x` pair is left; numbers are plain decimals (no exponent, no NaN/inf); the
time unit comes from the magnitude (< 1e11 s, < 1e14 ms, < 1e17 us); `page_url` is the Referer
header (the page that fired the beacon) and `referrer` stays "".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

import orjson

from schemas.event import Event, stable_id
from schemas.outcome import Accepted, Outcome, Rejected
from schemas.querystring import cookie_value, decode_component, decode_pairs, to_bytes
from schemas.rawhit import RawHit

SOURCE = "optimizely"
MAX_PARAMS = 1000
MAX_USER_ID = 256
MAX_EVENT_NAME = 2048
MAX_GOALS = 256
MAX_EXPERIMENTS = 256
MAX_VALUE_CENTS = 10**12
FUTURE_TOLERANCE_MS = 23 * 3600 * 1000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MIN_TIME_MS = (dt.datetime(1900, 1, 1, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)
MAX_TIME_MS = (dt.datetime(2300, 1, 1, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)

# Reasons: the hit goes to the dead-letter topic.
WRONG_KIND = "wrong_kind"  # not an `optimizely` hit (routing bug upstream)
UNSUPPORTED_METHOD = "unsupported_method"  # neither GET nor POST
TOO_MANY_PARAMETERS = "too_many_parameters"  # > MAX_PARAMS pairs, query and body together
MISSING_PROJECT_ID = "missing_project_id"  # no `a` and no numeric first label in the Host
BAD_PROJECT_ID = "bad_project_id"  # `a` not 1-20 ASCII digits (no Host fallback)
MISSING_USER_ID = "missing_user_id"  # no non-blank `u`
BAD_USER_ID = "bad_user_id"  # `u` > MAX_USER_ID chars, or a control char/U+FFFD
MISSING_EVENT_NAME = "missing_event_name"  # no `n` and no valid goal id
BAD_EVENT_NAME = "bad_event_name"  # `n` longer than MAX_EVENT_NAME
TOO_MANY_GOALS = "too_many_goals"  # > MAX_GOALS distinct goal ids
TOO_MANY_EXPERIMENTS = "too_many_experiments"  # > MAX_EXPERIMENTS experiments in the map
# Flags: the event is kept, `Event.flags` says what was odd.
PROJECT_HOST_MISMATCH = "project_host_mismatch"  # `a` and the Host label differ: `a` wins
MISSING_ACCOUNT_ID = "missing_account_id"  # no `d`
BAD_ACCOUNT_ID = "bad_account_id"  # `d` not numeric: account_id ""
INVALID_UTF8 = "invalid_utf8"  # some name, value or header read not UTF-8 (kept with U+FFFD)
DUPLICATE_PARAMETER = "duplicate_parameter"  # single-valued param repeated, differing: first wins
BAD_EXPERIMENT_PARAM = "bad_experiment_param"  # `x..` pair with a non-numeric id: skipped
BAD_BUCKETS_COOKIE = "bad_buckets_cookie"  # optimizelyBuckets not a JSON map of numeric ids
X_PARAM_SWAPPED = "x_param_swapped"  # registry proves x{variation}={experiment}: swapped
BAD_GOAL = "bad_goal"  # a non-numeric goal id: dropped
BAD_VALUE = "bad_value"  # `v` not a plain number, or |v| > MAX_VALUE_CENTS
VALUE_ROUNDED = "value_rounded"  # `v` had a fraction: rounded half away from zero
NEGATIVE_VALUE = "negative_value"  # `v` below zero (a refund): kept
BAD_TIME = "bad_time"  # time unreadable or outside 1900..2299: receive time
FUTURE_TIME_CLAMPED = "future_time_clamped"  # time > 23 h after the receive time: receive time
LATE = "late"  # time before received_at_ms - late_horizon_ms

BUCKETS = "optimizelyBuckets"
TIME_PARAMS = ("time", "timestamp", "t")
_SINGLE = frozenset({"a", "u", "d", "n", "v", BUCKETS, *TIME_PARAMS})
_ID = re.compile(r"[0-9]{1,20}")
_VARIATION = re.compile(r"[0-9]{1,20}(?:_[0-9]{1,20}){0,31}")
_DIMENSION = re.compile(r"s([0-9]{1,20})")
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})")
_BAD_USER_CHAR = re.compile(r"[\x00-\x1f\x7f\ufffd]")
_DECIMAL = Context(prec=64, rounding=ROUND_HALF_UP, traps=[])  # independent of the global one
_A_PARAM = re.compile(rb"(?:^|&)a=([^&]*)")
_U_PARAM = re.compile(rb"(?:^|&)u=([^&]*)")


def parse(
    hit: RawHit, *, late_horizon_ms: int, experiments: Mapping[str, frozenset[str]] | None = None
) -> Outcome:
    """Parse one Optimizely hit; `experiments` (id -> variation ids) enables swap repair."""
    if hit.kind != SOURCE:
        return Rejected(WRONG_KIND, f"kind {hit.kind[:20]!r} is not {SOURCE}")
    method = hit.method.upper()
    if method not in ("GET", "POST"):
        return Rejected(UNSUPPORTED_METHOD, f"method {method[:10]!r}")
    data = to_bytes(hit.query.removeprefix("?"))
    if method == "POST" and hit.body:
        data = data + b"&" + hit.body
    decoded = decode_pairs(data, max_params=MAX_PARAMS)
    if decoded is None:
        return Rejected(TOO_MANY_PARAMETERS, f"more than {MAX_PARAMS} parameters")
    flags: set[str] = {INVALID_UTF8} if decoded.lossy else set()
    single: dict[str, str] = {}
    goal_values: list[str] = []
    x_pairs: list[tuple[str, str]] = []
    dimensions: dict[str, str] = {}
    properties: dict[str, Any] = {}
    for name, value in decoded.pairs:
        if name in _SINGLE:
            if value.strip():
                _keep_first(single, name, value.strip(), flags)
        elif name == "g":
            goal_values.append(value)
        elif name.startswith("x"):
            x_pairs.append((name[1:], value.strip()))
        elif match := _DIMENSION.fullmatch(name):
            _keep_first(dimensions, match.group(1), value, flags)
        else:
            _add_property(properties, name, value)

    if hit.not_utf8("host", "cookie", "referer", "user-agent"):
        flags.add(INVALID_UTF8)
    project = _project(single.get("a", ""), hit.text("host"), flags)
    if isinstance(project, Rejected):
        return project
    user = single.get("u", "")
    if not user:
        return Rejected(MISSING_USER_ID, "no u parameter")
    if not _valid_user(user):
        return Rejected(BAD_USER_ID, f"u: {len(user)} chars, at most {MAX_USER_ID} printable")
    goals = _goals(goal_values, flags)
    if len(goals) > MAX_GOALS:
        return Rejected(TOO_MANY_GOALS, f"{len(goals)} goals, at most {MAX_GOALS}")
    name = single.get("n", "")
    if len(name) > MAX_EVENT_NAME:
        return Rejected(BAD_EVENT_NAME, f"n: {len(name)} chars, at most {MAX_EVENT_NAME}")
    if not name and not goals:
        return Rejected(MISSING_EVENT_NAME, "neither n nor a valid g")
    arms = _experiment_map(x_pairs, experiments, BAD_EXPERIMENT_PARAM, flags)
    if not arms:
        buckets = single.get(BUCKETS) or cookie_value(hit.text("cookie"), BUCKETS)
        if buckets is not None:
            arms = _experiment_map(
                _bucket_pairs(buckets, flags), experiments, BAD_BUCKETS_COOKIE, flags
            )
    if len(arms) > MAX_EXPERIMENTS:
        return Rejected(TOO_MANY_EXPERIMENTS, f"{len(arms)} experiments, max {MAX_EXPERIMENTS}")
    sections = {exp: arm.split("_") for exp, arm in arms.items() if "_" in arm}
    if sections:
        if "sections" in properties:
            flags.add(DUPLICATE_PARAMETER)
        properties["sections"] = sections

    account = single.get("d", "")
    if not account:
        flags.add(MISSING_ACCOUNT_ID)
    elif not _ID.fullmatch(account):
        flags.add(BAD_ACCOUNT_ID)
        account = ""
    value_raw = single.get("v", "")
    time_raw = next((single[key] for key in TIME_PARAMS if key in single), "")
    received = hit.received_at_ms
    occurred = _occurred_at(time_raw, received, flags)
    if occurred < received - late_horizon_ms:
        flags.add(LATE)
    fingerprint = hashlib.sha256(
        orjson.dumps(
            [project, user, name, sorted(arms.items()), sorted(goals), value_raw, time_raw],
        )
    ).hexdigest()
    event = Event(
        event_id=stable_id(hit.hit_id, 0),
        hit_id=hit.hit_id,
        source=SOURCE,
        tenant=project,
        visitor_id=user,
        name=name,
        occurred_at_ms=occurred,
        received_at_ms=received,
        account_id=account,
        experiments=arms,
        goals=goals,
        value_cents=_value_cents(value_raw, flags),
        dimensions=dimensions,
        properties=properties,
        page_url=hit.text("referer"),
        user_agent=hit.text("user-agent"),
        flags=tuple(sorted(flags)),
        fingerprint=fingerprint,
    )
    return Accepted((event,))


def partition_key(query: str, host: str, *, body: bytes = b"") -> bytes:
    """`b"<project>:<u>"` for the gateway's Kafka key (equal to `Event.key()`), b"" if unknown.

    Cheap: two regex scans, no full decode. Pass a POST's `body` (as `parse` reads it, after the
    query). The visitor comes only from `u`, as in `parse`.
    """
    data = to_bytes(query.removeprefix("?"))
    if body:
        data = data + b"&" + body
    user = _first_value(_U_PARAM, data)
    project = _first_value(_A_PARAM, data) or _host_project(host)
    if not user or not _valid_user(user) or not _ID.fullmatch(project):
        return b""
    return f"{project}:{user}".encode()


def _first_value(pattern: re.Pattern[bytes], data: bytes) -> str:
    for match in pattern.finditer(data):
        value = decode_component(match.group(1))[0].strip()
        if value:
            return value
    return ""


def _keep_first(target: dict[str, str], key: str, value: str, flags: set[str]) -> None:
    if target.setdefault(key, value) != value:
        flags.add(DUPLICATE_PARAMETER)


def _add_property(properties: dict[str, Any], name: str, value: str) -> None:
    """Unknown parameters are kept: a string, or a list of strings when repeated."""
    if name not in properties:
        properties[name] = value
    elif isinstance(previous := properties[name], list):
        previous.append(value)
    else:
        properties[name] = [previous, value]


def _valid_user(user: str) -> bool:
    return len(user) <= MAX_USER_ID and _BAD_USER_CHAR.search(user) is None


def _host_project(host: str) -> str:
    """The numeric first label of `1234567.log.example.com[:port]`; "" for IP literals."""
    name = host.strip()
    if name.startswith("["):
        return ""
    labels = name.partition(":")[0].split(".")
    if len(labels) < 2 or all(_ID.fullmatch(label) for label in labels):
        return ""
    return labels[0] if _ID.fullmatch(labels[0]) else ""


def _project(a: str, host: str, flags: set[str]) -> str | Rejected:
    from_host = _host_project(host)
    if not a:
        return from_host or Rejected(MISSING_PROJECT_ID, "no a parameter, no numeric Host label")
    if not _ID.fullmatch(a):
        return Rejected(BAD_PROJECT_ID, f"a={a[:40]!r} is not a numeric project id")
    if from_host and from_host != a:
        flags.add(PROJECT_HOST_MISMATCH)
    return a


def _goals(values: Iterable[str], flags: set[str]) -> tuple[str, ...]:
    goals: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            goal = part.strip()
            if not goal:
                continue
            if _ID.fullmatch(goal):
                goals.setdefault(goal, None)
            else:
                flags.add(BAD_GOAL)
    return tuple(goals)


def _bucket_pairs(raw: str, flags: set[str]) -> list[tuple[str, str]]:
    """The `{"exp": "var"}` pairs of an optimizelyBuckets value (percent-encoded or not)."""
    text = raw.strip()
    if not text.startswith("{"):
        text = decode_component(to_bytes(text), plus_is_space=False)[0]
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        flags.add(BAD_BUCKETS_COOKIE)
        return []
    return [
        (key, value if isinstance(value, str) else str(value) if type(value) is int else "")
        for key, value in obj.items()
    ]


def _experiment_map(
    pairs: Iterable[tuple[str, str]],
    registry: Mapping[str, frozenset[str]] | None,
    bad_flag: str,
    flags: set[str],
) -> dict[str, str]:
    arms: dict[str, str] = {}
    for experiment, variation in pairs:
        if not (_ID.fullmatch(experiment) and _VARIATION.fullmatch(variation)):
            flags.add(bad_flag)
            continue
        if (
            registry is not None
            and experiment not in registry
            and variation in registry
            and experiment in registry[variation]
        ):
            experiment, variation = variation, experiment
            flags.add(X_PARAM_SWAPPED)
        _keep_first(arms, experiment, variation, flags)
    return arms


def _number(raw: str) -> Decimal | None:
    return Decimal(raw) if _NUMBER.fullmatch(raw) else None


def _value_cents(raw: str, flags: set[str]) -> int | None:
    if not raw:
        return None
    number = _number(raw)
    if number is None or number.copy_abs() > MAX_VALUE_CENTS:
        flags.add(BAD_VALUE)
        return None
    cents = int(number.to_integral_value(context=_DECIMAL))
    if cents != number:
        flags.add(VALUE_ROUNDED)
    if cents < 0:
        flags.add(NEGATIVE_VALUE)
    return cents


def _epoch_millis(number: Decimal) -> int | None:
    """Seconds, milliseconds or microseconds since the epoch, told apart by magnitude."""
    magnitude = number.copy_abs()
    if magnitude < 10**11:
        scaled = _DECIMAL.multiply(number, 1000)
    elif magnitude < 10**14:
        scaled = number
    elif magnitude < 10**17:
        scaled = _DECIMAL.divide(number, 1000)
    else:
        return None
    return int(scaled.to_integral_value(context=_DECIMAL))


def _occurred_at(raw: str, received: int, flags: set[str]) -> int:
    if not raw:
        return received
    number = _number(raw)
    millis = None if number is None else _epoch_millis(number)
    if millis is None or not MIN_TIME_MS <= millis < MAX_TIME_MS:
        flags.add(BAD_TIME)
        return received
    if millis > received + FUTURE_TOLERANCE_MS:
        flags.add(FUTURE_TIME_CLAMPED)
        return received
    return millis
