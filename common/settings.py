"""Typed settings shared by every service.

Each service defines one subclass (``ScorerSettings``, ``ApiSettings``...) and loads it once at
start-up with :func:`load_settings`; nothing else in the code base reads the environment. Values come
from ``COCKPIT_*`` environment variables or a ``.env`` file; a wrong or missing value stops the
process with a message naming the variable.

Strictness (docs/deployment.md, "Settings"):

- a ``COCKPIT_*`` variable that no part of the cockpit reads stops the process with the closest known
  name (``COCKPIT_REGISTY_DIR is not a setting; did you mean COCKPIT_REGISTRY_DIR?``). The known names
  are those of every settings class in :data:`SETTINGS_CLASSES` plus the scripts' own variables in
  :data:`SCRIPT_VARIABLES` (one list for the whole cockpit, so a variable meant for another service
  of the same deployment is never refused);
- ``COCKPIT_ENVIRONMENT`` (local | test | staging | production): outside local and test, the default
  database credentials and empty or placeholder keys are refused, naming the variable.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "COCKPIT_"
#: Kafka's rule for topic names (1-249 of these characters; "." and ".." are reserved).
TOPIC_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(SystemExit):
    """Raised when settings are invalid; uncaught, it prints the message and exits with status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


#: Every settings class of the cockpit ("module:Class"); the known COCKPIT_* names are their fields.
SETTINGS_CLASSES: tuple[str, ...] = (
    "common.settings:CommonSettings",
    "common.settings:RegistrySettings",
    "scorer.settings:ScorerSettings",
    "api.settings:ApiSettings",
    "api.settings:ClientSettings",
    "producers.settings:ProducerSettings",
)

#: Variables read by the scripts, the tests and the benchmarks rather than by a settings class. A
#: script that reads a new COCKPIT_* variable adds it here (tests/unit/common/test_settings_strict.py
#: fails otherwise), so the services never refuse it.
SCRIPT_VARIABLES: dict[str, str] = {
    "COCKPIT_WEB_PORT": "deploy/local/run.sh: scorer port of `make run` (also the scorer's setting)",
    "COCKPIT_PRODUCER_METRICS_PORT": "deploy/local/run.sh: /metrics port of the demo producer (9308)",
    "COCKPIT_KAFKA_CONTROLLER_PORT": "deploy/local/stack.sh: Kafka controller port (9093)",
    "COCKPIT_SIM_SPEED": "deploy/local/run.sh: speed-up of the demo simulator (600)",
    "COCKPIT_SCORER_READY_TIMEOUT": "deploy/local/run.sh: seconds `make run` waits for the scorer (180)",
    "COCKPIT_STACK_DIR": "deploy/local/stack.sh: where Kafka and PostgreSQL keep their data (.stack)",
    "COCKPIT_PG_DATA": "deploy/local/stack.sh: PostgreSQL data directory (default under the stack dir)",
    "COCKPIT_PG_OS_USER": "deploy/local/stack.sh: OS user that runs PostgreSQL (postgres)",
    "COCKPIT_KAFKA_HEAP": "deploy/local/stack.sh: JVM heap options of the local broker",
    "COCKPIT_PYTHON": "deploy/local/setup.sh: Python 3.11 interpreter used to build .venv",
    "COCKPIT_PROMETHEUS_PORT": "deploy/local/monitoring.sh: local Prometheus port (9099)",
    "COCKPIT_ALERTMANAGER_PORT": "deploy/local/monitoring.sh: local Alertmanager port (9094)",
    "COCKPIT_MONITORING_DIR": "deploy/local/monitoring.sh: data directory of Prometheus/Alertmanager",
    "COCKPIT_ALERT_RULES": "deploy/local/monitoring.sh: alert rules file (deploy/prometheus/alerts.yml)",
    "COCKPIT_PROMETHEUS_SCRAPE_INTERVAL": "deploy/local/monitoring.sh: scrape interval (15s)",
    "COCKPIT_PROMETHEUS_EVALUATION_INTERVAL": "deploy/local/monitoring.sh: rule evaluation interval (15s)",
    "COCKPIT_ALERTMANAGER_GROUP_WAIT": "deploy/local/monitoring.sh: Alertmanager group wait (30s)",
    "COCKPIT_ALERT_WEBHOOK_URL": "deploy/local/monitoring.sh: webhook that receives every alert",
    "COCKPIT_MONITORING_PYTHON": "deploy/local/monitoring.sh: Python used to render the configuration",
    "COCKPIT_MONITORING_READY_TIMEOUT": "deploy/local/monitoring.sh: seconds to wait for readiness (60)",
    "COCKPIT_TEST_SERVICES": "tests: `local` forces the local stack instead of testcontainers",
    "COCKPIT_KEEP_TEST_DB": "tests: keep the test databases after the run",
    "COCKPIT_TEST_REGISTRY": "tests: a prebuilt model registry for the scorer tests",
    "COCKPIT_CHROMIUM": "tests: path of the Chromium binary for the browser tests",
    "COCKPIT_BENCH_ADMIN_URL": "bench/: admin URL that creates the benchmark databases",
    "COCKPIT_BENCH_LOG_LEVEL": "bench/: log level of the benchmarked scorer",
    "COCKPIT_BENCH_KEEP": "bench/: keep the benchmark's temporary files",
}

