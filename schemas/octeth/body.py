"""Reading an Octeth request body: raw JSON bytes to a top-level object, or None (code 102).

Strict by default (RFC 8259 as orjson reads it: UTF-8, no NaN/Infinity, no lone surrogates).
`lenient=True` also accepts the seed's `//` line comments; they are removed only outside strings,
so `"http://x"` is untouched, and removing them is a no-op on valid JSON, which makes lenient mode
a strict superset. A leading UTF-8 byte order mark is skipped (RFC 8259 lets a reader ignore it).
Nesting deeper than `MAX_DEPTH` is refused: deep values could not be re-encoded downstream.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_DEPTH = 32  # the top-level object is depth 1
BOM = b"\xef\xbb\xbf"
# A string (closed or not: an unclosed one runs to the end) or a `//` comment up to the line end.
_STRING_OR_COMMENT = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?|//[^\r\n]*', re.DOTALL)


def strip_line_comments(data: bytes) -> bytes:
    """`data` without `//` comments outside JSON strings (line ends are kept)."""
    if b"//" not in data:
        return data
    return _STRING_OR_COMMENT.sub(lambda m: b"" if m[0].startswith(b"//") else m[0], data)


def load_object(body: bytes, *, lenient: bool = False) -> dict[str, Any] | None:
    """The body's top-level JSON object, or None when the body is not one."""
    data = bytes(body).removeprefix(BOM)
    if lenient:
        data = strip_line_comments(data)
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or _deeper_than(obj, MAX_DEPTH):
        return None
    return obj


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def fold_keys(obj: dict[str, Any], known: frozenset[str]) -> tuple[dict[str, Any], bool]:
    """The `known` (lowercase) top-level keys, matched ASCII-case-insensitively; the first in
    document order wins. Also says whether a known key was given more than once."""
    found: dict[str, Any] = {}
    repeated = False
    for key, value in obj.items():
        folded = key.lower() if key.isascii() else key
        if folded not in known:
            continue
        if folded in found:
            repeated = True
        else:
            found[folded] = value
    return found, repeated
