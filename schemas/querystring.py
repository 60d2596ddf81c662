"""A robust `application/x-www-form-urlencoded` decoder shared by the wire-format parsers.

Never raises on input. Rules:
- pairs are split on `&` only (not `;`); empty pieces and pairs with an empty name are dropped;
  a piece without `=` is a name with the value "".
- `+` is a space; `%XX` is a byte; a malformed escape (`%zz`, a trailing `%4`) stays literal.
- the bytes of each name and value are UTF-8; invalid sequences (including lone surrogates that
  reached a `str` query) become U+FFFD and `Pairs.lossy` is set, so a parser can flag the hit
  (and refuse an identifier holding U+FFFD). Decoded text never holds a surrogate, so it always
  encodes to UTF-8 and JSON.
- more than `max_params` pieces: `decode_pairs` returns None (the caller rejects the hit) before
  decoding anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Pairs:
    pairs: tuple[tuple[str, str], ...]
    lossy: bool  # some name or value held invalid UTF-8 (now U+FFFD)


def to_bytes(text: str) -> bytes:
    """`text` as UTF-8 without raising: surrogate escapes (U+DC80..U+DCFF, what a `surrogateescape`
    decode makes of undecodable bytes) go back to their bytes, other lone surrogates stay as
    (invalid) UTF-8 bytes, so a later decode replaces them."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def clean_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (safe to encode as UTF-8 / JSON)."""
    return _SURROGATE.sub("\ufffd", text)


def decode_component(raw: bytes, *, plus_is_space: bool = True) -> tuple[str, bool]:
    """Percent-decode one name or value; returns the text and whether bytes were replaced."""
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    data = unquote_to_bytes(raw) if b"%" in raw else raw
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), True


def split_pieces(data: bytes) -> list[bytes]:
    return [piece for piece in data.split(b"&") if piece]


def decode_pairs(data: bytes, *, max_params: int) -> Pairs | None:
    """Decode a query string or form body; None when it holds more than `max_params` pairs."""
    pieces = split_pieces(data)
    if len(pieces) > max_params:
        return None
    pairs: list[tuple[str, str]] = []
    lossy = False
    for piece in pieces:
        raw_name, _, raw_value = piece.partition(b"=")
        name, bad_name = decode_component(raw_name)
        if not name:
            continue
        value, bad_value = decode_component(raw_value)
        pairs.append((name, value))
        lossy = lossy or bad_name or bad_value
    return Pairs(tuple(pairs), lossy)


def cookie_value(header: str, name: str) -> str | None:
    """The raw (still percent-encoded) value of the first cookie called `name`, or None."""
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return None
