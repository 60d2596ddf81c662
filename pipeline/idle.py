"""Guard against a worker left without partitions: restart it so that it joins the group again.

Seen in the chaos suite: after a broker restart the group coordinator reloads the last
generation, whose members include a worker killed a moment before; the rebalance gives the live
worker nothing, and it then never heard of the next rebalance (no log line for minutes) while
`hits.raw` waited. A worker that holds no partition for `limit_s` exits with `GAP_EXIT_CODE`
and its supervisor starts it again (a warm restart: a few seconds). Run at most as many workers
as partitions: a surplus worker, rightly idle, would restart every `limit_s` (it says so).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class IdleWatch:
    limit_s: float
    _idle_since: float | None = None

    def idle_for(self, assigned: int, now: float) -> float:
        """Record how many partitions the worker holds at `now`; return how long it has held
        none (0 while it holds some)."""
        if assigned:
            self._idle_since = None
            return 0.0
        if self._idle_since is None:
            self._idle_since = now
        return now - self._idle_since

    def exceeded(self, assigned: int, now: float) -> bool:
        return self.idle_for(assigned, now) >= self.limit_s


def limit_for(session_timeout_s: float) -> float:
    """How long a worker may hold no partition: several rebalances' worth, at least 30 s."""
    return max(30.0, 6 * session_timeout_s)
