"""The production shape (docker-compose.yml, Dockerfile, Prometheus, Grafana) checked statically.

Nothing here runs Docker: the files are parsed and compared with the code they configure (the
`HITS_*` settings, the metric names the gateway, the worker and Faust's sensor really export).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from schemas.settings import FIELDS, env_name

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "hitstream.json"
HITSTREAM_SERVICES = ("init", "gateway-1", "gateway-2", "worker-1", "worker-2", "results-web")
LONG_RUNNING = (
    "kafka",
    "clickhouse",
    "gateway-1",
    "gateway-2",
    "nginx",
    "worker-1",
    "worker-2",
    "results-web",
    "prometheus",
    "grafana",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def exported_names(metrics: list[MetricWrapperBase]) -> set[str]:
    """The sample names Prometheus scrapes for these metrics (`_total`, `_bucket`, ...)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    names = set()
    for metric in metrics:
        for family in metric.describe():
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


@functools.cache
def known_metric_names() -> set[str]:
    from faust.sensors.prometheus import FaustMetrics

    from gateway import metrics as gateway_metrics
    from pipeline import metrics as pipeline_metrics

    ours = [
        value
        for module in (gateway_metrics, pipeline_metrics)
        for value in vars(module).values()
        if isinstance(value, MetricWrapperBase)
    ]
    # Faust's sensor names its metrics after the app id (HITS_APP_ID, "hitstream" in compose).
    faust = [m for m in FaustMetrics.create(CollectorRegistry(), "hitstream") if m is not None]
    return exported_names(ours + faust)


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


# -- compose ----------------------------------------------------------------------------------


def test_compose_has_the_production_services(services: dict[str, dict[str, Any]]) -> None:
    expected = {*LONG_RUNNING, "init", "worker-1-metrics", "worker-2-metrics"}
    assert expected <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:25.8")
    for name in HITSTREAM_SERVICES:
        assert services[name]["image"] == "hitstream:latest", name
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name


def test_two_gateways_behind_nginx_and_two_workers(services: dict[str, dict[str, Any]]) -> None:
    gateways = sorted(n for n, s in services.items() if s.get("command") == ["gateway"])
    workers = sorted(n for n, s in services.items() if s.get("command") == ["worker"])
    assert gateways == ["gateway-1", "gateway-2"]
    assert workers == ["worker-1", "worker-2"]
    nginx_conf = (ROOT / "deploy" / "nginx" / "gateway.conf").read_text()
    upstream = set(re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx_conf, flags=re.M))
    assert upstream == {(g, env_of(services[g])["HITS_GATEWAY_PORT"]) for g in gateways}
    for gateway in gateways:
        assert env_of(services[gateway])["HITS_GATEWAY_HOST"] == "0.0.0.0"


def test_each_replica_has_its_own_volume(services: dict[str, dict[str, Any]]) -> None:
    mounts: dict[str, str] = {}
    for name in ("gateway-1", "gateway-2", "worker-1", "worker-2"):
        (volume,) = services[name]["volumes"]
        source, target = volume.split(":")[:2]
        assert source not in mounts, f"{name} shares volume {source} with {mounts.get(source)}"
        mounts[source] = name
        env = env_of(services[name])
        own_dir = env["HITS_SPOOL_DIR"] if name.startswith("gateway") else env["HITS_DATA_DIR"]
        assert own_dir == target, name


def test_every_hits_variable_in_compose_is_a_setting(compose: dict[str, Any]) -> None:
    known = {env_name(f) for f in FIELDS}
    used = set(re.findall(r"\bHITS_[A-Z0-9_]+", COMPOSE.read_text()))
    for service in compose["services"].values():
        used |= {k for k in env_of(service) if k.startswith("HITS_")}
    assert used, "compose sets no HITS_* variable"
    assert used <= known, f"not hitstream settings: {sorted(used - known)}"


