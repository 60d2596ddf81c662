"""`python -m pipeline.worker`: one hitstream worker, under a small supervisor.

The supervisor runs the Faust worker as a child process and starts it again when it exits with
`GAP_EXIT_CODE` (it stopped itself because Faust skipped messages, `pipeline.gaps`, or it held no
partition too long, `pipeline.idle`), and when it exits with `AGENT_CRASH_EXIT_CODE` (an agent
raised, `pipeline.crash`) as long as the `CrashBudget` allows; any other exit, or one crash more
than the budget, ends the supervisor with the same code, for the process manager to see. SIGTERM
and SIGINT are passed to the child, and the child dies with the supervisor (PR_SET_PDEATHSIG), so
`kill -9` of either leaves nothing behind. The supervisor checks the topics once before the first
child (`deploy.startup`).
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from deploy.startup import (
    configure_logging,
    logging_config,
    settings_or_exit,
    warn_of_topic_problems,
)
from pipeline.crash import AGENT_CRASH_EXIT_CODE, CrashBudget
from pipeline.gaps import GAP_EXIT_CODE

log = logging.getLogger("pipeline.worker")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def supervise(child_command: list[str] | None = None) -> int:
    """Run `child_command` (the Faust worker) until it ends for good; return its exit code."""
    command = child_command or [sys.executable, "-m", "pipeline.worker", "--child"]
    budget = CrashBudget()
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        child = subprocess.Popen(command, preexec_fn=_die_with_parent)
        code = child.wait()
        reason = None if stopping else restart_reason(code, budget, time.monotonic())
        if reason is None:
            if code == AGENT_CRASH_EXIT_CODE and not stopping:
                log.critical("an agent crashed again: the worker exits with code %d", code)
            return code
        log.warning("%s; starting the worker again", reason)
        time.sleep(0.5)


def restart_reason(code: int, budget: CrashBudget, now: float) -> str | None:
    """Why the supervisor starts the worker again after it exited with `code` at `now`, or None
    when it must not (a crash beyond the budget is recorded and refused)."""
    if code == GAP_EXIT_CODE:
        return "the worker stopped itself to resume from the committed offsets"
    if code == AGENT_CRASH_EXIT_CODE and budget.allows_restart(now):
        return (
            f"an agent crashed ({len(budget.crashes)} of {budget.restarts} restarts within "
            f"{budget.window_s:.0f} s)"
        )
    return None


# Faust's --loglevel spells two of the logging module's names its own way.
_FAUST_LEVELS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warn",
    "ERROR": "error",
    "CRITICAL": "crit",
}


def run_worker() -> None:
    from pipeline.app import create_app
    from pipeline.changelogs import create_changelogs
    from pipeline.restore import restore_missing

    settings = settings_or_exit()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    create_changelogs(settings, app.tables.values())  # before Faust: it would race its consumer
    restore_missing(settings, app.tables.values())  # bulk rebuild of lost table partitions
    # Faust sets the logging up again when the worker starts: with our handler and formatter.
    app.conf.logging_config = logging_config(settings)
    level = _FAUST_LEVELS[settings.log_level.upper()]
    # --quiet: no banner on stdout (it is not a log line); the same facts are logged.
    sys.argv = [sys.argv[0], "--quiet", "worker", "--loglevel", level]
    app.main()


def main() -> None:
    settings = settings_or_exit()
    configure_logging(settings)
    if "--child" in sys.argv[1:]:
        run_worker()
    else:
        warn_of_topic_problems(settings)  # once, in the supervisor
        raise SystemExit(supervise())


if __name__ == "__main__":
    main()
