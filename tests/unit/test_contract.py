"""The contract: settings from the environment, the RawHit envelope, migration files."""

from __future__ import annotations

import orjson
import pytest

from deploy.clickhouse_ddl import statements
from deploy.migrate import migration_files
from schemas import deadletter, rawhit
from schemas import event as event_codec
from schemas.event import Lineage
from schemas.settings import FIELDS, SettingsError, env_name, load_settings, to_environ
from tests.unit.factories import event, letter, raw_hit


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.partitions == 8 and settings.topic("hits.raw") == "hits.raw"


def test_every_bad_variable_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            {
                "HITS_PARTITIONS": "eight",
                "HITS_GATEWAY_PORT": "70000",
                "HITS_CLICKHOUSE_URL": "ftp://x",
                "HITS_NOPE": "1",
            }
        )
    message = str(info.value)
    for name in ("HITS_PARTITIONS", "HITS_GATEWAY_PORT", "HITS_CLICKHOUSE_URL", "HITS_NOPE"):
        assert name in message


def test_settings_round_trip_through_the_environment() -> None:
    settings = load_settings({}, topic_prefix="t1.", partitions=3, publish_timeout_s=0.5)
    assert load_settings(to_environ(settings)) == settings


def test_every_setting_is_documented() -> None:
    assert all(f.metadata.get("doc") for f in FIELDS)
    assert len({env_name(f) for f in FIELDS}) == len(FIELDS)


def test_raw_hit_round_trips_bytes_faithfully() -> None:
    hit = raw_hit(method="POST", query="a=%FF&u=%00", body=b"\x00\xff\xfe")
    assert rawhit.decode(rawhit.encode(hit)) == hit


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "envelope_not_json"),
        (b'"text"', "envelope_not_object"),
        (b'{"v":1,"hit_id":"","kind":"optimizely","received_at_ms":1}', "envelope_hit_id"),
        (b'{"v":1,"hit_id":"h","kind":"acme","received_at_ms":1}', "envelope_kind"),
        (b'{"v":1,"hit_id":"h","kind":"native","received_at_ms":true}', "envelope_received_at"),
        (
            b'{"v":1,"hit_id":"h","kind":"native","received_at_ms":1,"headers":{"a":1}}',
            "envelope_headers",
        ),
        (
            b'{"v":1,"hit_id":"h","kind":"native","received_at_ms":1,"query":5}',
            "envelope_field_type",
        ),
        (
            b'{"v":1,"hit_id":"h","kind":"native","received_at_ms":1,"body_b64":"%%"}',
            "envelope_body",
        ),
    ],
)
def test_bad_envelopes_name_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(rawhit.RawHitError) as info:
        rawhit.decode(data)
    assert info.value.reason == reason


def test_migration_files_are_numbered_and_split_into_statements() -> None:
    files = migration_files()
    assert files and files[0].name.startswith("001_")
    for path in files:
        for statement in statements(path.read_text()):
            assert "IF NOT EXISTS" in statement or statement.upper().startswith(
                ("ALTER", "CREATE OR REPLACE")
            ), f"{path.name}: not idempotent: {statement[:60]}"


def test_dead_letters_and_events_round_trip_with_their_lineage() -> None:
    dead = letter(raw="\u00e9 \x00", lineage=Lineage(partition=3, offset=7, index=2))
    wire = orjson.loads(deadletter.encode(dead))
    assert wire["dlq_id"] == dead.dlq_id and wire["lineage"] == [3, 7, 2]
    assert deadletter.decode(deadletter.encode(dead)) == dead
    item = event(flags=("late",), properties={"a": [1, None]}, fingerprint="f")
    assert event_codec.decode(event_codec.encode(item)) == item
    with pytest.raises(ValueError, match="version"):
        deadletter.decode(orjson.dumps({**wire, "v": 2}))