def test_hitstream_services_agree_on_kafka_clickhouse_and_partitions(
    services: dict[str, dict[str, Any]],
) -> None:
    shared = ("HITS_KAFKA_BOOTSTRAP", "HITS_CLICKHOUSE_URL", "HITS_PARTITIONS", "HITS_APP_ID")
    values = {
        name: {k: env_of(services[name]).get(k) for k in shared} for name in HITSTREAM_SERVICES
    }
    assert len({json.dumps(v, sort_keys=True) for v in values.values()}) == 1, values
    assert values["init"]["HITS_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert values["init"]["HITS_CLICKHOUSE_URL"] == "http://clickhouse:8123"


def test_clickhouse_users_by_role(services: dict[str, dict[str, Any]]) -> None:
    users = (ROOT / "deploy" / "clickhouse-server" / "users.d" / "hitstream.xml").read_text()
    for user in ("hitstream_admin", "hitstream_sink", "analyst"):
        assert f"<{user}>" in users
    assert "GRANT SELECT, INSERT ON hitstream.*" in users
    assert "GRANT SELECT ON hitstream.*" in users
    assert "<readonly>2</readonly>" in users
    assert env_of(services["init"])["HITS_CLICKHOUSE_USER"] == "hitstream_admin"
    assert env_of(services["worker-1"])["HITS_CLICKHOUSE_USER"] == "hitstream_sink"
    assert env_of(services["results-web"])["HITS_CLICKHOUSE_USER"] == "analyst"
    mounted = " ".join(services["clickhouse"]["volumes"])
    assert "deploy/clickhouse-server/users.d/hitstream.xml" in mounted


def test_init_runs_once_and_the_rest_wait_for_it(services: dict[str, dict[str, Any]]) -> None:
    assert services["init"]["command"] == ["init"]
    assert services["init"]["restart"] == "no"
    for name in ("kafka", "clickhouse"):
        assert services["init"]["depends_on"][name]["condition"] == "service_healthy"
    for name in ("gateway-1", "gateway-2", "worker-1", "worker-2", "results-web"):
        condition = services[name]["depends_on"]["init"]["condition"]
        assert condition == "service_completed_successfully", name


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_healthchecks(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    check = services[name].get("healthcheck")
    assert check and check.get("test"), f"{name} has no healthcheck"


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


# -- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_is_multistage_non_root_without_dev_extras() -> None:
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM python:3\.11-slim\b", text, flags=re.M)) >= 2
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users, "the image must drop root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"pip install \.(\s|$|&)", text)
    assert "[dev]" not in text
    assert re.search(r"^ENTRYPOINT\s", text, flags=re.M)
    for command in ("gateway", "worker", "migrate", "topics", "init", "results-web"):
        assert re.search(rf"^\s*{re.escape(command)}\)", text, flags=re.M), command
    assert (ROOT / ".dockerignore").exists()


# -- Prometheus and Grafana --------------------------------------------------------------------


def test_prometheus_targets_are_compose_services(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert sorted(targets["gateway"]) == ["gateway-1:8080", "gateway-2:8080"]
    assert sorted(targets["worker"]) == ["worker-1:9066", "worker-2:9066"]
    for job, addresses in targets.items():
        for address in addresses:
            host, port = address.rsplit(":", 1)
            if host == "localhost":
                continue
            assert host in services, f"{job}: {host} is not a compose service"
    for gateway in ("gateway-1", "gateway-2"):
        assert env_of(services[gateway])["HITS_GATEWAY_PORT"] == "8080"
    # A worker's /metrics listens on 127.0.0.1:HITS_WORKER_WEB_PORT; its sidecar, sharing the
    # worker's network, proxies :9066 to it.
    sidecar = (ROOT / "deploy" / "nginx" / "worker-metrics.conf").read_text()
    for worker in ("worker-1", "worker-2"):
        port = env_of(services[worker])["HITS_WORKER_WEB_PORT"]
        assert f"http://127.0.0.1:{port}/metrics" in sidecar
        assert services[f"{worker}-metrics"]["network_mode"] == f"service:{worker}"
    assert "listen 9066;" in sidecar


def test_dashboard_is_valid_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("protocol", "latency", "dead letters", "lag", "sink rows", "flush", "spool"):
        assert topic in titles, topic
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
    datasource = (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    assert yaml.safe_load(datasource)["datasources"][0]["uid"] == "prometheus"


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_dashboard_exprs_use_real_metric_names(expr: str) -> None:
    known = known_metric_names()
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    used = set(re.findall(r"\bhitstream_[a-zA-Z0-9_:]*", without_strings))
    assert used, f"no hitstream metric in {expr!r}"
    assert used <= known, f"unknown metrics {sorted(used - known)} in {expr!r}"


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with nothing set in the environment: the default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


@pytest.mark.parametrize("name", HITSTREAM_SERVICES)
def test_each_hitstream_service_env_is_valid_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    from schemas.settings import load_settings

    env = {k: interpolate(v) for k, v in env_of(services[name]).items()}
    settings = load_settings(env)  # raises SettingsError listing every bad variable
    assert settings.kafka_bootstrap == "kafka:9092"


def test_dockerfile_hits_variables_are_settings() -> None:
    known = {env_name(f) for f in FIELDS}
    used = set(re.findall(r"\bHITS_[A-Z0-9_]+", DOCKERFILE.read_text()))
    assert used <= known, f"not hitstream settings: {sorted(used - known)}"


def test_alert_rules_are_loaded_and_use_real_metric_names() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert any("hitstream_srm_alarm" in expr for expr in exprs)
    known = known_metric_names()
    for expr in exprs:
        used = set(re.findall(r"\bhitstream_[a-zA-Z0-9_:]*", expr))
        assert used and used <= known, f"unknown metrics {sorted(used - known)} in {expr!r}"
