"""An agent that raises stops the worker at once; its supervisor decides whether to start it again.

Faust's default agent supervisor restarts a crashed agent inside the running worker, on the same
stream, after its own error hook has committed offsets and the stream has acked the record that
raised: that record is skipped for good (the alarm's counts miss it), and an agent that raises
again on every record keeps skipping records while the worker looks healthy. Faust's
`CrashingSupervisor` stops the worker, but gracefully, and its stop commits that record too
(both seen on a real broker). So every agent of the worker is wrapped in `exit_on_crash`: the
first exception out of the agent is logged at CRITICAL (which agent, which exception, the
traceback) and the process ends with `AGENT_CRASH_EXIT_CODE` before Faust acks or commits
anything more; started again, the worker resumes from the committed offsets and reads that
record again. `CrashBudget` is the supervisor's rule for starting it again (`pipeline.worker`).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

AGENT_CRASH_EXIT_CODE = 70  # EX_SOFTWARE: an agent raised (a bug, or Kafka not as configured)
RESTARTS_PER_WINDOW = 2  # the supervisor starts a crashed worker again at most this often ...
WINDOW_S = 600.0  # ... within this many seconds; one crash more ends it with the same code

AgentFun = Callable[[Any], Awaitable[None]]


def exit_on_crash(fun: AgentFun) -> AgentFun:
    """`fun` (an agent's function) as Faust should run it: an exception out of it ends the
    process at once with `AGENT_CRASH_EXIT_CODE`, after a CRITICAL log line naming the agent."""
    name = f"{fun.__module__}.{fun.__name__}"

    @functools.wraps(fun)
    async def run(stream: Any) -> None:
        try:
            await fun(stream)
        except Exception as exc:
            log.critical(
                "agent %s crashed (%s: %s): exiting to resume from the committed offsets",
                name,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            logging.shutdown()
            os._exit(AGENT_CRASH_EXIT_CODE)

    return run


@dataclass(slots=True)
class CrashBudget:
    """How often a worker whose agent crashed is started again: at most `restarts` times within
    any `window_s` seconds, so a passing fault heals and a crash that repeats ends the supervisor
    (with `AGENT_CRASH_EXIT_CODE`, for the process manager above it to see)."""

    restarts: int = RESTARTS_PER_WINDOW
    window_s: float = WINDOW_S
    crashes: list[float] = field(default_factory=list)

    def allows_restart(self, now: float) -> bool:
        """Record a crash at `now` (monotonic seconds); True when the worker may start again."""
        self.crashes = [t for t in self.crashes if now - t < self.window_s] + [now]
        return len(self.crashes) <= self.restarts
