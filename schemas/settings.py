"""One frozen `Settings`, built once per process from `HITS_*` environment variables.

Nothing else in hitstream reads the environment. Every bad variable is reported in one error.
The README's settings table is generated from `FIELDS` (see `hitstream settings --markdown`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.topics import parse_retention


class SettingsError(ValueError):
    """One or more `HITS_*` variables are invalid; the message lists every one of them."""


def _env(doc: str, default: Any, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"doc": doc, "secret": secret})


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MASK = "***"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Settings:
    # Kafka
    kafka_bootstrap: str = _env(
        "Kafka bootstrap servers, comma-separated host:port.", "127.0.0.1:9092"
    )
    topic_prefix: str = _env("Prefix of every topic name (one Kafka cluster, several stacks).", "")
    partitions: int = _env(
        "Partitions of the hits topics (raw, events, rows, dlq: co-partitioned).", 8
    )
    kafka_replication_factor: int = _env(
        "Replication factor of the topics `hitstream topics` creates (3 on a production cluster).",
        1,
    )
    kafka_min_insync_replicas: int = _env(
        "min.insync.replicas of those topics: with acks=all, a write needs this many replicas "
        "(2 with replication 3).",
        1,
    )
    kafka_retention: str = _env(
        "Retention overrides of those topics, e.g. hits.raw=30d,hits.dlq=60d (h or d); "
        "empty: the defaults of the topics table.",
        "",
    )
    kafka_session_timeout_s: float = _env(
        "Consumer-group session timeout; heartbeats and rebalance timeout are derived from it.",
        10.0,
    )
    publish_timeout_s: float = _env(
        "Deadline of one publish to Kafka before the hit is spooled or refused.", 2.0
    )
    producer_linger_ms: int = _env("Producer linger: how long a batch waits for more hits.", 5)
    kafka_security_protocol: str = _env(
        "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (gateway, worker, "
        "admin clients).",
        "PLAINTEXT",
    )
    kafka_ssl_cafile: str = _env(
        "CA bundle (PEM) that verifies the Kafka brokers (SSL, SASL_SSL); empty: the system CAs.",
        "",
    )
    kafka_ssl_certfile: str = _env(
        "Client certificate (PEM) for mutual TLS with Kafka; empty: none.", ""
    )
    kafka_ssl_keyfile: str = _env("Private key (PEM) of the Kafka client certificate.", "")
    kafka_ssl_key_password: str = _env(
        "Password of the Kafka client key, when it is encrypted.", "", secret=True
    )
    kafka_sasl_mechanism: str = _env(
        "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols).", "PLAIN"
    )
    kafka_sasl_username: str = _env("Kafka SASL user name (SASL_* protocols).", "")
    kafka_sasl_password: str = _env("Kafka SASL password (SASL_* protocols).", "", secret=True)
    # ClickHouse
    clickhouse_url: str = _env(
        "ClickHouse HTTP URL (server or the local chDB server), or "
        "chdb:///path for an in-process engine.",
        "http://127.0.0.1:8123",
    )
    clickhouse_database: str = _env("ClickHouse database of the hitstream tables.", "hitstream")
    clickhouse_user: str = _env("ClickHouse user.", "default")
    clickhouse_password: str = _env("ClickHouse password.", "", secret=True)
    clickhouse_verify: bool = _env(
        "Verify the ClickHouse server's TLS certificate (an https:// URL turns TLS on).", True
    )
    clickhouse_ca_file: str = _env(
        "CA bundle (PEM) that verifies the ClickHouse server; empty: the system CAs.", ""
    )
    clickhouse_compression: str = _env(
        "Compression of the data sent to and read from ClickHouse: lz4, zstd, none, or auto "
        "(none for a server on this host, where it only costs CPU on both ends; lz4 otherwise).",
        "auto",
    )
    clickhouse_cluster: str = _env(
        "ClickHouse cluster (remote_servers) to create the tables ON CLUSTER with Replicated "
        "engines; empty: one server, no replication.",
        "",
    )
    clickhouse_distributed: bool = _env(
        "With a cluster: shard the sink's tables over the cluster's shards (<name>_local per "
        "shard behind a Distributed table <name>, sharded by src_partition); off: every node "
        "holds a full replica of every table.",
        False,
    )
    # Gateway
    gateway_host: str = _env("Address the gateway listens on.", "127.0.0.1")
    gateway_port: int = _env("Port the gateway listens on.", 8080)
    gateway_processes: int = _env(
        "Gateway processes sharing the port (SO_REUSEPORT); process i > 0 spools in "
        "<spool dir>/process-<i>.",
        1,
    )
    gateway_process_ports_from: int = _env(
        "0: off. Else gateway process i also listens on this port + i (its own /metrics, /readyz).",
        0,
    )
    max_body_bytes: int = _env(
        "Largest request body the gateway reads; larger ones are "
        "dead-lettered (beacons) or answered 413 (Octeth).",
        65536,
    )
    spool_dir: str = _env(
        "Directory of the gateway's local spool (one per gateway process).", ".local/spool/gateway"
    )
    spool_max_bytes: int = _env(
        "Size of the spool at most; past it beacons are dropped, counted and logged.", 1 << 30
    )
    admin_key: str = _env(
        "Key of the gateway's admin API (/admin/...); empty: the admin API is off (404).",
        "",
        secret=True,
    )
    octeth_rate_per_minute: int = _env(
        "Octeth requests per minute per API key or session id (token bucket); past it 429.", 5000
    )
    octeth_lenient_json: bool = _env(
        "Octeth API: also accept JSON with `//` line comments, as the seed's examples are written "
        "(opt-in; strict JSON answers 400 code 102 otherwise).",
        False,
    )
    # Worker
    app_id: str = _env("Faust app id: consumer group and changelog topic names.", "hitstream")
    data_dir: str = _env("Directory of the worker's RocksDB tables.", ".local/data/worker")
    state_write_buffer_mb: int = _env(
        "RocksDB write buffer (memtable) of each table partition, MiB; two may be held, so a "
        "worker's tables hold at most 2 x this x partitions x 4 tables in memtables.",
        4,
    )
    state_block_cache_mb: int = _env(
        "RocksDB block cache of each table partition, MiB (Faust's default is 2 GiB each).", 16
    )
    worker_web_port: int = _env("Port of the worker's web server (/metrics).", 6066)
    sink_batch_rows: int = _env("Rows per ClickHouse insert at most.", 5000)
    sink_batch_seconds: float = _env("Longest wait before a partial batch is inserted.", 0.5)
    sink_retry_max_s: float = _env("Longest back-off between two ClickHouse insert attempts.", 30.0)
    retry_window_s: int = _env(
        "Window in which an exact repeat of an Optimizely hit (a client retry) is stored once.",
        3600,
    )
    late_horizon_s: int = _env(
        "Events older than this when received are kept and flagged late.", 7 * 24 * 3600
    )
    state_grace_s: int = _env(
        "How far behind a partition's newest hit a hit may arrive (a drained spool) and still "
        "find its retry and first-in-session state: those keys are kept this long past their "
        "horizon, then deleted.",
        12 * 3600,
    )
    registry_refresh_s: float = _env("How often the worker re-reads the experiment registry.", 5.0)
    srm_alpha: float = _env(
        "Live sample-ratio alarm: false-alarm probability per experiment, however often it is "
        "checked (alarm when the sequential Bayes factor reaches 1 / alpha).",
        0.01,
    )
    srm_min_deviation: float = _env(
        "Live sample-ratio alarm: a variation's observed share must also be this far from its "
        "configured share (absolute, 0.01 = 1 percentage point).",
        0.01,
    )
    identity_secret: str = _env(
        "Secret of the HMAC-SHA256 that replaces Octeth emails in identity links; empty: a "
        "documented development secret, with a warning.",
        "",
        secret=True,
    )
    unsafe_sink_without_dedup: bool = _env(
        "UNSAFE, tests only (the chaos suite's control run): the sink inserts without "
        "insert_deduplication_token and ignores its progress marks, so redelivered rows are "
        "stored twice. Never set it in production.",
        False,
    )
    results_correction: str = _env(
        "Results: multiple-testing correction of the p-values across variations x goals: holm "
        "(Holm-Bonferroni, family-wise error), bh (Benjamini-Hochberg, false discovery rate) "
        "or none; `hitstream results --correction` overrides it.",
        "holm",
    )
    results_prior_sd: float = _env(
        "Results: standard deviation of the Bayesian Gaussian prior on the relative lift (0.3 = "
        "lifts of +-30% are plausible); 0: the flat, uninformative prior.",
        0.0,
    )
    results_target_lift: float = _env(
        "Results: the relative lift the power figures aim at (days to detect it at today's "
        "traffic, 0.05 = +5%).",
        0.05,
    )
    results_snapshot_every_s: int = _env(
        "Results: how often the results snapshots (what the pages and `hitstream results` read "
        "unless asked for live figures) are taken again, in seconds; applied by `hitstream "
        "migrate`. One refresh re-reads the per-visitor aggregates: about 15 s of CPU at 10 "
        "million events on 2 cores.",
        300,
    )
    results_key: str = _env(
        "Read key of the results pages and API (`python -m results.web`): sent as the "
        "X-Results-Key header, `Authorization: Bearer`, `?key=` or the cookie the page sets. "
        "Empty: served without a key only when bound to loopback (elsewhere every request "
        "answers 403); set: required everywhere.",
        "",
        secret=True,
    )
    log_level: str = _env("Log level: DEBUG, INFO, WARNING, ERROR.", "INFO")
    log_format: str = _env(
        "Log format of the gateway and the worker: json (one object per line) or text.", "json"
    )

    def topic(self, name: str) -> str:
        """The full name of a hits topic (`hits.raw` -> `<prefix>hits.raw`)."""
        return f"{self.topic_prefix}{name}"

    def __repr__(self) -> str:
        """Every field, secrets masked: a repr may end up in a log or a traceback."""
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown.append(f"{f.name}={MASK if f.metadata['secret'] and value else repr(value)}")
        return f"Settings({', '.join(shown)})"

    def secrets(self) -> tuple[str, ...]:
        """The values of the secret settings that are set (for log redaction)."""
        return tuple(
            value
            for f in dataclasses.fields(self)
            if f.metadata["secret"] and (value := getattr(self, f.name))
        )


ENV_PREFIX = "HITS_"
FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(Settings)


def env_name(f: dataclasses.Field[Any]) -> str:
    return ENV_PREFIX + f.name.upper()


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")


_PARSERS: dict[Any, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": _parse_bool,
}
_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "partitions": lambda v: None if 1 <= v <= 1024 else "must be 1..1024",
    "gateway_port": lambda v: None if 0 <= v <= 65535 else "must be 0..65535",
    "gateway_processes": lambda v: None if 1 <= v <= 256 else "must be 1..256",
    "gateway_process_ports_from": lambda v: None if 0 <= v <= 65535 else "must be 0..65535",
    "worker_web_port": lambda v: None if 0 <= v <= 65535 else "must be 0..65535",
    "publish_timeout_s": lambda v: None if v > 0 else "must be > 0",
    "kafka_session_timeout_s": lambda v: None if v >= 2 else "must be >= 2",
    "sink_batch_rows": lambda v: None if v >= 1 else "must be >= 1",
    "state_write_buffer_mb": lambda v: None if v >= 1 else "must be >= 1",
    "state_block_cache_mb": lambda v: None if v >= 1 else "must be >= 1",
    "sink_batch_seconds": lambda v: None if v > 0 else "must be > 0",
    "registry_refresh_s": lambda v: None if v > 0 else "must be > 0",
    "srm_alpha": lambda v: None if 0 < v < 1 else "must be between 0 and 1",
    "srm_min_deviation": lambda v: None if 0 <= v < 1 else "must be 0 or more and below 1",
    "octeth_rate_per_minute": lambda v: None if v >= 1 else "must be >= 1",
    "spool_max_bytes": lambda v: None if v >= 1 << 20 else "must be >= 1 MiB",
    "max_body_bytes": lambda v: None if v >= 1024 else "must be >= 1024",
    "results_correction": lambda v: (
        None if v in {"holm", "bh", "none"} else "must be holm, bh or none"
    ),
    "results_prior_sd": lambda v: None if v >= 0 else "must be 0 (flat prior) or more",
    "results_target_lift": lambda v: None if v > 0 else "must be more than 0",
    "results_snapshot_every_s": lambda v: None if v >= 10 else "must be 10 or more",
    "log_level": lambda v: (
        None
        if v in {"DEBUG", "INFO", "WARNING", "ERROR"}
        else "must be DEBUG, INFO, WARNING or ERROR"
    ),
    "log_format": lambda v: None if v in {"json", "text"} else "must be json or text",
    "clickhouse_compression": lambda v: (
        None if v in {"auto", "lz4", "zstd", "none"} else "must be auto, lz4, zstd or none"
    ),
    "kafka_security_protocol": lambda v: (
        None if v in KAFKA_SECURITY_PROTOCOLS else "must be " + ", ".join(KAFKA_SECURITY_PROTOCOLS)
    ),
    "kafka_sasl_mechanism": lambda v: (
        None if v in KAFKA_SASL_MECHANISMS else "must be " + ", ".join(KAFKA_SASL_MECHANISMS)
    ),
    "kafka_replication_factor": lambda v: None if v >= 1 else "must be >= 1",
    "kafka_min_insync_replicas": lambda v: None if v >= 1 else "must be >= 1",
    "kafka_retention": lambda v: _problem(parse_retention, v),
    "clickhouse_cluster": lambda v: (
        None if re.fullmatch(r"[A-Za-z0-9_.-]*", v) else "letters, digits, _ . - only"
    ),
    "clickhouse_url": lambda v: (
        None
        if v.startswith(("http://", "https://", "chdb://"))
        else "must start with http://, https:// or chdb://"
    ),
}


def _problem(check: Callable[[str], Any], value: str) -> str | None:
    try:
        check(value)
    except ValueError as exc:
        return str(exc)
    return None


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings from `environ` (default: the process environment) and `overrides`."""
    environ = os.environ if environ is None else environ
    known = {env_name(f) for f in FIELDS}
    errors = [
        f"{name}: unknown variable"
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known
    ]
    values: dict[str, Any] = {}
    for f in FIELDS:
        raw = environ.get(env_name(f))
        if f.name in overrides:
            values[f.name] = overrides[f.name]
        elif raw is not None:
            try:
                values[f.name] = _PARSERS[f.type](raw)
            except ValueError as exc:
                errors.append(f"{env_name(f)}={raw!r}: not a valid {f.type} ({exc})")
                continue
        value = values.get(f.name, f.default)
        problem = _CHECKS.get(f.name, lambda _v: None)(value)
        if problem:
            errors.append(f"{env_name(f)}={value!r}: {problem}")
    errors += _cross_checks({f.name: values.get(f.name, f.default) for f in FIELDS})
    if errors:
        raise SettingsError("invalid hitstream settings:\n  " + "\n  ".join(errors))
    return Settings(**values)


