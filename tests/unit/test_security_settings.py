"""TLS/SASL and credential settings: validation, masking, and how each client receives them."""

from __future__ import annotations

import io
import logging
import ssl
from pathlib import Path
from typing import Any

import orjson
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from deploy import clickhouse_client, startup
from deploy.kafka_security import client_options
from pipeline.kafka_auth import broker_credentials
from schemas.settings import Settings, SettingsError, load_settings

SASL = {"kafka_sasl_username": "svc", "kafka_sasl_password": "s3cr3t-sasl"}


def test_repr_masks_every_secret_that_is_set() -> None:
    secrets = {
        "clickhouse_password": "pw-1",
        "admin_key": "adm-2",
        "identity_secret": "id-3",
        "kafka_sasl_password": "sasl-4",
        "kafka_ssl_key_password": "key-5",
    }
    settings = Settings(**secrets)  # type: ignore[arg-type]
    text = repr(settings)
    for secret in secrets.values():
        assert secret not in text
    assert "clickhouse_password=***" in text and "kafka_sasl_username=''" in text
    assert set(settings.secrets()) == set(secrets.values())
    assert "admin_key=''" in repr(Settings())  # unset: shown as empty, nothing to hide


def test_security_settings_are_validated_together(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "HITS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "HITS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-1",
                "HITS_KAFKA_SSL_CAFILE": str(tmp_path / "missing.pem"),
                "HITS_KAFKA_SSL_CERTFILE": str(tmp_path),
                "HITS_LOG_FORMAT": "xml",
                "HITS_CLICKHOUSE_VERIFY": "maybe",
            }
        )
    message = str(caught.value)
    for expected in (
        "HITS_KAFKA_SASL_MECHANISM='SCRAM-SHA-1'",
        "missing.pem'",
        "HITS_KAFKA_SASL_USERNAME and HITS_KAFKA_SASL_PASSWORD",
        "HITS_KAFKA_SSL_CERTFILE and HITS_KAFKA_SSL_KEYFILE",
        "HITS_LOG_FORMAT='xml'",
        "HITS_CLICKHOUSE_VERIFY='maybe'",
    ):
        assert expected in message
    good = load_settings(
        {
            "HITS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "HITS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "HITS_KAFKA_SASL_USERNAME": "svc",
            "HITS_KAFKA_SASL_PASSWORD": "pw",
            "HITS_CLICKHOUSE_VERIFY": "false",
        }
    )
    assert good.kafka_sasl_mechanism == "SCRAM-SHA-512" and good.clickhouse_verify is False


@pytest.mark.parametrize(
    ("protocol", "tls", "sasl"),
    [
        ("PLAINTEXT", False, False),
        ("SSL", True, False),
        ("SASL_PLAINTEXT", False, True),
        ("SASL_SSL", True, True),
    ],
)
def test_aiokafka_and_faust_get_the_same_security(protocol: str, tls: bool, sasl: bool) -> None:
    settings = Settings(
        kafka_security_protocol=protocol, kafka_sasl_mechanism="SCRAM-SHA-256", **SASL
    )
    ours = client_options(settings)
    faust = dict(credentials_to_aiokafka_auth(broker_credentials(settings)))
    for options in (ours, faust):
        assert options["security_protocol"] == protocol
        assert isinstance(options.get("ssl_context"), ssl.SSLContext) == tls
        assert ("sasl_mechanism" in options) == sasl
        if sasl:
            assert options["sasl_mechanism"] == "SCRAM-SHA-256"
            assert options["sasl_plain_username"] == "svc"
            assert options["sasl_plain_password"] == "s3cr3t-sasl"
    if tls:
        context = ours["ssl_context"]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_clickhouse_tls_options_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(
        clickhouse_client.clickhouse_connect, "get_client", lambda **kw: seen.append(kw)
    )
    common = {"clickhouse_user": "hitstream_sink", "clickhouse_password": "pw"}
    clickhouse_client.connect(
        Settings(clickhouse_url="https://ch.internal", clickhouse_verify=False, **common)
    )
    clickhouse_client.connect(Settings(clickhouse_url="http://ch.internal:8123", **common))
    tls, plain = seen
    assert (tls["secure"], tls["port"], tls["verify"], tls["ca_cert"]) == (True, 8443, False, None)
    assert (tls["username"], tls["password"]) == ("hitstream_sink", "pw")
    assert plain["secure"] is False and "verify" not in plain


