"""Strict settings: unknown COCKPIT_* names refused with the closest known one, one registry setting,
and COCKPIT_ENVIRONMENT refusing the local stack's credentials and placeholder keys outside local/test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from common.settings import (
    SCRIPT_VARIABLES,
    SETTINGS_CLASSES,
    CommonSettings,
    RegistrySettings,
    SettingsError,
    known_variables,
    load_settings,
    secret_problem,
    unknown_variable_messages,
)

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]
GOOD_KEY = "k3y-0f-at-least-16-chars"
GOOD_URL = "postgresql://cockpit_writer:S3cret-from-the-vault@db.internal:5432/cockpit"
GOOD_READER = "postgresql://cockpit_reader:An0ther-s3cret@db.internal:5432/cockpit"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No COCKPIT_* variable of the caller's shell and no .env file leak into these tests."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("COCKPIT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _service_classes() -> list[type[BaseSettings]]:
    from importlib import import_module

    return [getattr(import_module(p.split(":")[0]), p.split(":")[1]) for p in SETTINGS_CLASSES]


# ------------------------------------------------------------------------------------ unknown names
def test_misspelt_variable_is_refused_with_the_closest_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_REGISTY_DIR", "/srv/registry")
    with pytest.raises(SettingsError) as info:
        load_settings(RegistrySettings)
    assert "COCKPIT_REGISTY_DIR is not a setting; did you mean COCKPIT_REGISTRY_DIR?" in str(info.value)
    assert info.value.code != 0  # SystemExit with the message: exit status 1


@pytest.mark.parametrize("path", SETTINGS_CLASSES)
def test_every_settings_class_refuses_an_unknown_name(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import import_module

    module, name = path.split(":")
    cls = getattr(import_module(module), name)
    monkeypatch.setenv("COCKPIT_KAFKA_BOOTSTRAP_SERVER", "kafka:9092")  # missing final S
    with pytest.raises(SettingsError, match="did you mean COCKPIT_KAFKA_BOOTSTRAP_SERVERS"):
        cls()


def test_names_are_case_insensitive_like_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("cockpit_log_level", "WARNING")
    assert CommonSettings().log_level == "WARNING"
    monkeypatch.setenv("cockpit_log_levl", "WARNING")
    expected = "COCKPIT_LOG_LEVL is not a setting; did you mean COCKPIT_LOG_LEVEL"
    with pytest.raises(SettingsError, match=expected):
        CommonSettings()


def test_renamed_variable_names_its_successor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_MODEL_REGISTRY", "/srv/registry")
    with pytest.raises(SettingsError, match="COCKPIT_MODEL_REGISTRY is not a setting any more; it is now "):
        load_settings(RegistrySettings)


def test_unrelated_name_gets_no_wild_guess() -> None:
    assert unknown_variable_messages(["COCKPIT_XYZZY"], known_variables()) == [
        "COCKPIT_XYZZY is not a setting; no setting has a similar name"
    ]
    assert unknown_variable_messages(["PATH", "KAFKA_HOME"], known_variables()) == []


def test_dotenv_file_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COCKPIT_LOG_LEVEL=INFO\nCOCKPIT_STALE_AFTER_MINUTS=5\n")
    with pytest.raises(SettingsError, match="did you mean COCKPIT_STALE_AFTER_MINUTES"):
        load_settings(CommonSettings)


def test_unreadable_dotenv_file_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"COCKPIT_LOG_LEVEL=INFO\n\xff\xfe\x00garbage=\x01\n")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings)
    assert f"{tmp_path / '.env'}: cannot read this .env file" in str(info.value)
    assert "UnicodeDecodeError" in str(info.value)


@pytest.mark.parametrize(
    "name,value",
    [
        ("COCKPIT_SIM_SPEED", "600"),  # run.sh
        ("COCKPIT_PORT", "8000"),  # API and CLI
        ("COCKPIT_WEB_PORT", "6066"),  # scorer
        ("COCKPIT_PRODUCER_METRICS_PORT", "9308"),  # run.sh
        ("COCKPIT_KAFKA_CONTROLLER_PORT", "9093"),  # stack.sh
        ("COCKPIT_STACK_DIR", "/tmp/stack"),  # stack.sh
        ("COCKPIT_API_KEY", GOOD_KEY),  # API and CLI
        ("COCKPIT_REGISTRY_DIR", "/registry"),  # scorer and models
        ("COCKPIT_METRICS_PORT", "9308"),  # producer
        ("COCKPIT_API_URL", "http://api:8000"),  # CLI
        ("COCKPIT_READER_DATABASE_URL", GOOD_READER),  # API
    ],
)
def test_a_variable_of_another_part_of_the_cockpit_is_accepted_by_every_service(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One .env / ConfigMap serves every service: the scorer must not refuse the API's variables."""
    monkeypatch.setenv(name, value)
    for cls in _service_classes():
        cls()


