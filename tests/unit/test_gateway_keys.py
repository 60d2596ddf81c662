"""Gateway keying for hit-id dedup: a keyless hit is keyed by its hit id, so copies meet."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from schemas import rawhit
from schemas.settings import Settings
from tests.unit.recording_publisher import RecordingPublisher


async def test_a_hit_without_visitor_is_keyed_by_its_hit_id(tmp_path: Path) -> None:
    """Without a key the partitioner would pick a random partition for each copy."""
    publisher = RecordingPublisher()
    app = create_app(Settings(spool_dir=str(tmp_path / "spool")), publisher)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/event?a=1&n=no_visitor")).status == 200
        assert (await client.get("/event?a=1&u=v&n=e")).status == 200
    [(_, value, key), (_, _, keyed)] = publisher.sent
    assert key == rawhit.decode(value).hit_id.encode()
    assert keyed == b"1:v"