@pytest.mark.parametrize(
    ("url", "setting", "compress"),
    [
        ("http://127.0.0.1:8123", "auto", False),  # the local chDB server: no use, CPU both ends
        ("http://localhost:8123", "auto", False),
        ("http://[::1]:8123", "auto", False),
        ("https://ch.internal", "auto", "lz4"),
        ("http://10.0.0.5:8123", "auto", "lz4"),
        ("http://127.0.0.1:8123", "zstd", "zstd"),
        ("https://ch.internal", "none", False),
    ],
)
def test_clickhouse_compression_is_off_on_this_host_by_default(
    monkeypatch: pytest.MonkeyPatch, url: str, setting: str, compress: str | bool
) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(
        clickhouse_client.clickhouse_connect, "get_client", lambda **kw: seen.append(kw)
    )
    clickhouse_client.connect(Settings(clickhouse_url=url, clickhouse_compression=setting))
    assert seen[0]["compress"] == compress


def test_clickhouse_compression_must_be_known() -> None:
    with pytest.raises(SettingsError, match=r"HITS_CLICKHOUSE_COMPRESSION.*must be auto"):
        load_settings({"HITS_CLICKHOUSE_COMPRESSION": "gzip"})


def log_lines(settings: Settings, emit: Any) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(startup.formatter(settings))
    logger = logging.getLogger("test.startup")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_json_lines_carry_location_and_never_a_secret_or_email() -> None:
    settings = Settings(admin_key='adm"in\\key', clickhouse_password="chpw-123")

    def emit(logger: logging.Logger) -> None:
        logger.warning(
            "hit %s from bob.smith@example.co.uk", "h1", extra={"topic": "t", "partition": 2,
            "offset": 9, "hit_id": "h1"}
        )  # fmt: skip
        logger.error("bad login %r with chpw-123 and %s", settings, settings.admin_key)
        try:
            raise ValueError("key " + settings.admin_key)
        except ValueError:
            logger.exception("boom")

    lines = log_lines(settings, emit)
    records = [orjson.loads(line) for line in lines]
    assert len(records) == 3
    first = records[0]
    assert {"time", "level", "logger", "message"} <= set(first)
    assert (first["topic"], first["partition"], first["offset"], first["hit_id"]) == (
        "t",
        2,
        9,
        "h1",
    )
    assert first["message"] == "hit h1 from ***"
    for line in lines:
        assert "chpw-123" not in line and "example.co.uk" not in line
        assert 'adm"in' not in line and 'adm\\"in' not in line, line
    assert "ValueError" in records[2]["exc_info"]


def test_text_format_is_redacted_too() -> None:
    settings = Settings(log_format="text", identity_secret="idsecret")
    (line,) = log_lines(settings, lambda log: log.info("a@b.co idsecret"))
    assert line.endswith("INFO test.startup *** ***")


def test_debug_does_not_open_kafka_payload_logs() -> None:
    config = startup.logging_config(Settings(log_level="DEBUG"))
    assert config["root"]["level"] == "DEBUG"
    assert all(config["loggers"][name]["level"] == "INFO" for name in ("aiokafka", "faust"))
    assert (
        startup.logging_config(Settings(log_level="ERROR"))["loggers"]["faust"]["level"] == "ERROR"
    )


def test_compose_gives_each_process_its_own_clickhouse_user() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    services = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    users = (root / "deploy" / "clickhouse-server" / "users.d" / "hitstream.xml").read_text()
    expected = {
        "gateway-1": "hitstream_gateway",
        "worker-1": "hitstream_sink",
        "results-web": "analyst",
        "init": "hitstream_admin",
    }
    for service, user in expected.items():
        env = services[service]["environment"]
        assert env["HITS_CLICKHOUSE_USER"] == user, service
        assert env["HITS_CLICKHOUSE_PASSWORD"].startswith("${"), service  # from the host
        assert f"<{user}>" in users
    gateway_grants = users.split("<hitstream_gateway>")[1].split("</hitstream_gateway>")[0]
    assert "INSERT ON hitstream.event_definitions" in gateway_grants
    assert "ON hitstream.*" not in gateway_grants  # named tables only


def test_every_kafka_client_gets_the_security_options() -> None:
    """Each AIOKafka* client in the packages passes `**client_options(...)` (a static check)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    clients = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
    calls = []
    for package in ("gateway", "pipeline", "deploy", "hitstream", "results"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") in clients:
                    spread = [k.value for k in node.keywords if k.arg is None]
                    secured = any(
                        isinstance(v, ast.Call) and getattr(v.func, "id", "") == "client_options"
                        for v in spread
                    )
                    calls.append((f"{path.relative_to(root)}:{node.lineno}", secured))
    assert len(calls) >= 5, calls  # publisher, topics, replay, supersede (x3)
    assert [where for where, secured in calls if not secured] == []
