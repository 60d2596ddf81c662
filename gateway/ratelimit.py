"""A per-key token bucket: `rate` requests per minute, bursts up to `rate`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucket:
    """`take(key)` is 0.0 when the request may go, else the seconds until a token is back."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.capacity = float(max(per_minute, 1))
        self.per_second = self.capacity / 60.0
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.per_second)
        if tokens >= 1.0:
            if key not in self._buckets and len(self._buckets) >= self._max_keys:
                self._buckets.clear()  # bounded memory; a reset only gives full buckets back
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.per_second

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait_s)))
