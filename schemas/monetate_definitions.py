"""Monetate API event definitions, the pure part: the record, its validation, JSON, matching.

A definition is made once per site and key (docs/protocols.md): a unique event key (the parser's
rule), a title, a description and optional conditions, all of which must hold for an event to
count. A condition is `{"field": ..., "op": ..., "value": ...}`:

- field: `page_url`, `referrer`, `device_type` or `property:<name>` (an event property; a
  missing or non-scalar property never matches; numbers and booleans compare as their JSON text,
  `true`, `42`, `1.5`);
- op: `equals`, `contains`, `starts_with`, `regex` (Python `re.search`), all case-sensitive (a
  regex may say `(?i)`), or `in` (equals one of a list);
- value: a string, a list of strings for `in`; only `equals` and `in` accept "" (an empty
  referrer: direct traffic); `device_type` values are desktop, mobile or tablet.

Python's `re` backtracks and cannot be interrupted, so a regex reads at most MAX_REGEX_SUBJECT
(n) chars and is checked when the definition is made (`unsafe_regex` otherwise): at most
MAX_REGEX chars, it compiles, no backreference, no repeated group (`(...)*`, `+`, `{m,n}`)
holding a variable repeat or an alternation (`(a+)+`, `(a|a)*`, `(a?){30}`: exponential), and a
bounded product of choices: each `*`, `+`, `{m,}` counts n, `{m,n}` n-m+1, `?` and each `|` 2, an
unanchored pattern (no leading `^`) n since `re.search` tries every start; the product must stay
under 2^MAX_BACKTRACK_BITS (about two unbounded repeats: `^.*a.*b` and `/p/[0-9]+` pass, `a*a*b`
does not). The other ops read MAX_SUBJECT chars. Nothing here raises on bad input: `validate`
and `decode` return `Problem`s with stable codes.

JSON, version 1: `{"v": 1, "site": ..., "key": ..., "title": ..., "description": ...,
"conditions": [{"field": ..., "op": ..., "value": ...}]}`.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.event import Event
from schemas.monetate import DEVICES, SITE_ID, key_problem

VERSION = 1
FIELDS = frozenset({"page_url", "referrer", "device_type"})
PROPERTY = "property:"
OPS = frozenset({"equals", "contains", "starts_with", "regex", "in"})
MAX_TITLE = 200
MAX_DESCRIPTION = 2000
MAX_CONDITIONS = 20
MAX_VALUE = 2048
MAX_IN_VALUES = 100
MAX_REGEX = 256
MAX_SUBJECT = 8192
MAX_REGEX_SUBJECT = 2048
MAX_BACKTRACK_BITS = 24
_UNBOUNDED_BITS = math.log2(MAX_REGEX_SUBJECT)
_KEYS = frozenset({"v", "site", "key", "title", "description", "conditions"})
_REPEAT = re.compile(r"[*+?]|\{(\d*)(,?)(\d*)\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    field: str
    op: str
    value: str | tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDefinition:
    site: str
    key: str
    title: str
    description: str = ""
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # stable, e.g. bad_regex
    where: str  # the field, e.g. conditions[1].value
    message: str


@dataclass(frozen=True, slots=True)
class Invalid:
    problems: tuple[Problem, ...]


def validate(definition: EventDefinition) -> tuple[Problem, ...]:
    """Every problem of `definition` (empty when it is valid)."""
    found: list[Problem] = []
    if not SITE_ID.fullmatch(definition.site):
        found.append(Problem("bad_site", "site", "1-128 of A-Z a-z 0-9 . _ -, not first . _ -"))
    if problem := key_problem(definition.key):
        found.append(Problem("bad_key", "key", problem))
    if not definition.title.strip():
        found.append(Problem("missing_title", "title", "a title is required"))
    elif len(definition.title) > MAX_TITLE:
        found.append(Problem("title_too_long", "title", f"at most {MAX_TITLE} chars"))
    if len(definition.description) > MAX_DESCRIPTION:
        found.append(Problem("description_too_long", "description", f"max {MAX_DESCRIPTION}"))
    if len(definition.conditions) > MAX_CONDITIONS:
        found.append(Problem("too_many_conditions", "conditions", f"max {MAX_CONDITIONS}"))
    for i, condition in enumerate(definition.conditions):
        found.extend(_condition_problems(condition, f"conditions[{i}]"))
    return tuple(found)


def _condition_problems(condition: Condition, where: str) -> list[Problem]:
    found: list[Problem] = []
    name = condition.field.removeprefix(PROPERTY)
    if condition.field not in FIELDS and not (condition.field.startswith(PROPERTY) and name):
        found.append(Problem("bad_field", f"{where}.field", f"unknown field {condition.field!r}"))
    if condition.op not in OPS:
        found.append(Problem("bad_op", f"{where}.op", f"unknown op {condition.op!r}"))
        return found
    values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    if (condition.op == "in") != isinstance(condition.value, tuple):
        kind = "a list of strings" if condition.op == "in" else "a string"
        return [*found, Problem("bad_value", f"{where}.value", f"{condition.op} takes {kind}")]
    if not 0 < len(values) <= MAX_IN_VALUES:
        found.append(Problem("bad_value", f"{where}.value", f"1 to {MAX_IN_VALUES} values"))
    for value in values:
        if len(value) > MAX_VALUE:
            found.append(Problem("value_too_long", f"{where}.value", f"max {MAX_VALUE} chars"))
        elif not value and condition.op not in ("equals", "in"):
            found.append(Problem("bad_value", f"{where}.value", f"{condition.op} of ''"))
        elif condition.field == "device_type" and condition.op != "regex" and value not in DEVICES:
            found.append(Problem("bad_value", f"{where}.value", f"device {value!r}"))
    regex = condition.value if condition.op == "regex" else None
    if isinstance(regex, str) and (problem := _regex_problem(regex)):
        found.append(Problem(problem[0], f"{where}.value", problem[1]))
    return found


def _regex_problem(pattern: str) -> tuple[str, str] | None:
    if len(pattern) > MAX_REGEX:
        return "regex_too_long", f"at most {MAX_REGEX} chars"
    risk = _backtracking_risk(pattern)
    if risk:
        return "unsafe_regex", risk
    if _compile(pattern) is None:
        return "bad_regex", "does not compile"
    return None


def _repeat(pattern: str, at: int) -> tuple[int, bool, float]:
    """The quantifier at `at`: (its length, repeats more than once, log2 of its choices)."""
    match = _REPEAT.match(pattern, at)
    if match is None or match.group() in ("{}", "{,}"):
        return 0, False, 0.0
    if match.group() == "?":
        return 1, False, 1.0
    low, comma, high = match.groups()
    if match.group() in ("*", "+") or (comma and not high):
        return len(match.group()), True, _UNBOUNDED_BITS
    top = int(high) if comma else int(low)
    choices = top - int(low or 0) + 1
    return len(match.group()), top > 1, math.log2(choices) if choices > 1 else 0.0


def _backtracking_risk(pattern: str) -> str:
    """Why `pattern` may backtrack badly ("" when its shape is safe; see the module docstring)."""
    holds = [False]  # per open group: it holds a variable repeat or an alternation
    bits = 0.0 if pattern.startswith(("^", "\\A")) else _UNBOUNDED_BITS
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if pattern[i + 1 : i + 2] in tuple("123456789"):
                return "a backreference"
            i += 2
        elif char == "[":  # a class: one atom, skipped ([]...] and [^]...] hold a "]")
            i += 2 if pattern.startswith("[^", i) else 1
            i += 1 if pattern[i : i + 1] == "]" else 0
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
        elif char == "(":
            if pattern.startswith("(?P=", i):
                return "a backreference"
            holds.append(False)
            i += 2 if pattern.startswith("(?", i) else 1
        elif char == ")" and len(holds) > 1:
            inner = holds.pop()
            if inner and _repeat(pattern, i + 1)[1]:
                return "a repeated group holds a variable repeat or an alternation"
            holds[-1] = holds[-1] or inner
            i += 1
        else:
            length, _, choice_bits = _repeat(pattern, i)
            holds[-1] = holds[-1] or choice_bits > 0 or char == "|"
            bits += choice_bits + (char == "|")
            i += max(length, 1)
            i += 1 if length and pattern[i : i + 1] in ("?", "+") else 0  # lazy, possessive
    if bits > MAX_BACKTRACK_BITS:
        return f"too many variable repeats or alternatives (2^{bits:.0f} > 2^{MAX_BACKTRACK_BITS})"
    return ""


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None


def to_dict(definition: EventDefinition) -> dict[str, Any]:
    return {
        "v": VERSION,
        "site": definition.site,
        "key": definition.key,
        "title": definition.title,
        "description": definition.description,
        "conditions": [
            {"field": c.field, "op": c.op, "value": list(c.value) if c.op == "in" else c.value}
            for c in definition.conditions
        ],
    }


def encode(definition: EventDefinition) -> bytes:
    return orjson.dumps(to_dict(definition))


def decode(data: bytes) -> EventDefinition | Invalid:
    """A definition from JSON (an admin request or the store), validated; never raises."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Invalid((Problem("bad_json", "", str(exc)[:200]),))
    return from_dict(obj)


