"""Random and mutated HTTP requests for the gateway fuzzer (tests/integration/test_fuzz_gateway.py).

Pure: a seeded `random.Random` in, raw request bytes out. Each `FuzzRequest` says whether the HTTP
layer may refuse it before any handler (`may_refuse`: a request line with raw bytes, control
characters in a header, broken framing); every other beacon request must be answered 200.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

import orjson

from gateway.capture import KEPT_HEADERS  # every header the gateway keeps is fuzzed

BEACON_PATHS = ("/event", "/monetate/collect")
OCTETH_PATH = "/api/v1/event"
SEED_HEADERS = {
    "host": b"1234567.log.example.com",
    "user-agent": b"Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
    "referer": b"https://shop.example/checkout?step=2",
    "origin": b"https://shop.example",
    "cookie": b"optimizelyBuckets=%7B%22500%22%3A%221%22%7D; sid=abc",
    "accept": b"image/avif,image/*,*/*;q=0.8",
    "x-forwarded-for": b"203.0.113.9",
    "accept-language": b"de-CH,de;q=0.9",
}
OPTIMIZELY_QUERIES = (
    b"a=501&u=v1&n=checkout&v=1999&d=8&g=1,2&g=3&x500=1",
    b"a=501&u=v2&n=view&x500=2_3&time=1700000000&s1=mobile",
    b"u=v3&n=https%3A%2F%2Fshop%2Fa%3Fb%3Dc&g=500&x500=1",
    b"a=1&u=v4&n=e&optimizelyBuckets=%7B%22500%22%3A%221%22%7D",
)
CONTENT_TYPES = (
    b"",
    b"text/plain;charset=UTF-8",
    b"application/x-www-form-urlencoded",
    b"application/json",
    b"multipart/form-data; boundary=zzz",
    b"multipart/form-data",
    b"text/plain; charset=iso-8859-1",
    b"application/octet-stream",
    b"image/png",
    b";;;=",
    b"text/plain; charset=\xff\xfe",
)
TOKENS = (
    b"%", b"%zz", b"%4", b"&", b"=", b"&&==", b"+", b"%00", b"%FF%FE", b"%ED%A0%80", b"%C0%AF",
    b'"', b"{", b"}", b"[", b"]", b"\\u0000", b"\\ud800", b"null", b"-1", b"1e400", b"NaN",
    b"9" * 40, b"x" * 300, b"\xff", b"\xc3\x28", b"\xe2\x82", b",", b";",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FuzzRequest:
    kind: str  # what generated it (for the report)
    data: bytes  # one or more raw HTTP/1.1 requests
    requests: int  # how many requests `data` holds (pipelined)
    may_refuse: bool  # the HTTP layer may answer 400 (or close) before any handler
    octeth: bool = False
    half_close: bool = False  # shut the write side after sending (a body that never comes)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """1 to 4 byte-level edits: flip, insert random bytes or a token, delete, duplicate."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(out))
        op = rng.randrange(5)
        if op == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:
            out[at:at] = rng.choice(TOKENS)
        elif op == 3:
            del out[at : at + rng.randint(1, 16)]
        else:
            out[at:at] = out[at : at + rng.randint(1, 64)]
    return bytes(out)


def escape(query: bytes) -> bytes:
    """Percent-encode what a request line may not hold raw, keeping `%`, `&`, `=` and `+`."""
    return quote_from_bytes(query, safe="%&=+,;:/?@!$'()*~-._").encode()


def header_value(rng: random.Random, name: str, clean: bool) -> bytes:
    """A seed value mutated, or random bytes; `clean`: no control characters (reach a handler)."""
    seed = SEED_HEADERS.get(name, b"x")
    value = mutate(seed, rng) if rng.random() < 0.6 else rng.randbytes(rng.randint(0, 40))
    if clean:
        value = bytes(b for b in value if b >= 0x20 and b != 0x7F)
    else:
        value = value.replace(b"\r", b"").replace(b"\n", b"")
    return value.strip(b" \t")


