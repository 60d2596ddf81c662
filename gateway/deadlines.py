"""Deadlines shared by every publish that starts in the same short window: one timer per window.

`asyncio.timeout` per request costs a `Timeout` object, a timer handle pushed on (and cancelled
off) the loop's heap and two coroutine calls for each hit; at thousands of hits a second that was
a visible part of the gateway's publish cost. Here every publish that starts within `window`
seconds joins one group, and one timer fires at the group's start + `timeout`: whoever is still
waiting then is cancelled, as `asyncio.timeout` would, so no publish waits longer than `timeout`
(one that joined late in its window gets up to `window` less).
"""

from __future__ import annotations

import asyncio

WINDOW_S = 0.01


class Waiter:
    """One publish in a group: `task` until it leaves; `expired` once its deadline cancelled it."""

    __slots__ = ("cancelling", "expired", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task: asyncio.Task[object] | None = task
        self.cancelling = task.cancelling()
        self.expired = False

    def leave(self) -> bool:
        """Stop waiting; True when the deadline cancelled the task and nothing else did (as
        `asyncio.timeout` decides): the caller turns its `CancelledError` into a timeout."""
        self.task, task = None, self.task
        if not self.expired or task is None:
            return False
        return task.uncancel() <= self.cancelling


class Deadlines:
    def __init__(self, timeout: float, window: float = WINDOW_S) -> None:
        self.timeout = timeout
        self.window = window
        self._group: list[Waiter] = []
        self._closes = 0.0

    def join(self) -> Waiter:
        """The current task joins the open group (a new one when the window has passed)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now >= self._closes:
            self._group = []
            self._closes = now + self.window
            loop.call_at(now + self.timeout, _expire, self._group)
        waiter = Waiter(asyncio.current_task())  # type: ignore[arg-type]
        self._group.append(waiter)
        return waiter


def _expire(group: list[Waiter]) -> None:
    for waiter in group:
        if waiter.task is not None:
            waiter.expired = True
            waiter.task.cancel("publish deadline")
    group.clear()