_FILES = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "clickhouse_ca_file")


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    """Problems of settings that only make sense together (never printing a secret)."""
    errors = [
        f"{ENV_PREFIX}{name.upper()}={values[name]!r}: no such file"
        for name in _FILES
        if values[name] and not os.path.isfile(values[name])
    ]
    if str(values["kafka_security_protocol"]).startswith("SASL_") and not (
        values["kafka_sasl_username"] and values["kafka_sasl_password"]
    ):
        errors.append(
            "HITS_KAFKA_SASL_USERNAME and HITS_KAFKA_SASL_PASSWORD: required by "
            f"HITS_KAFKA_SECURITY_PROTOCOL={values['kafka_security_protocol']}"
        )
    if values["kafka_min_insync_replicas"] > values["kafka_replication_factor"]:
        errors.append(
            "HITS_KAFKA_MIN_INSYNC_REPLICAS: must not exceed HITS_KAFKA_REPLICATION_FACTOR "
            "(no write could succeed)"
        )
    if values["clickhouse_distributed"] and not values["clickhouse_cluster"]:
        errors.append("HITS_CLICKHOUSE_DISTRIBUTED: requires HITS_CLICKHOUSE_CLUSTER")
    if bool(values["kafka_ssl_certfile"]) != bool(values["kafka_ssl_keyfile"]):
        errors.append("HITS_KAFKA_SSL_CERTFILE and HITS_KAFKA_SSL_KEYFILE: set both or neither")
    return errors


def to_environ(settings: Settings) -> dict[str, str]:
    """The `HITS_*` variables that rebuild `settings` in another process."""
    return {env_name(f): str(getattr(settings, f.name)) for f in FIELDS}
