"""One gateway process, or `HITS_GATEWAY_PROCESSES=N` of them on one port (SO_REUSEPORT).

With N > 1 the process started becomes a supervisor: it starts N gateway processes, each binding
the shared port with SO_REUSEPORT (the kernel spreads new connections across them), each with its
own spool directory (`process_settings`) and its own Prometheus registry, and restarts any that
dies, on the same spool: a process killed with hits in its spool drains them when it is back.
With `HITS_GATEWAY_PROCESS_PORTS_FROM=P`, process i also listens on port P + i, so its /metrics
and /readyz can be read on their own (through the shared port a scrape reaches any one process).
SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from dataclasses import replace
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import uvloop
from aiohttp import web

from deploy.startup import configure_logging
from gateway.app import create_app
from schemas.settings import Settings

log = logging.getLogger("gateway")
RESTART_PAUSE_S = 0.5
MAX_PAUSE_S = 5.0
STABLE_S = 30.0  # a process that ran this long is restarted at once when it dies


def process_settings(settings: Settings, index: int) -> Settings:
    """Settings of gateway process `index`: process 0 keeps the spool directory (so a single
    process's spool is drained after a switch to N), process i > 0 spools in `process-<i>`."""
    spool = Path(settings.spool_dir)
    return replace(settings, spool_dir=str(spool if index == 0 else spool / f"process-{index}"))


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def serve(settings: Settings, index: int | None = None) -> None:
    """Serve the gateway in this process (`index`: its place among N processes, else alone)."""
    configure_logging(settings)
    sockets = []
    if index is not None:
        settings = process_settings(settings, index)
        sockets.append(
            listening_socket(settings.gateway_host, settings.gateway_port, reuse_port=True)
        )
        if settings.gateway_process_ports_from:
            own = settings.gateway_process_ports_from + index
            sockets.append(listening_socket(settings.gateway_host, own, reuse_port=False))
    web.run_app(
        create_app(settings),
        host=None if sockets else settings.gateway_host,
        port=None if sockets else settings.gateway_port,
        sock=sockets or None,
        access_log=None,
        print=lambda text: log.info(" ".join(str(text).split())),
        loop=uvloop.new_event_loop(),
    )


def supervise(settings: Settings) -> None:
    """Run `settings.gateway_processes` gateway processes until SIGTERM/SIGINT; restart the dead."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(index: int) -> BaseProcess:
        child = context.Process(target=serve, args=(settings, index), name=f"gateway-{index}")
        child.start()
        return child

    children = {i: start(i) for i in range(settings.gateway_processes)}
    started = {i: time.monotonic() for i in children}
    due: dict[int, float] = {}  # index -> when to restart it
    pause = dict.fromkeys(children, RESTART_PAUSE_S)
    log.info("gateway: %d processes on port %d", len(children), settings.gateway_port)
    while not stopping:
        time.sleep(RESTART_PAUSE_S)
        now = time.monotonic()
        for index, child in children.items():
            if child.is_alive() or stopping:
                continue
            if index not in due:
                # One that keeps failing at start (Kafka away: a gateway starts only once it
                # reaches Kafka) is retried less and less often, up to every MAX_PAUSE_S.
                quick = now - started[index] < STABLE_S
                pause[index] = min(pause[index] * 2, MAX_PAUSE_S) if quick else RESTART_PAUSE_S
                due[index] = now + pause[index]
                log.error(
                    "gateway process %d exited (%s): restarting it in %.1f s",
                    index,
                    child.exitcode,
                    pause[index],
                )
            elif now >= due.pop(index):
                children[index] = start(index)
                started[index] = now
    for child in children.values():
        if child.is_alive() and child.pid is not None:
            child.terminate()
    for child in children.values():
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