def build(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", *(n + b": " + v for n, v in headers)]
    if body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def monetate_body(rng: random.Random, marker: int) -> bytes:
    events: list[object] = [{"key": "signup", "seq": 0}, {"key": rng.choice(["a b", "x" * 300])}]
    body = orjson.dumps(
        {
            "v": 1,
            "site": "shop",
            "visitor": f"fz{marker}",
            "session": "s1",
            "page": {"url": "https://shop/", "device": rng.choice(["mobile", "tv"])},
            "experiments": {"500": "1"},
            "events": events[: rng.randint(0, 2)],
        }
    )
    return mutate(body, rng) if rng.random() < 0.7 else body


def beacon(rng: random.Random, marker: int, *, clean: bool = True) -> tuple[bytes, bool]:
    """One beacon request with every kept header fuzzed; (bytes, may_refuse)."""
    refusable = not clean
    headers = [(b"Host", header_value(rng, "host", clean) or b"h")]
    for name in KEPT_HEADERS[1:]:
        if name == "content-type" or rng.random() < 0.3:
            continue
        headers.append((name.encode(), header_value(rng, name, clean)))
    headers.append((b"Connection", b"close"))
    headers.append((b"Content-Type", rng.choice(CONTENT_TYPES)))
    marker_param = b"fz=%d" % marker
    if rng.random() < 0.5:
        query = marker_param + b"&" + mutate(rng.choice(OPTIMIZELY_QUERIES), rng)
        if rng.random() < 0.8:
            query = escape(query)
        else:  # raw bytes in the request line: aiohttp may refuse them
            query = query.replace(b"\r", b"").replace(b"\n", b"").replace(b" ", b"")
            refusable = refusable or any(b < 0x21 or b > 0x7E for b in query)
        method = rng.choice([b"GET", b"GET", b"POST", b"HEAD"])
        body = mutate(rng.choice(OPTIMIZELY_QUERIES), rng) if method == b"POST" else None
        return build(method, b"/event?" + query, headers, body), refusable
    body = monetate_body(rng, marker) if rng.random() < 0.5 else rng.randbytes(rng.randint(0, 3000))
    path = rng.choice(BEACON_PATHS)
    return build(b"POST", path.encode() + b"?" + marker_param, headers, body), refusable


def broken_framing(rng: random.Random, marker: int) -> FuzzRequest:
    """A beacon whose framing is wrong: the HTTP layer may refuse it, or a handler may see it."""
    head = b"POST /event?fz=%d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n" % marker
    body = b"a=1&u=v&n=e"
    choice = rng.randrange(9)
    if choice == 0:  # promises more than it sends, then closes its side
        data = head + b"Content-Length: 500\r\n\r\n" + body
        return FuzzRequest("framing_short_body", data, 1, True, half_close=True)
    if choice == 1:  # sends more than it promises: the rest is a garbage second request
        return FuzzRequest("framing_long_body", head + b"Content-Length: 3\r\n\r\n" + body, 1, True)
    if choice == 2:
        size = rng.choice([b"zz", b"-1", b"ffffffffffffffffff", b"3;x=\xff", b"c"])
        chunked = b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n" + body + b"\r\n0\r\n\r\n"
        return FuzzRequest("framing_bad_chunks", head + chunked, 1, True, half_close=True)
    if choice == 3:
        data = head + b"Content-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        return FuzzRequest("framing_length_and_chunked", data, 1, True, half_close=True)
    if choice == 4:
        length = rng.choice([b"-5", b"abc", b"11, 12", b"1e3", b"99999999999999999999"])
        data = head + b"Content-Length: " + length + b"\r\n\r\n" + body
        return FuzzRequest("framing_bad_length", data, 1, True, half_close=True)
    if choice == 5:  # missing Host on HTTP/1.1
        data = b"GET /event?fz=%d&a=1&u=v&n=e HTTP/1.1\r\nConnection: close\r\n\r\n" % marker
        return FuzzRequest("framing_no_host", data, 1, True)
    if choice == 6:  # a header line that is not a header
        return FuzzRequest("framing_bad_header_line", head + b"no colon here\r\n\r\n", 1, True)
    if choice == 7:  # cut in the middle of the head
        data = head[: rng.randint(1, len(head))]
        return FuzzRequest("framing_cut_head", data, 1, True, half_close=True)
    # Pipelined: two clean beacons on one connection, answered in order.
    first = b"GET /event?fz=%d&a=1&u=p1&n=e HTTP/1.1\r\nHost: h\r\n\r\n" % marker
    second = b"POST /event?fz=%d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n" % marker
    second += b"Content-Length: 11\r\n\r\n"
    return FuzzRequest("framing_pipelined", first + second + body, 2, False)


def octeth(rng: random.Random, key: str, *, mutated: bool = True) -> FuzzRequest:
    body = orjson.dumps(
        {"APIKey": key, "ListID": 94, "event": "signup", "uuid": "u-1", "properties": {"a": 1}}
    )
    if mutated and rng.random() < 0.7:
        body = mutate(body, rng)
    headers = [
        (b"Host", b"h"),
        (b"Connection", b"close"),
        (b"Content-Type", rng.choice(CONTENT_TYPES)),
        (b"User-Agent", header_value(rng, "user-agent", True)),
    ]
    return FuzzRequest(
        "octeth", build(b"POST", OCTETH_PATH.encode(), headers, body), 1, False, True
    )


def requests(count: int, seed: int, octeth_key: str) -> list[FuzzRequest]:
    """`count` requests: mostly clean-framed fuzzed beacons, some refusable ones, some Octeth."""
    rng = random.Random(seed)
    out: list[FuzzRequest] = []
    for marker in range(count):
        roll = rng.random()
        if roll < 0.70:
            data, refusable = beacon(rng, marker)
            out.append(FuzzRequest("beacon", data, 1, refusable))
        elif roll < 0.80:
            data, _ = beacon(rng, marker, clean=False)
            out.append(FuzzRequest("beacon_control_chars", data, 1, True))
        elif roll < 0.90:
            out.append(broken_framing(rng, marker))
        else:
            out.append(octeth(rng, octeth_key))
    return out
