"""`python -m gateway`: serve the gateway with the process's `HITS_*` settings (uvloop)."""

from __future__ import annotations

import logging
import sys

import uvloop
from aiohttp import web

from gateway.app import create_app
from schemas.settings import SettingsError, load_settings


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    web.run_app(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=None,
        print=lambda text: print(text, flush=True),
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