def from_dict(obj: object) -> EventDefinition | Invalid:
    """A definition from decoded JSON: shape first, then `validate`."""
    if not isinstance(obj, dict):
        return Invalid((Problem("bad_shape", "", "a definition is a JSON object"),))
    if obj.get("v") != VERSION or type(obj.get("v")) is not int:
        return Invalid((Problem("bad_version", "v", f"version {VERSION} expected"),))
    found = [Problem("unknown_field", str(k), "not a definition field") for k in obj.keys() - _KEYS]
    texts = {name: obj.get(name, "") for name in ("site", "key", "title", "description")}
    found += [
        Problem("bad_shape", k, "must be a string") for k, v in texts.items() if type(v) is not str
    ]
    conditions = obj.get("conditions", [])
    if not isinstance(conditions, list):
        found.append(Problem("bad_shape", "conditions", "must be a list"))
        conditions = []
    parsed: list[Condition] = []
    for i, item in enumerate(conditions):
        condition = _condition(item)
        if condition is None:
            found.append(Problem("bad_shape", f"conditions[{i}]", "{field, op, value} expected"))
        else:
            parsed.append(condition)
    if found:
        return Invalid(tuple(found))
    definition = EventDefinition(
        site=texts["site"],
        key=texts["key"],
        title=texts["title"],
        description=texts["description"],
        conditions=tuple(parsed),
    )
    problems = validate(definition)
    return Invalid(problems) if problems else definition


