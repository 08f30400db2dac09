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