#: Former names: refused with the name that replaced them.
RENAMED_VARIABLES: dict[str, str] = {"COCKPIT_MODEL_REGISTRY": "COCKPIT_REGISTRY_DIR"}

Environment = Literal["local", "test", "staging", "production"]
#: Environments where the local stack's well-known credentials are allowed.
RELAXED_ENVIRONMENTS = frozenset({"local", "test"})
#: Passwords and keys that are known to everyone (the local stack's, the manifests' placeholders).
DEFAULT_SECRETS = frozenset(
    {"cockpit_admin", "cockpit_writer", "cockpit_reader", "change_me", "changeme", "password", "postgres"}
)
#: Shortest API key accepted outside local/test.
MIN_KEY_LENGTH = 16

LOCAL_HOST = "127.0.0.1"
DEFAULT_KAFKA_PORT = 9092
DEFAULT_PG_PORT = 5433


def local_database_url(role: str, port: int) -> str:
    """The local stack's ``cockpit`` database for one of its roles (password = role name: local only)."""
    return f"postgresql://{role}:{role}@{LOCAL_HOST}:{port}/cockpit"


class CommonSettings(BaseSettings):
    """Values every service needs: where Kafka and PostgreSQL are, topic names, logging."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    kafka_bootstrap_servers: str = Field(
        default=f"{LOCAL_HOST}:{DEFAULT_KAFKA_PORT}",
        description="Comma-separated host:port list of Kafka brokers.",
    )
    telemetry_topic: str = Field(default="telemetry.v1", min_length=1, description="Telemetry topic.")
    dead_letter_topic: str = Field(
        default="telemetry.dlq.v1", min_length=1, description="Dead letters: invalid events with reasons."
    )
    command_topic: str = Field(
        default="scorer.commands.v1", min_length=1, description="Commands to the scorer (sweep requests)."
    )
    # Topic provisioning (common/topics.py): one source of truth for partitions, retention, sizes.
    telemetry_partitions: int = Field(
        default=6, ge=1, le=10_000, description="Partitions of the telemetry topic when it is created."
    )
    topic_replication_factor: int = Field(
        default=1, ge=1, le=10, description="Replication of every cockpit topic when it is created."
    )
    telemetry_retention_hours: float = Field(
        default=168, gt=0, le=24 * 365 * 10, description="How long Kafka keeps telemetry records."
    )
    dead_letter_retention_days: float = Field(
        default=30, gt=0, le=3650, description="How long Kafka keeps dead letters."
    )
    telemetry_max_message_bytes: int = Field(
        default=1_048_576, ge=1024, le=64 * 1024 * 1024, description="Largest record batch on telemetry."
    )
    dead_letter_max_message_bytes: int = Field(
        default=2_097_152, ge=1024, le=64 * 1024 * 1024, description="Largest record batch on dead letters."
    )
    database_url: str = Field(
        default=local_database_url("cockpit_writer", DEFAULT_PG_PORT),
        description="libpq URL of the cockpit database.",
    )
    # The local stack's ports (deploy/local, `make run`): a checkout running on other ports exports them,
    # and every command typed in that shell then reaches its own Kafka and PostgreSQL. An explicit URL wins.
    kafka_port: int | None = Field(
        default=None, ge=1, le=65535, description="Local broker port; default bootstrap 127.0.0.1:<port>."
    )
    pg_port: int | None = Field(
        default=None, ge=1, le=65535, description="Local PostgreSQL port; default database URLs use it."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG | INFO | WARNING | ERROR."
    )
    log_format: Literal["json", "console"] = Field(
        default="json", description="json (one object per line) or console."
    )
    environment: Environment = Field(
        default="local",
        description="local | test | staging | production; outside local/test default credentials and "
        "empty or placeholder keys are refused.",
    )

    def __init__(self, **values: Any) -> None:
        # Before pydantic reads the environment and .env: a misspelt name must not fall back to a default.
        refuse_unknown_variables(type(self))
        super().__init__(**values)

    @field_validator("telemetry_topic", "dead_letter_topic", "command_topic")
    @classmethod
    def _legal_topic_name(cls, value: str) -> str:
        if not TOPIC_NAME_PATTERN.match(value) or value in {".", ".."}:
            raise ValueError("a Kafka topic name is 1-249 characters of A-Z a-z 0-9 . _ -")
        return value

    @model_validator(mode="after")
    def _distinct_topics(self) -> CommonSettings:
        names = [self.telemetry_topic, self.dead_letter_topic, self.command_topic]
        if len(set(names)) != len(names):
            raise ValueError(
                "telemetry_topic, dead_letter_topic and command_topic must be three different topics"
            )
        return self

    @model_validator(mode="after")
    def _follow_local_ports(self) -> CommonSettings:
        """COCKPIT_KAFKA_PORT / COCKPIT_PG_PORT move the default addresses; an explicit URL always wins."""
        given = self.model_fields_set
        if self.kafka_port is not None and "kafka_bootstrap_servers" not in given:
            self.kafka_bootstrap_servers = f"{LOCAL_HOST}:{self.kafka_port}"
        if self.pg_port is not None and "database_url" not in given:
            self.database_url = local_database_url("cockpit_writer", self.pg_port)
        return self

    @model_validator(mode="after")
    def _no_default_secrets_outside_local(self) -> CommonSettings:
        """Staging and production refuse the local stack's credentials and empty or placeholder keys."""
        if self.environment in RELAXED_ENVIRONMENTS:
            return self
        problems = [
            f"{ENV_PREFIX}{name.upper()}: {problem}"
            for name in type(self).model_fields
            if (problem := secret_problem(name, getattr(self, name))) is not None
        ]
        if problems:
            raise ValueError(
                f"{ENV_PREFIX}ENVIRONMENT={self.environment} refuses default secrets:"
                + "".join(f"\n    - {problem}" for problem in problems)
            )
        return self


