"""Hold the numbers a results page shows to the JSON document they came from.

Every figure on the pages is a `<span class="n" data-path="[...]" data-scale="s">`
(results/html.py): `check` looks each path up in the document and asserts that the shown text
is the value times the scale, rounded as shown ("-" for null; "+inf"/"-inf" for an unbounded
interval end, which the JSON writes as null).
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from typing import Any

import orjson


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[list[Any], float, str]] = []
        self._open: tuple[list[Any], float] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "span" and found.get("data-path"):
            self._open = (orjson.loads(found["data-path"] or ""), float(found["data-scale"] or 1))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.found.append((*self._open, data))
            self._open = None

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None:  # an empty span
            self.found.append((*self._open, ""))
            self._open = None


def figures(page: str) -> list[tuple[list[Any], float, str]]:
    parser = _Figures()
    parser.feed(page)
    return parser.found


def lookup(document: Any, path: list[Any]) -> Any:
    for key in path:
        document = document[key]
    return document


def check(page: str, document: dict[str, Any]) -> int:
    """Assert every figure of `page` equals `document` (as JSON: NaN is null); the count."""
    found = figures(page)
    for path, scale, text in found:
        value = lookup(document, path)
        where = f"{path}: shown {text!r}, JSON {value!r}"
        if text == "-":
            assert value is None, where
        elif text in ("+inf", "-inf"):  # the API writes infinities as null (results.report)
            assert value is None or (math.isinf(value) and (value > 0) == (text == "+inf")), where
        else:
            match = re.fullmatch(r"\$?([+-]?[\d,]+(?:\.(\d+))?)(%|pp)?", text)
            assert match and value is not None, where
            shown = float(match[1].replace(",", ""))
            half_unit = 0.5 * 10 ** -len(match[2] or "")
            assert abs(shown - value * scale) <= half_unit * (1 + 1e-9), where
    return len(found)
