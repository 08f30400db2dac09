"""Alert rules and monitoring configuration: promtool checks and unit-tests the rules (a test case per alert),
amtool checks Alertmanager's file, the local Prometheus template matches the compose configuration.

promtool and amtool come with Debian's prometheus / prometheus-alertmanager packages, which
deploy/local/setup.sh installs: the tests that need them are skipped (saying so) only where they are absent.
"""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/prometheus/alerts.yml"
RULE_TESTS = ROOT / "deploy/prometheus/tests/alerts_test.yml"
COMPOSE_PROMETHEUS = ROOT / "deploy/prometheus/prometheus.yml"
LOCAL_TEMPLATE = ROOT / "deploy/prometheus/local.yml"
ALERTMANAGER = ROOT / "deploy/alertmanager/alertmanager.yml"
RUNBOOKS = {"sweep-failed.md", "cockpit-unreachable.md", "ci-red-risk-score.md"}
COCKPIT_JOBS = {"cockpit-api", "cockpit-scorer", "cockpit-producer"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package; deploy/local/setup.sh installs it)")
    return path


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules() -> None:
    done = _run(_tool("promtool"), "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in done.stdout


def test_promtool_test_rules() -> None:
    done = _run(_tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_firing_and_a_silent_test_case() -> None:
    """A rule without a test that makes it fire could have a typo in a metric name and never fire."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["../alerts.yml"]
    fires: set[str] = set()
    silent: set[str] = set()
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            (fires if case["exp_alerts"] else silent).add(case["alertname"])
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert not set(names) - fires, f"alerts no test makes fire: {sorted(set(names) - fires)}"
    assert not set(names) - silent, f"alerts never shown silent: {sorted(set(names) - silent)}"
    unknown = (fires | silent) - set(names)
    assert not unknown, f"tests of unknown alerts: {sorted(unknown)}"


def test_every_alert_says_how_bad_and_what_happened() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"page", "warn"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        runbook = rule["annotations"].get("runbook_url")
        if runbook is not None:
            folder, name = runbook.rsplit("/", 1)
            assert (folder, name in RUNBOOKS) == ("docs/runbooks", True), rule["alert"]


def test_fleet_gauges_read_by_every_api_replica_are_never_summed() -> None:
    """Each API replica exports the same database-wide gauges: sum() would multiply them by the replicas."""
    gauges = "cockpit_fleet_|cockpit_last_sweep|cockpit_site_data"
    fleet = re.compile(rf"sum\s*(by\s*\([^)]*\)\s*)?\(\s*({gauges})")
    for rule in _rules():
        assert not fleet.search(rule["expr"]), f"{rule['alert']} sums a per-replica fleet gauge"


def test_local_template_has_the_compose_jobs_and_rules_and_no_fixed_port() -> None:
    compose = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    local_text = LOCAL_TEMPLATE.read_text()
    local = yaml.safe_load(local_text)
    compose_jobs = {job["job_name"] for job in compose["scrape_configs"]}
    local_jobs = {job["job_name"] for job in local["scrape_configs"]}
    assert compose_jobs >= COCKPIT_JOBS and local_jobs >= COCKPIT_JOBS
    assert compose_jobs <= local_jobs, f"jobs of prometheus.yml missing locally: {compose_jobs - local_jobs}"
    assert [Path(f).name for f in compose["rule_files"]] == ["alerts.yml"]
    assert local["rule_files"] == ["${COCKPIT_ALERT_RULES}"]
    for job in local["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            assert re.fullmatch(r"127\.0\.0\.1:\$\{COCKPIT_(?:[A-Z_]+_)?PORT\}", target), target
    placeholders = {m["braced"] for m in string.Template.pattern.finditer(local_text) if m["braced"]}
    env_sh = (ROOT / "deploy/local/env.sh").read_text() + (ROOT / "deploy/local/monitoring.sh").read_text()
    for name in placeholders:
        assert f"export {name}=" in env_sh, f"{name} is not set by env.sh or monitoring.sh"


def test_local_template_renders_to_a_valid_configuration(tmp_path: Path) -> None:
    values = {
        "COCKPIT_PORT": "18000",
        "COCKPIT_WEB_PORT": "16066",
        "COCKPIT_PRODUCER_METRICS_PORT": "19308",
        "COCKPIT_PROMETHEUS_PORT": "19099",
        "COCKPIT_ALERTMANAGER_PORT": "19094",
        "COCKPIT_PROMETHEUS_SCRAPE_INTERVAL": "15s",
        "COCKPIT_PROMETHEUS_EVALUATION_INTERVAL": "15s",
        "COCKPIT_ALERT_RULES": str(RULES),
    }
    rendered = string.Template(LOCAL_TEMPLATE.read_text()).substitute(values)
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"]
        for job in yaml.safe_load(rendered)["scrape_configs"]
    }
    assert targets["cockpit-api"] == ["127.0.0.1:18000"]
    assert targets["cockpit-scorer"] == ["127.0.0.1:16066"]
    assert targets["cockpit-producer"] == ["127.0.0.1:19308"]
    (tmp_path / "prometheus.yml").write_text(rendered)
    done = _run(_tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_alertmanager_configuration_is_valid_and_inhibits_only_known_alerts() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    names = {rule["alert"] for rule in _rules()}
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            value = re.fullmatch(r'alertname=~?"([^"]+)"', matcher)
            assert value is not None, matcher
            assert set(value.group(1).split("|")) <= names, matcher
    done = _run(_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_configuration_is_valid_with_the_rules_where_compose_mounts_them(tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    assert compose["rule_files"] == ["/etc/prometheus/alerts.yml"]
    compose["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(compose))
    done = _run(_tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_configuration_names_jobs_after_the_pods_app_label(tmp_path: Path) -> None:
    """Pods are discovered by annotation; their `app` label becomes the job the rules select on."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/kubernetes.yml").read_text())
    relabels = config["scrape_configs"][0]["relabel_configs"]
    assert {"source_labels": ["__meta_kubernetes_pod_label_app"], "target_label": "job"} in relabels
    apps = set()
    for name in ("scorer.yaml", "api.yaml"):
        for doc in yaml.safe_load_all((ROOT / "deploy/k8s" / name).read_text()):
            if doc and doc.get("kind") == "Deployment":
                template = doc["spec"]["template"]["metadata"]
                assert template["annotations"]["prometheus.io/scrape"] == "true", name
                apps.add(template["labels"]["app"])
    assert apps == {"cockpit-scorer", "cockpit-api"}
    # Debian's promtool is built without Kubernetes discovery: the rest (relabelling, rules) is checked
    assert config["scrape_configs"][0].pop("kubernetes_sd_configs")[0]["role"] == "pod"
    config["scrape_configs"][0]["static_configs"] = [{"targets": ["pod:6066"]}]
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = _run(_tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