class RegistrySettings(CommonSettings):
    """Where the model registry is: one setting for the models CLI (writes) and the scorer (reads)."""

    registry_dir: Path = Field(
        default=Path("registry"),
        description="Model registry directory: `python -m models` writes it, the scorer reads it.",
    )


def _password_problem(url: str) -> str | None:
    """A libpq URL or key=value string whose password is empty, a well-known one or the user's name."""
    if "://" in url:
        try:
            parts = urlsplit(url)
            user, password = parts.username, parts.password
        except ValueError:
            return None  # not a URL we can read; the driver will say what is wrong
        if password is None and parts.netloc.split("@")[0].endswith(":"):
            password = ""
    else:
        pairs = dict(re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url))
        user = pairs.get("user")
        password = pairs["password"].strip("'") if "password" in pairs else None
    if password is None:
        return None  # no password in the URL: peer, certificate or .pgpass authentication
    if not password:
        return "empty password"
    if password.lower() in DEFAULT_SECRETS or (user is not None and password == user):
        return f"default credentials ({user}:{password}) are for local development only"
    return None


def secret_problem(field: str, value: object) -> str | None:
    """Why ``value`` of ``field`` is not acceptable outside local/test (None when it is)."""
    if isinstance(value, SecretStr):
        key = value.get_secret_value().strip()
        if not key:
            return "empty key"
        if key.lower().replace("-", "_") in DEFAULT_SECRETS or "change_me" in key.lower():
            return "placeholder key"
        if len(key) < MIN_KEY_LENGTH:
            return f"key shorter than {MIN_KEY_LENGTH} characters"
        return None
    if field.endswith("database_url") and isinstance(value, str):
        return _password_problem(value)
    return None


# ------------------------------------------------------------------------------ known variable names
@dataclass(frozen=True)
class KnownVariable:
    """One COCKPIT_* name: who reads it, its default and what it does."""

    name: str
    used_by: tuple[str, ...]
    default: str
    description: str


def _import(path: str) -> type[BaseSettings]:
    module, _, name = path.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, BaseSettings)):
        raise TypeError(f"{path} is not a settings class")
    return cls


