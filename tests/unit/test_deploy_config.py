"""Deployment files parse, and every metric a dashboard or an alert reads is one the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
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


# ------------------------------------------------------------------ compose: schema, roles, binds, volumes
def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    """What `docker compose config` checks first (no compose plugin here): the vendored official schema."""
    import jsonschema_rs

    schema = json.loads((ROOT / "deploy/docker/compose-spec/compose-spec.json").read_text())
    validator = jsonschema_rs.validator_for(schema)
    errors = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(_compose())
    ]
    assert not errors, errors
    broken = _compose()
    broken["services"]["scorer"]["depends_on"]["kafka"] = {"condition": "started_maybe"}
    assert not validator.is_valid(broken)  # the schema does catch mistakes


def test_compose_migrates_as_the_owner_and_grants_the_service_roles() -> None:
    services = _compose()["services"]
    assert services["migrate"]["environment"]["COCKPIT_DATABASE_URL"].startswith(
        "postgresql://cockpit_admin:"
    )
    for name in ("scorer", "models", "topics", "producer"):
        assert services[name]["environment"]["COCKPIT_DATABASE_URL"].startswith(
            "postgresql://cockpit_writer:"
        )
    assert services["api"]["environment"]["COCKPIT_READER_DATABASE_URL"].startswith(
        "postgresql://cockpit_reader:"
    )
    mounts = services["timescaledb"]["volumes"]
    assert "./deploy/docker/init-roles.sql:/docker-entrypoint-initdb.d/10-roles.sql:ro" in mounts
    init = (ROOT / "deploy/docker/init-roles.sql").read_text()
    for grant in (
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO cockpit_writer",
        "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO cockpit_writer",
        "GRANT SELECT ON TABLES TO cockpit_reader",
    ):
        assert f"ALTER DEFAULT PRIVILEGES FOR ROLE cockpit_admin IN SCHEMA public\n  {grant}" in init


def test_compose_services_listen_where_prometheus_and_healthchecks_look() -> None:
    services = _compose()["services"]
    scorer = services["scorer"]["environment"]
    assert (scorer["COCKPIT_WEB_HOST"], scorer["COCKPIT_WEB_PORT"]) == ("0.0.0.0", "6066")
    assert services["api"]["command"][-4:] == ["--host", "0.0.0.0", "--port", "8000"]
    producer = services["producer"]["environment"]
    assert (producer["COCKPIT_METRICS_ADDR"], producer["COCKPIT_METRICS_PORT"]) == ("0.0.0.0", "9308")
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert {"api:8000", "scorer:6066", "producer:9308"} <= targets
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    alerting = scrape["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alerting == ["alertmanager:9093"] and "alertmanager" in services
    assert services["alertmanager"]["ports"][0].endswith(":9093")


def test_compose_registry_volume_is_written_by_models_and_read_by_the_scorer() -> None:
    services = _compose()["services"]
    assert "registry:/registry" in services["models"]["volumes"]
    assert "registry:/registry:ro" in services["scorer"]["volumes"]
    assert services["scorer"]["depends_on"]["models"] == {"condition": "service_completed_successfully"}
    assert services["models"]["command"][-2:] == ["--registry", "/registry"]


def test_image_ships_the_production_lock_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "deploy/docker/Dockerfile").read_text()
    assert "-r requirements-prod.lock" in dockerfile and "requirements.lock" not in dockerfile.replace(
        "requirements-prod.lock", ""
    )
    assert "USER 10001:10001" in dockerfile
    assert "chown -R 10001:10001 /app/var /registry" in dockerfile
    prod = (ROOT / "requirements-prod.lock").read_text().lower()
    for dev_tool in ("pytest==", "ruff==", "mypy==", "hypothesis=="):
        assert dev_tool not in prod, dev_tool
    ignore = (ROOT / "deploy/docker/Dockerfile.dockerignore").read_text()
    assert "!requirements-prod.lock" in ignore


# ------------------------------------------------------------------ Kubernetes
def _k8s_documents() -> list[dict]:
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((ROOT / "deploy/k8s" / resource).read_text()) if d]
    return docs


def _pod_specs() -> dict[str, dict]:
    specs = {}
    for doc in _k8s_documents():
        if doc["kind"] in ("Deployment", "Job"):
            specs[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]
    return specs


def test_kubernetes_applies_no_secret_and_every_image_is_set_by_kustomize() -> None:
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/kustomization.yaml").read_text())
    assert [i["name"] for i in kustomization["images"]] == ["cockpit"]
    assert not [d for d in _k8s_documents() if d["kind"] == "Secret"]
    applied = yaml.safe_dump(_k8s_documents())  # what `kubectl apply -k` sends (comments are not)
    assert "CHANGE_ME" not in applied
    for name, spec in _pod_specs().items():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert container["image"] == "cockpit", (name, container["name"])


def test_kubernetes_registry_claim_exists_and_a_job_puts_a_model_in_it() -> None:
    claims = {d["metadata"]["name"] for d in _k8s_documents() if d["kind"] == "PersistentVolumeClaim"}
    specs = _pod_specs()
    for spec in specs.values():
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
    models = specs["cockpit-models"]["containers"][0]
    assert models["command"] == ["python", "-m", "models", "ensure-default", "--registry", "/registry"]
    assert {"name": "registry", "mountPath": "/registry"} in models["volumeMounts"]
    scorer = specs["cockpit-scorer"]["containers"][0]
    assert {"name": "registry", "mountPath": "/registry", "readOnly": True} in scorer["volumeMounts"]
    migrate = specs["cockpit-migrate"]["containers"][0]
    assert {"secretRef": {"name": "cockpit-migrate"}} in migrate["envFrom"]


def test_kubernetes_probes_and_scrape_annotations_point_at_listening_ports() -> None:
    config = next(d for d in _k8s_documents() if d["kind"] == "ConfigMap")["data"]
    assert config["COCKPIT_WEB_HOST"] == "0.0.0.0"
    assert config["COCKPIT_ENVIRONMENT"] == "production"
    deployments = {d["metadata"]["name"]: d for d in _k8s_documents() if d["kind"] == "Deployment"}
    expected = {"cockpit-scorer": int(config["COCKPIT_WEB_PORT"]), "cockpit-api": 8000}
    for name, port in expected.items():
        template = deployments[name]["spec"]["template"]
        container = template["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("readinessProbe", "livenessProbe"):
            assert ports[container[probe]["httpGet"]["port"]] == port, (name, probe)
    api = deployments["cockpit-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["command"][-4:] == ["--host", "0.0.0.0", "--port", "8000"]


def test_kubernetes_config_names_only_known_settings() -> None:
    from common.settings import known_variables

    config = next(d for d in _k8s_documents() if d["kind"] == "ConfigMap")["data"]
    example = (ROOT / "deploy/k8s/secrets.example.env").read_text()
    names = set(config) | set(re.findall(r"^#? ?(COCKPIT_[A-Z_]+)=", example, re.M))
    assert {n for n in names if n.startswith("COCKPIT_")} <= set(known_variables())


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl (with its built-in kustomize) not installed")
def test_kustomize_renders_every_container_with_the_real_image() -> None:
    """`kubectl kustomize` (what `kubectl apply -k` sends): no placeholder image, no secret, one claim."""
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy/k8s")], capture_output=True, text=True, check=True
    ).stdout
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/kustomization.yaml").read_text())
    image = "{newName}:{newTag}".format(**kustomization["images"][0])
    images = [
        c["image"]
        for d in documents
        if d["kind"] in ("Deployment", "Job")
        for c in [
            *d["spec"]["template"]["spec"].get("initContainers", []),
            *d["spec"]["template"]["spec"]["containers"],
        ]
    ]
    assert len(images) == 6 and set(images) == {image}
    assert {d["metadata"]["namespace"] for d in documents if d["kind"] != "Namespace"} == {"cockpit"}
    assert not [d for d in documents if d["kind"] == "Secret"] and "CHANGE_ME" not in rendered


# ------------------------------------------------------------------ the native rewrite (pure)
def test_native_rewrite_changes_only_hosts_ports_database_and_paths() -> None:
    from tests.integration.deploy.native import NativeMap, listening_ports

    native = NativeMap(
        hosts={"kafka:9092": ("127.0.0.1", 19092), "timescaledb:5432": ("127.0.0.1", 15433)},
        database="cockpit_native_x",
        ports={6066: 40001, 8000: 40002, 9308: 40003},
        paths={"/app": "/tmp/n/app", "/registry": "/tmp/n/registry"},
    )
    env = native.env(
        {
            "COCKPIT_DATABASE_URL": "postgresql://cockpit_writer:cockpit_writer@timescaledb:5432/cockpit",
            "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "COCKPIT_WEB_HOST": "0.0.0.0",
            "COCKPIT_WEB_PORT": "6066",
            "COCKPIT_REGISTRY_DIR": "/registry",
            "COCKPIT_TELEMETRY_PARTITIONS": "6",
        }
    )
    assert env == {
        "COCKPIT_DATABASE_URL": "postgresql://cockpit_writer:cockpit_writer@127.0.0.1:15433/cockpit_native_x",
        "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "COCKPIT_WEB_HOST": "0.0.0.0",
        "COCKPIT_WEB_PORT": "40001",
        "COCKPIT_REGISTRY_DIR": "/tmp/n/registry",
        "COCKPIT_TELEMETRY_PARTITIONS": "6",
    }
    assert (
        native.command(["python", "-m", "api", "serve", "--host", "0.0.0.0", "--port", "8000"])[-1] == "40002"
    )
    assert native.command(["python", "-m", "models", "ensure-default", "--registry", "/registry"])[-1] == (
        "/tmp/n/registry"
    )
    assert native.address("scorer", 6066) == ("127.0.0.1", 40001)
    assert native.url("http://127.0.0.1:8000/readyz") == "http://127.0.0.1:40002/readyz"
    with pytest.raises(KeyError):  # a port nobody serves is an error, not a silent pass
        native.address("scorer", 6067)
    proc = (
        "  sl  local_address rem_address   st\n"
        "   0: 00000000:9C41 00000000:0000 0A\n"
        "   1: 0100007F:1F90 00000000:0000 0A\n"
        "   2: 0100007F:1F91 0100007F:9C41 01\n"
    )
    assert listening_ports(proc) == {40001: {"0.0.0.0"}, 8080: {"127.0.0.1"}}


def test_native_reader_sees_the_image_as_built() -> None:
    from tests.integration.deploy.native import image_config

    image = image_config()
    assert image.user == "10001:10001" and image.workdir == "/app"
    assert image.writable == ("/app/var", "/registry")
    assert image.env["COCKPIT_REGISTRY_DIR"] == "/registry"
    assert {"common", "scorer", "api", "producers", "models", "simulator", "requirements-prod.lock"} <= set(
        image.copied
    )
