"""The event contract shared by gateway and pipeline.

Depends only on the standard library and orjson. Holds the `RawHit` envelope, the canonical
`Event`, the dead-letter record, the topic specs, the one `Settings` object and the pure
parsers of the three wire formats. `gateway/` and `pipeline/` both import it and never each other.
"""
