"""A throwaway local stack for a benchmark: Kafka and the chDB server in a temporary directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deploy.local.localstack import LocalStack, prepare
from deploy.local.ports import free_port
from schemas.settings import Settings


@contextmanager
def local_stack(**overrides: Any) -> Iterator[tuple[LocalStack, Settings, Path]]:
    """(stack, settings, work dir) with topics and tables made; everything stops on exit.

    Settings: quiet logs, a free worker web port, `make run`'s 6 s session timeout and a gateway
    spool in the work dir, then
    `overrides`."""
    with tempfile.TemporaryDirectory(prefix="hits-bench-") as tmp:
        work = Path(tmp)
        stack = LocalStack(work).start()
        try:
            base: dict[str, Any] = dict(
                log_level="WARNING",
                worker_web_port=free_port(),
                kafka_session_timeout_s=6.0,
                spool_dir=str(work / "spool"),
            )
            settings = stack.settings(**{**base, **overrides})
            prepare(settings)
            yield stack, settings, work
        finally:
            stack.stop()
