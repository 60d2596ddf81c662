"""A one-line progress display on stderr (no dependency: the CLI needs only a count and a rate)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLine:
    """`label  n/total  (pct)  rate/s`, redrawn in place on a terminal, else at most every 5 s."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._drawn = 0.0
        self._shown = -1

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._drawn >= (0.1 if self._tty else 5.0) or done >= self.total:
            self._draw(now)

    def advance(self, n: int) -> None:
        self.update(self.done + n)

    def close(self) -> None:
        if self._shown != self.done:
            self._draw(time.monotonic())
        if self._tty:
            self._stream.write("\n")
        self._stream.flush()

    def _draw(self, now: float) -> None:
        self._drawn = now
        self._shown = self.done
        rate = self.done / max(now - self._started, 1e-3)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        line = f"{self.label:<9} {self.done}/{self.total} ({pct:5.1f}%) {rate:,.0f}/s"
        self._stream.write(("\r" + line) if self._tty else line + "\n")
        self._stream.flush()
