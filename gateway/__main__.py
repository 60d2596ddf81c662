"""`python -m gateway`: serve the gateway with the process's `HITS_*` settings (uvloop)."""

from __future__ import annotations

import logging

import uvloop
from aiohttp import web

from deploy.startup import configure_logging, settings_or_exit
from gateway.app import create_app

log = logging.getLogger("gateway")


def main() -> None:
    settings = settings_or_exit()
    configure_logging(settings)
    web.run_app(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=None,
        print=lambda text: log.info(" ".join(str(text).split())),
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