def settings_variables(cls: type[BaseSettings]) -> dict[str, KnownVariable]:
    """The environment variables of one settings class, from its fields."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    found: dict[str, KnownVariable] = {}
    for field, info in cls.model_fields.items():
        name = f"{prefix}{field}".upper()
        if info.default_factory is not None:
            default = "(computed)"
        elif info.default is None:
            default = "(unset)"
        else:
            default = str(info.default)
        found[name] = KnownVariable(name, (cls.__name__,), default, info.description or "")
    return found


@functools.cache
def known_variables() -> dict[str, KnownVariable]:
    """Every COCKPIT_* name of the cockpit: each settings class's fields, then the scripts' variables."""
    known: dict[str, KnownVariable] = {}
    for path in SETTINGS_CLASSES:
        for name, var in settings_variables(_import(path)).items():
            if name in known:
                prev = known[name]
                users = prev.used_by + tuple(u for u in var.used_by if u not in prev.used_by)
                known[name] = KnownVariable(name, users, prev.default, prev.description or var.description)
            else:
                known[name] = var
    for name, description in SCRIPT_VARIABLES.items():
        if name in known:
            prev = known[name]
            known[name] = KnownVariable(name, (*prev.used_by, "scripts"), prev.default, prev.description)
        else:
            known[name] = KnownVariable(name, ("scripts",), "", description)
    return known


def unknown_variable_messages(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """One message per name that is not a known COCKPIT_* variable, with the closest known one."""
    known_names = sorted(set(known))
    messages = []
    for raw in sorted(set(names)):
        name = raw.upper()
        if not name.startswith(ENV_PREFIX) or name in known_names:
            continue
        if name in RENAMED_VARIABLES:
            messages.append(f"{name} is not a setting any more; it is now {RENAMED_VARIABLES[name]}")
            continue
        close = difflib.get_close_matches(name, known_names, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else "no setting has a similar name"
        messages.append(f"{name} is not a setting; {hint}")
    return messages


def _dotenv_names(cls: type[BaseSettings]) -> list[str]:
    env_file = cls.model_config.get("env_file")
    if not isinstance(env_file, str | Path) or not Path(env_file).is_file():
        return []
    from dotenv import dotenv_values

    try:
        return [str(k) for k in dotenv_values(env_file, encoding="utf-8")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SettingsError(
            f"Invalid settings for {cls.__name__}:\n  - {Path(env_file).resolve()}: cannot read this .env "
            f"file ({type(exc).__name__}: {str(exc)[:200]}); it must be UTF-8 text of KEY=value lines"
        ) from None


def refuse_unknown_variables(cls: type[BaseSettings], environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SettingsError` when the environment or ``.env`` holds an unknown COCKPIT_* name.

    A misspelt variable would otherwise be ignored silently and its default used.
    """
    names = [*(os.environ if environ is None else environ), *_dotenv_names(cls)]
    candidates = [n for n in names if n.upper().startswith(ENV_PREFIX)]
    if not candidates:
        return
    messages = unknown_variable_messages(candidates, known_variables())
    if messages:
        raise SettingsError(
            f"Invalid settings for {cls.__name__}:\n"
            + "\n".join(f"  - {m}" for m in messages)
            + "\n  (every COCKPIT_* variable is listed in docs/deployment.md)"
        )


S = TypeVar("S", bound=BaseSettings)


def describe_validation_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    """Turn a pydantic error into lines that name the environment variable and what is wrong."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    lines = [f"Invalid settings for {cls.__name__}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if not field:  # a rule across several settings: its message names them
            lines.append(f"  - {err['msg'].removeprefix('Value error, ')}")
            continue
        env_name = f"{prefix}{field}".upper()
        given = err.get("input")
        shown = "" if err["type"] == "missing" else f" (got {given!r})"
        lines.append(f"  - {env_name}: {err['msg']}{shown}")
    return "\n".join(lines)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build and validate a settings object; on error raise :class:`SettingsError` naming the variables."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(cls, exc)) from None


# ------------------------------------------------------------------------------ the documented table
#: Who reads a variable, in the words of docs/deployment.md.
READERS = {
    "CommonSettings": "all services",
    "RegistrySettings": "models CLI",
    "ScorerSettings": "scorer",
    "ApiSettings": "API",
    "ClientSettings": "cockpit CLI",
    "ProducerSettings": "producer",
    "scripts": "scripts",
}
TABLE_START = "<!-- settings-table:start (python -m common.settings --write docs/deployment.md) -->"
TABLE_END = "<!-- settings-table:end -->"


def variables_markdown() -> str:
    """Every COCKPIT_* variable once: who reads it, its default, what it does (docs/deployment.md)."""
    rows = ["| variable | read by | default | what |", "|---|---|---|---|"]
    for name, var in sorted(known_variables().items()):
        users = ["all services"] if "CommonSettings" in var.used_by else []
        users += [READERS.get(u, u) for u in var.used_by if u not in ("CommonSettings",)]
        if "all services" in users:
            users = [u for u in users if u in ("all services", "cockpit CLI", "scripts")]
        default = var.default.replace("|", "\\|") or "-"
        what = var.description.replace("|", "\\|")
        rows.append(f"| `{name}` | {', '.join(dict.fromkeys(users))} | `{default}` | {what} |")
    return "\n".join(rows)


def write_table(path: Path) -> bool:
    """Replace the table between the markers of ``path``; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    updated = f"{text[:start]}\n{variables_markdown()}\n{text[end:]}"
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":  # python -m common.settings [--write docs/deployment.md]
    import sys

    if sys.argv[1:2] == ["--write"]:
        changed = write_table(Path(sys.argv[2]))
        print(f"{sys.argv[2]}: {'updated' if changed else 'already up to date'}")
    else:
        print(variables_markdown())
