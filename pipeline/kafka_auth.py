"""The Faust worker's Kafka credentials (`broker_credentials`), from the `HITS_KAFKA_*` settings.

The same TLS context and SASL login as every other hitstream client (`deploy.kafka_security`);
Faust hands them to its aiokafka consumer and producer.
"""

from __future__ import annotations

import faust
from faust.types.auth import CredentialsT

from deploy.kafka_security import ssl_context, uses_sasl
from schemas.settings import Settings


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """None for PLAINTEXT; SSL credentials; SASL credentials (over TLS for SASL_SSL)."""
    context = ssl_context(settings)
    if uses_sasl(settings):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            ssl_context=context,  # None: SASL_PLAINTEXT
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None