def test_known_names_come_from_every_settings_class_and_the_scripts() -> None:
    known = known_variables()
    for cls in _service_classes():
        prefix = cls.model_config["env_prefix"]
        for field in cls.model_fields:
            assert f"{prefix}{field}".upper() in known, (cls.__name__, field)
    assert set(SCRIPT_VARIABLES) <= set(known)
    # the API reads the registry too (GET /v1/models, issue 12 lineage)
    assert known["COCKPIT_REGISTRY_DIR"].used_by == ("RegistrySettings", "ScorerSettings", "ApiSettings")
    assert {"ApiSettings", "ClientSettings"} <= set(known["COCKPIT_PORT"].used_by)


#: Files that read COCKPIT_* variables outside the settings classes (scripts, CI, manifests, tests, bench).
SCANNED = [
    "Makefile",
    "docker-compose.yml",
    ".gitlab-ci.yml",
    "deploy/**/*.sh",
    "deploy/**/*.yaml",
    "deploy/**/*.yml",
    "deploy/**/*.conf",
    "deploy/**/*.py",
    "tests/**/*.py",
    "bench/**/*.py",
    "api/**/*.py",
    "scorer/**/*.py",
    "producers/**/*.py",
    "models/**/*.py",
    "common/**/*.py",
    "simulator/**/*.py",
]
#: Names written on purpose to prove they are refused.
DELIBERATELY_WRONG = {
    "COCKPIT_REGISTY_DIR",
    "COCKPIT_KAFKA_BOOTSTRAP_SERVER",
    "COCKPIT_LOG_LEVL",
    "COCKPIT_STALE_AFTER_MINUTS",
    "COCKPIT_XYZZY",
    "COCKPIT_MODEL_REGISTRY",
}


def test_every_cockpit_variable_used_in_the_repository_is_known() -> None:
    """A script reading a new COCKPIT_* variable registers it in SCRIPT_VARIABLES, or services refuse it."""
    anywhere = re.compile(r"\b(COCKPIT_[A-Z0-9_]*[A-Z0-9])\b")
    quoted = re.compile(r"[\"'](COCKPIT_[A-Z0-9_]*[A-Z0-9])[\"'=]")  # Python: strings, not constants
    known = known_variables()
    unknown: dict[str, set[str]] = {}
    for glob in SCANNED:
        for path in ROOT.glob(glob):
            if ".venv" in path.parts or not path.is_file():
                continue
            pattern = quoted if path.suffix == ".py" else anywhere
            for name in pattern.findall(path.read_text(errors="replace")):
                if name not in known and name not in DELIBERATELY_WRONG:
                    unknown.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert not unknown, f"COCKPIT_* names read in the repository but known to no settings class: {unknown}"


# ------------------------------------------------------------------------------------ one registry
def test_models_cli_and_scorer_share_one_registry_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from models.cli import app, resolve_registry
    from scorer.settings import ScorerSettings

    assert resolve_registry(None) == ScorerSettings().registry_dir == Path("registry")
    registry = tmp_path / "shared-registry"
    monkeypatch.setenv("COCKPIT_REGISTRY_DIR", str(registry))
    assert resolve_registry(None) == ScorerSettings().registry_dir == registry
    assert resolve_registry(tmp_path / "explicit") == tmp_path / "explicit"  # --registry wins
    result = CliRunner().invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "[]"
    result = CliRunner().invoke(app, ["rollback"])  # empty registry: the error names where it looked
    assert result.exit_code == 2
    assert "shared-registry" in result.output.replace("\n", "")


def test_models_cli_reads_no_environment_at_import() -> None:
    source = (ROOT / "models/cli.py").read_text()
    assert "os.environ" not in source and "getenv" not in source


# ------------------------------------------------------------------------------------ environments
def _production(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    monkeypatch.setenv("COCKPIT_ENVIRONMENT", "production")
    for name, value in values.items():
        monkeypatch.setenv(f"COCKPIT_{name.upper()}", value)


def test_production_refuses_the_default_database_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings)
    message = str(info.value)
    assert "COCKPIT_ENVIRONMENT=production refuses default secrets" in message
    assert "COCKPIT_DATABASE_URL: default credentials (cockpit_writer:cockpit_writer)" in message


def test_production_api_names_each_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.settings import ApiSettings

    _production(
        monkeypatch,
        database_url=GOOD_URL,
        reader_database_url="postgresql://cockpit_reader:CHANGE_ME@db.internal/cockpit",
        api_key="CHANGE_ME",
    )
    with pytest.raises(SettingsError) as info:
        load_settings(ApiSettings)
    message = str(info.value)
    assert "COCKPIT_READER_DATABASE_URL: default credentials (cockpit_reader:CHANGE_ME)" in message
    assert "COCKPIT_API_KEY: placeholder key" in message
    assert "COCKPIT_DATABASE_URL" not in message.replace("COCKPIT_READER_DATABASE_URL", "")
    assert GOOD_URL not in message


