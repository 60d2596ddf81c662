"""The wire-format registry: one pure parser per `RawHit.kind`, used by gateway and pipeline alike.

A parser takes the hit and the context it may need and returns `Accepted` or `Rejected`; it
never raises on bad input. Adding a vendor means adding one module and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from schemas import monetate, octeth, optimizely
from schemas.outcome import Outcome, Rejected
from schemas.rawhit import RawHit


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseContext:
    """What parsers may consult besides the hit: settings and registries, never I/O."""

    late_horizon_ms: int
    experiments: Mapping[str, frozenset[str]] = field(default_factory=dict)


Parser = Callable[[RawHit, ParseContext], Outcome]


def _optimizely(hit: RawHit, context: ParseContext) -> Outcome:
    return optimizely.parse(
        hit, late_horizon_ms=context.late_horizon_ms, experiments=context.experiments
    )


PARSERS: dict[str, Parser] = {
    "optimizely": _optimizely,
    "monetate": monetate.parse,
    "octeth": octeth.parse,
}


def parse(hit: RawHit, context: ParseContext) -> Outcome:
    parser = PARSERS.get(hit.kind)
    if parser is None:
        return Rejected("unsupported_kind", f"no parser for kind {hit.kind!r} yet")
    return parser(hit, context)
