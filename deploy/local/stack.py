"""`make run` / `make down` / `make status`: the whole local stack, up and serving, in `.local/`.

    python -m deploy.local.stack up    # Kafka, ClickHouse engine, worker, gateway, results
                                       # pages (127.0.0.1:8090); returns when up
    python -m deploy.local.stack down  # stop them all
    python -m deploy.local.stack status

Processes run detached; their pids and ports are in `.local/run/stack.json`, logs in `.local/logs`.
Data (Kafka log, ClickHouse tables, RocksDB) stays in `.local/` across restarts.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

from deploy.local import services
from deploy.local.kafka_local import ROOT, KafkaBroker
from deploy.local.localstack import (
    prepare,
    start_clickhouse,
    start_gateway,
    start_results,
    start_worker,
)
from deploy.local.ports import free_port, port_open
from schemas.settings import load_settings

LOCAL = ROOT / ".local"
STATE = LOCAL / "run" / "stack.json"
LOGS = LOCAL / "logs"


def _port(preferred: int) -> int:
    return preferred if not port_open("127.0.0.1", preferred) else free_port()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def up() -> int:
    if STATE.exists() and all(_alive(p) for p in json.loads(STATE.read_text())["pids"].values()):
        print("the local stack is already running:")
        return status()
    began = time.monotonic()
    settings = load_settings()
    kafka = KafkaBroker(LOCAL / "kafka" / "broker", _port(9092)).start()
    print(f"Kafka broker     127.0.0.1:{kafka.port}   ({time.monotonic() - began:.1f} s)")
    ch_port = _port(8123)
    clickhouse = start_clickhouse(LOCAL / "clickhouse", ch_port, LOGS / "clickhouse.log")
    print(f"ClickHouse (chDB) http://127.0.0.1:{ch_port}")
    settings = replace(
        settings,
        kafka_bootstrap=kafka.bootstrap,
        clickhouse_url=f"http://127.0.0.1:{ch_port}",
        data_dir=str(LOCAL / "data" / "worker"),
        spool_dir=str(LOCAL / "spool" / "gateway"),
        gateway_port=_port(settings.gateway_port),
        worker_web_port=_port(settings.worker_web_port),
        kafka_session_timeout_s=min(settings.kafka_session_timeout_s, 6.0),
    )
    prepare(settings)
    worker = start_worker(settings, LOGS / "worker.log", wait=True)
    gateway = start_gateway(settings, LOGS / "gateway.log")
    results_port = _port(8090)
    results = start_results(settings, results_port, LOGS / "results.log")
    assert kafka.process is not None
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(
        json.dumps(
            {
                "pids": {
                    "gateway": gateway.pid,
                    "results": results.pid,
                    "worker": worker.pid,
                    "clickhouse": clickhouse.pid,
                    "kafka": kafka.process.pid,
                },
                "gateway": f"http://127.0.0.1:{settings.gateway_port}",
                "results": f"http://127.0.0.1:{results_port}",
                "clickhouse": settings.clickhouse_url,
                "kafka": kafka.bootstrap,
                "database": settings.clickhouse_database,
            },
            indent=2,
        )
    )
    print(f"up in {time.monotonic() - began:.1f} s\n")
    return status()


def status() -> int:
    if not STATE.exists():
        print("the local stack is not running (make run)")
        return 1
    state = json.loads(STATE.read_text())
    for name, pid in state["pids"].items():
        print(f"  {name:<11} pid {pid:<8} {'running' if _alive(pid) else 'STOPPED'}")
    gw, ch, db = state["gateway"], state["clickhouse"], state["database"]
    print(f"""
Send a hit (Optimizely classic Event API):
  curl -i '{gw}/event?a=1&n=e&u=v1&x2=3'
Query ClickHouse (any client; the engine speaks ClickHouse's HTTP interface):
  curl '{ch}/?database={db}' --data-binary 'SELECT name, visitor_id, experiments FROM events'
Results pages (make demo for an experiment): {state.get("results", "not started")}/
Logs: {LOGS}/   Stop: make down""")
    return 0


def down() -> int:
    if not STATE.exists():
        print("the local stack is not running")
        return 0
    pids = json.loads(STATE.read_text())["pids"]
    for name in ("results", "gateway", "worker", "clickhouse", "kafka"):
        if name in pids:
            services.stop_pid(pids[name])
            print(f"stopped {name}")
    STATE.unlink()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    return {"up": up, "down": down, "status": status}[parser.parse_args().command]()


if __name__ == "__main__":
    raise SystemExit(main())