@pytest.mark.parametrize(
    "key,problem",
    [("", "empty key"), ("   ", "empty key"), ("changeme", "placeholder"), ("short", "key shorter")],
)
def test_production_refuses_empty_placeholder_and_short_keys(
    key: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.settings import ApiSettings

    _production(monkeypatch, database_url=GOOD_URL, reader_database_url=GOOD_READER, api_key=key)
    with pytest.raises(SettingsError, match=f"COCKPIT_API_KEY: {problem}"):
        load_settings(ApiSettings)


def test_production_accepts_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.settings import ApiSettings
    from scorer.settings import ScorerSettings

    _production(monkeypatch, database_url=GOOD_URL, reader_database_url=GOOD_READER, api_key=GOOD_KEY)
    api = load_settings(ApiSettings)
    assert api.environment == "production" and api.api_key is not None
    assert load_settings(ScorerSettings).database_url == GOOD_URL
    monkeypatch.delenv("COCKPIT_API_KEY")  # no key: sweeps disabled, which is a choice, not a default secret
    assert load_settings(ApiSettings).api_key is None


@pytest.mark.parametrize("environment", ["local", "test"])
def test_local_and_test_keep_the_local_stack_defaults(
    environment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.settings import ApiSettings

    monkeypatch.setenv("COCKPIT_ENVIRONMENT", environment)
    monkeypatch.setenv("COCKPIT_API_KEY", "x")
    settings = load_settings(ApiSettings)
    assert settings.database_url.startswith("postgresql://cockpit_writer:cockpit_writer@")


def test_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_ENVIRONMENT", "prod")
    with pytest.raises(SettingsError, match="COCKPIT_ENVIRONMENT: Input should be 'local', 'test'"):
        load_settings(CommonSettings)


@pytest.mark.parametrize(
    "url,problem",
    [
        ("postgresql://cockpit_admin:cockpit_admin@db/cockpit", "default credentials"),
        ("postgresql://app:app@db/cockpit", "default credentials (app:app)"),
        ("postgresql://app:@db/cockpit", "empty password"),
        ("postgresql://app:postgres@db/cockpit", "default credentials"),
        ("host=db user=cockpit_writer password=cockpit_writer dbname=cockpit", "default credentials"),
        ("postgresql://app@db/cockpit", None),  # no password: .pgpass, peer or certificate
        ("postgresql://app:Str0ng-and-l0ng@db/cockpit", None),
        ("host=db user=app password='Str0ng and l0ng' dbname=cockpit", None),
    ],
)
def test_database_url_rules(url: str, problem: str | None) -> None:
    found = secret_problem("database_url", url)
    assert (found is None) if problem is None else (found is not None and problem in found), found


# ------------------------------------------------------------------------------------ the documented list
def test_deployment_doc_lists_every_variable_once_as_the_code_says() -> None:
    from common.settings import TABLE_END, TABLE_START, variables_markdown

    doc = (ROOT / "docs/deployment.md").read_text()
    table = doc[doc.index(TABLE_START) + len(TABLE_START) : doc.index(TABLE_END)].strip()
    regenerate = ".venv/bin/python -m common.settings --write docs/deployment.md"
    assert table == variables_markdown(), f"run: {regenerate}"
    rows = re.findall(r"^\| `(COCKPIT_[A-Z0-9_]+)` \|", table, re.M)
    assert sorted(rows) == sorted(known_variables()) and len(rows) == len(set(rows))


# ------------------------------------------------------------------------------------ Kubernetes settings
def _k8s_environment(secret_values: dict[str, str]) -> dict[str, str]:
    import yaml

    config = yaml.safe_load((ROOT / "deploy/k8s/config.yaml").read_text())["data"]
    return {**config, **secret_values}


@pytest.mark.parametrize("path", [p for p in SETTINGS_CLASSES if "ClientSettings" not in p])
def test_kubernetes_config_with_real_secrets_loads_in_production(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import import_module

    module, name = path.split(":")
    cls = getattr(import_module(module), name)
    secrets = {"COCKPIT_DATABASE_URL": GOOD_URL, "COCKPIT_READER_DATABASE_URL": GOOD_READER}
    secrets["COCKPIT_API_KEY"] = GOOD_KEY
    for key, value in _k8s_environment(secrets).items():
        monkeypatch.setenv(key, value)
    settings = load_settings(cls)
    assert settings.environment == "production"


def test_kubernetes_example_secrets_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The committed example keys (CHANGE_ME) never reach a running pod unnoticed."""
    from api.settings import ApiSettings

    example = (ROOT / "deploy/k8s/secrets.example.env").read_text()
    values = dict(re.findall(r"^(COCKPIT_[A-Z_]+)=(.*)$", example, re.M))
    for key, value in _k8s_environment(values).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings(ApiSettings)
    for variable in ("COCKPIT_DATABASE_URL", "COCKPIT_READER_DATABASE_URL", "COCKPIT_API_KEY"):
        assert f"{variable}:" in str(info.value)
