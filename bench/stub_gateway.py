"""The gateway with publishing stubbed: the same app, a publisher that returns at once.

`python -m bench.stub_gateway` (HITS_* settings); measures what the gateway costs without Kafka.
"""

from __future__ import annotations

import uvloop
from aiohttp import web

from gateway.app import create_app
from gateway.publisher import KafkaPublisher
from schemas.settings import load_settings


class NullPublisher(KafkaPublisher):
    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def publish(self, topic: str, value: bytes, key: bytes | None) -> None:
        return None


def main() -> None:
    settings = load_settings()
    web.run_app(
        create_app(settings, NullPublisher(settings)),
        host=settings.gateway_host,
        port=settings.gateway_port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
