"""Deployment files parse, and every metric a dashboard or an alert reads is one the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\b((?:scorer|cockpit)_[a-z_]+)")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_info")


def _exported_names() -> str:
    return "\n".join(p.read_text() for d in ("scorer", "api", "producers") for p in (ROOT / d).rglob("*.py"))


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/cockpit.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    return exprs


def test_every_dashboard_and_alert_metric_is_exported() -> None:
    source = _exported_names()
    missing = {
        name
        for expr in _expressions()
        for name in METRIC.findall(expr)
        if f'"{_base(name)}"' not in source and f'"{name}"' not in source
    }
    assert not missing, f"metrics read by Grafana/Prometheus but exported by no component: {sorted(missing)}"


@pytest.mark.parametrize(
    "path",
    [
        "docker-compose.yml",
        ".gitlab-ci.yml",
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/local.yml",
        *[str(p.relative_to(ROOT)) for p in sorted((ROOT / "deploy/k8s").glob("*.yaml"))],
    ],
)
def test_yaml_files_parse(path: str) -> None:
    documents = list(yaml.safe_load_all((ROOT / path).read_text()))
    assert documents and all(doc is not None for doc in documents)


def test_compose_and_local_stack_pin_the_same_kafka_version() -> None:
    pom = (ROOT / "deploy/local/kafka/pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version is not None
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{version.group(1)}"
    services_py = (ROOT / "tests/services.py").read_text()
    assert f'KAFKA_IMAGE = "apache/kafka:{version.group(1)}"' in services_py


TOPICS_COMMAND = ["python", "-m", "common", "topics"]


def test_compose_creates_topics_before_the_services_that_use_them() -> None:
    """The broker does not auto-create topics: a one-shot `topics` service runs first."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    topics = services["topics"]
    assert topics["command"] == TOPICS_COMMAND
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["environment"]["COCKPIT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    for name in ("scorer", "api", "producer"):
        assert services[name]["depends_on"]["topics"] == {"condition": "service_completed_successfully"}, name


def _init_containers(path: str) -> list[dict[str, object]]:
    documents = list(yaml.safe_load_all((ROOT / path).read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    return list(deployment["spec"]["template"]["spec"].get("initContainers") or [])


@pytest.mark.parametrize("path", ["deploy/k8s/scorer.yaml", "deploy/k8s/api.yaml"])
def test_kubernetes_pods_create_topics_before_starting(path: str) -> None:
    inits = _init_containers(path)
    assert [c["command"] for c in inits] == [TOPICS_COMMAND]
    assert {"configMapRef": {"name": "cockpit-config"}} in inits[0]["envFrom"]  # type: ignore[operator]
    config = yaml.safe_load((ROOT / "deploy/k8s/config.yaml").read_text().split("\n---")[0])["data"]
    assert int(config["COCKPIT_TELEMETRY_PARTITIONS"]) >= 1
    assert int(config["COCKPIT_TOPIC_REPLICATION_FACTOR"]) >= 1


def test_local_run_creates_topics_before_starting_services() -> None:
    run = (ROOT / "deploy/local/run.sh").read_text()
    start = run[run.index("\nstart() {") :]
    topics_at = start.index('timed "Kafka topics"')
    for step in ("start_scorer", "start_api", "start_producer"):
        assert topics_at < start.index(step), step
    makefile = (ROOT / "Makefile").read_text()
    up = makefile[makefile.index("\nup:") : makefile.index("\ndown:")]
    assert "-m common topics" in up


def _local_env(tmp_path: Path, env: dict[str, str], dotenv: str | None = None) -> dict[str, str]:
    """Source a copy of deploy/local/env.sh (its checkout root is tmp_path) and return COCKPIT_* values."""
    import os
    import subprocess

    script_dir = tmp_path / "deploy" / "local"
    script_dir.mkdir(parents=True)
    (script_dir / "env.sh").write_text((ROOT / "deploy/local/env.sh").read_text())
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    out = subprocess.run(
        ["bash", "-c", f"source {script_dir / 'env.sh'} && env"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if line.startswith("COCKPIT_"))


def test_local_ports_drive_every_service_url(tmp_path: Path) -> None:
    """A second checkout on other ports gets URLs to its own Kafka and PostgreSQL, not the first one's."""
    values = _local_env(tmp_path, {"COCKPIT_KAFKA_PORT": "19092", "COCKPIT_PG_PORT": "15433"})
    assert values["COCKPIT_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    assert values["COCKPIT_DATABASE_URL"].endswith("@127.0.0.1:15433/cockpit")
    assert values["COCKPIT_DATABASE_URL"].startswith("postgresql://cockpit_writer:")
    assert values["COCKPIT_READER_DATABASE_URL"].startswith("postgresql://cockpit_reader:")
    assert values["COCKPIT_READER_DATABASE_URL"].endswith("@127.0.0.1:15433/cockpit")
    defaults = _local_env(tmp_path / "other", {})
    assert (defaults["COCKPIT_PORT"], defaults["COCKPIT_WEB_PORT"]) == ("8000", "6066")
    assert defaults["COCKPIT_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"


def test_explicit_urls_win_over_derived_ones(tmp_path: Path) -> None:
    values = _local_env(
        tmp_path,
        {"COCKPIT_PG_PORT": "15433", "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092"},
        dotenv="COCKPIT_DATABASE_URL=postgresql://me@db.example/cockpit\n",
    )
    assert values["COCKPIT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka.example:9092"
    assert "COCKPIT_DATABASE_URL" not in values  # left to .env, read by the settings
    assert values["COCKPIT_READER_DATABASE_URL"].endswith(":15433/cockpit")
