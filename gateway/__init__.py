"""The gateway: a thin aiohttp app that captures vendor beacons and publishes raw hits to Kafka.

It parses nothing it need not, answers each protocol as the protocol demands (beacons: always
200, fast) and publishes a versioned `schemas.rawhit.RawHit` to `hits.raw`.
"""
