"""What Faust itself costs per message: a worker whose one agent over `hits.raw` does nothing.

`python -m bench.faust_floor` (run by `bench pipeline`, configured by the HITS_* environment like
the real worker, with its own app id): an agent with the real worker's broker settings counts the
messages of `hits.raw` and, at `BENCH_HITS`, writes its wall and CPU seconds from the first message
to the last to `BENCH_FLOOR_OUT`, then exits. Beside the plain aiokafka loop (all the work, no
framework) and the worker (all the work in Faust) it tells how much of the gap is Faust's own.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import faust
import orjson

from pipeline.app import QuietWorker
from schemas.settings import load_settings
from schemas.topics import RAW


def main() -> None:
    settings = load_settings()
    hits, out = int(os.environ["BENCH_HITS"]), Path(os.environ["BENCH_FLOOR_OUT"])
    app = faust.App(
        f"{settings.app_id}-floor",
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        store="memory://",
        datadir=settings.data_dir,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=max(settings.kafka_session_timeout_s / 4, 0.5),
        broker_rebalance_timeout=settings.kafka_session_timeout_s,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        web_enabled=False,  # not honoured by the worker command: it still serves, so on our port
        web_port=settings.worker_web_port,
        web_bind="127.0.0.1",
        Worker=QuietWorker,
    )
    raw = app.topic(settings.topic(RAW), key_type=bytes, value_type=bytes)

    @app.agent(raw, concurrency=1)
    async def count(stream: faust.StreamT[bytes]) -> None:
        seen, began = 0, (0.0, 0.0)
        async for _ in stream.events():
            seen += 1
            if seen == 1:
                began = (time.perf_counter(), time.process_time())
            if seen == hits:
                wall, cpu = time.perf_counter() - began[0], time.process_time() - began[1]
                result = {"events": hits - 1, "wall_s": wall, "cpu_s": cpu}
                out.write_bytes(orjson.dumps(result))  # noqa: ASYNC240 (the last act)
                os._exit(0)

    sys.argv = [sys.argv[0], "--quiet", "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
