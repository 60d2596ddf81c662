"""How every hitstream Kafka client connects: TLS and SASL from the `HITS_KAFKA_*` settings.

`client_options` gives the keyword arguments of aiokafka's producer, consumer and admin client
(the gateway's publisher, `deploy.topics`, the CLI); the Faust worker gets the same through
`pipeline.app` (`broker_credentials`). The password only ever travels inside these objects.
"""

from __future__ import annotations

import ssl
from typing import Any

from schemas.settings import Settings


def uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in {"SSL", "SASL_SSL"}


def uses_sasl(settings: Settings) -> bool:
    return settings.kafka_security_protocol.startswith("SASL_")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the brokers (None without TLS): verifies them, presents a cert."""
    if not uses_tls(settings):
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=settings.kafka_ssl_cafile or None
    )
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile or None,
            password=settings.kafka_ssl_key_password or None,
        )
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments: security protocol, TLS context, SASL mechanism and login."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if uses_sasl(settings):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options