def _condition(item: object) -> Condition | None:
    if not isinstance(item, dict) or set(item) != {"field", "op", "value"}:
        return None
    field, op, value = item["field"], item["op"], item["value"]
    if not isinstance(field, str) or not isinstance(op, str):
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return Condition(field=field, op=op, value=tuple(value))
    return Condition(field=field, op=op, value=value) if isinstance(value, str) else None


def matches(definition: EventDefinition, event: Event) -> bool:
    """Whether `event` counts for `definition`: same site and key, and every condition holds."""
    if event.tenant != definition.site or event.name != definition.key:
        return False
    return all(_holds(condition, event) for condition in definition.conditions)


def _subject(field: str, event: Event) -> str | None:
    if field == "page_url":
        return event.page_url
    if field == "referrer":
        return event.referrer
    if field == "device_type":
        return event.device_type
    if not field.startswith(PROPERTY):
        return None
    value = event.properties.get(field.removeprefix(PROPERTY))
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):  # bool too: true / false
        return orjson.dumps(value).decode()
    return None


def _holds(condition: Condition, event: Event) -> bool:
    subject = _subject(condition.field, event)
    if subject is None:
        return False
    subject = subject[:MAX_SUBJECT]
    value = condition.value
    if condition.op == "in":
        return isinstance(value, tuple) and subject in value
    if not isinstance(value, str):
        return False
    if condition.op == "equals":
        return subject == value
    if condition.op == "contains":
        return value in subject
    if condition.op == "starts_with":
        return subject.startswith(value)
    if condition.op == "regex":
        pattern = _compile(value) if _regex_problem(value) is None else None
        return pattern is not None and pattern.search(subject[:MAX_REGEX_SUBJECT]) is not None
    return False
