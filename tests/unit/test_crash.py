"""An agent that raises ends the worker (`pipeline.crash`), and the supervisor's restart rule.

Faust's own supervisor restarted a crashed agent inside the running worker, after acking the
record that raised: the live sample-ratio alarm skipped records, or went silent, while the worker
looked healthy. Every agent of the worker must end the process instead, at once, with
`AGENT_CRASH_EXIT_CODE`, naming itself and the exception in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.crash import AGENT_CRASH_EXIT_CODE, CrashBudget, exit_on_crash
from pipeline.gaps import GAP_EXIT_CODE
from pipeline.worker import restart_reason, supervise
from schemas.settings import Settings


class Exited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """`os._exit` raises `Exited` instead of ending pytest; the log stays open."""

    def fake_exit(code: int) -> None:
        raise Exited(code)

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(logging, "shutdown", lambda: None)


class BrokenStream:
    """A stream whose iteration raises, as Faust's does when a table's changelog does not match
    its source topic (`PartitionsMismatch`)."""

    enable_acks = True

    async def events(self) -> AsyncIterator[Any]:
        raise RuntimeError("the changelog topic has 0 partitions")
        yield  # an async generator, like Faust's


def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr("pipeline.monitor.install", lambda app: None)  # metrics register once

    async def changelogs_match(self: Any, *names: str) -> None:
        pass  # no broker here: the changelog check passes (it is tested on the real one)

    monkeypatch.setattr("pipeline.changelog_batches.ChangelogSender.check", changelogs_match)
    from pipeline import app as worker_app

    settings = replace(
        Settings(),
        data_dir=str(tmp_path / "worker"),
        clickhouse_url="http://127.0.0.1:9",  # refused at once: the registries stay empty
    )
    found = dict(worker_app.create_app(settings).agents)
    assert {"pipeline.app.process", "pipeline.alarm.srm_check"} <= set(found)
    return found


async def test_every_agent_of_the_worker_ends_the_process_when_it_raises(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exits: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, agent in agents(tmp_path, monkeypatch).items():
        caplog.clear()
        with pytest.raises(Exited) as exited:
            await agent.fun(BrokenStream())
        assert exited.value.code == AGENT_CRASH_EXIT_CODE, name
        [record] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
        assert name in record.getMessage()
        assert "RuntimeError: the changelog topic has 0 partitions" in record.getMessage()
        assert record.exc_info is not None  # the traceback is logged too


async def test_an_agent_that_ends_normally_or_is_cancelled_does_not_exit(exits: None) -> None:
    calls: list[str] = []

    @exit_on_crash
    async def quiet(stream: Any) -> None:
        calls.append(stream)

    @exit_on_crash
    async def cancelled(stream: Any) -> None:
        raise asyncio.CancelledError  # Faust stopping the agent: not a crash

    await quiet("s")
    assert calls == ["s"] and quiet.__name__ == "quiet"  # Faust names the agent after it
    with pytest.raises(asyncio.CancelledError):
        await cancelled("s")


def test_the_budget_allows_a_few_restarts_per_window_then_refuses() -> None:
    budget = CrashBudget(restarts=2, window_s=600.0)
    assert budget.allows_restart(0.0)
    assert budget.allows_restart(10.0)
    assert not budget.allows_restart(20.0)  # a third crash within 10 minutes
    fresh = CrashBudget(restarts=2, window_s=600.0)
    assert fresh.allows_restart(0.0) and fresh.allows_restart(10.0)
    assert fresh.allows_restart(605.0)  # the first crash has left the window


def test_the_supervisor_restarts_after_a_gap_or_a_crash_within_budget_only() -> None:
    budget = CrashBudget(restarts=1, window_s=600.0)
    assert restart_reason(GAP_EXIT_CODE, budget, 0.0)
    assert restart_reason(AGENT_CRASH_EXIT_CODE, budget, 0.0)
    assert restart_reason(AGENT_CRASH_EXIT_CODE, budget, 1.0) is None  # over budget
    assert restart_reason(GAP_EXIT_CODE, budget, 2.0)  # gaps are not counted
    for code in (0, 1, 2, -9):
        assert restart_reason(code, CrashBudget(), 0.0) is None


@pytest.fixture
def own_signal_handlers() -> Iterator[None]:
    """`supervise` installs SIGTERM and SIGINT handlers: give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_worker_that_keeps_crashing_is_started_again_then_given_up(
    tmp_path: Path, own_signal_handlers: None
) -> None:
    starts = tmp_path / "starts"
    child = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit({AGENT_CRASH_EXIT_CODE})"
    assert supervise([sys.executable, "-c", child]) == AGENT_CRASH_EXIT_CODE
    assert starts.read_text() == "x" * (CrashBudget().restarts + 1)
