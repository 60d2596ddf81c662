"""The Octeth Event Tracking API: validator, parser and event mapper.

Modules, bottom up (each imports only those above it): `vocabulary` (the shared names),
`fields` (single-field readers), `body` (JSON reading), `messages` (codes and answer bodies),
`model` (the parsed requests), `events` (a request as an `Event`), `request` (the validator and
the pipeline's `parse`). This package re-exports the names the gateway and the formats registry
use.
"""

from __future__ import annotations

from schemas.octeth.messages import OctethErrors
from schemas.octeth.model import Conversion, Credential, OctethRequest, PropertiesRequest
from schemas.octeth.request import (
    parse,
    partition_key,
    read_credential,
    validate_event,
    validate_properties_request,
)
from schemas.octeth.vocabulary import MINTED_UUID_HEADER

__all__ = [
    "MINTED_UUID_HEADER",
    "Conversion",
    "Credential",
    "OctethErrors",
    "OctethRequest",
    "PropertiesRequest",
    "parse",
    "partition_key",
    "read_credential",
    "validate_event",
    "validate_properties_request",
]
