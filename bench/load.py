"""Load generation with wrk (Debian), pinned to a core, and its figures parsed."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36",
    "Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.9,de;q=0.8",
    "Referer": "https://shop.example.com/products/blue-shoes?utm_source=newsletter",
    "Cookie": "optimizelyEndUserId=oeu1700000000000r0.12345; optimizelyBuckets=%7B%7D; "
    "_ga=GA1.2.123456789.1700000000",
}
BEACON = (
    "/event?a=1234567&n=add_to_cart&u=oeu1700000000000r0.12345&x87654321=1111111"
    "&x98765432=2222222_3333333&g=555,87654321&v=1999&d=8511325&s983745985=gc"
)


def ensure_tools(*names: str) -> None:
    """Install wrk/nginx from Debian when missing (the benchmark machine is root)."""
    missing = [n for n in names if shutil.which(n) is None and not Path(f"/usr/sbin/{n}").exists()]
    if missing:
        packages = ["nginx-light" if n == "nginx" else n for n in missing]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, capture_output=True
        )


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if match is None:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    url: str,
    *,
    core: int,
    seconds: int = 8,
    connections: int = 64,
    headers: dict[str, str] = BROWSER_HEADERS,
) -> WrkResult:
    argv = [
        "taskset",
        "-c",
        str(core),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: .*", out)
    count = int(errors.group(1)) if errors else 0
    return WrkResult(rps, p50, p99, count + (1 if socket_errors else 0))


def median_of(results: list[WrkResult]) -> WrkResult:
    return WrkResult(
        statistics.median(r.requests_per_s for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )
