"""Typed settings shared by every service.

Each service defines one subclass (``ScorerSettings``, ``ApiSettings``...) and loads it once at
start-up with :func:`load_settings`; nothing else in the code base reads the environment. Values come
from ``COCKPIT_*`` environment variables or a ``.env`` file; a wrong or missing value stops the
process with a message naming the variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
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
    telemetry_topic: str = Field(default="telemetry.v1", min_length=1)
    dead_letter_topic: str = Field(default="telemetry.dlq.v1", min_length=1)
    command_topic: str = Field(default="scorer.commands.v1", min_length=1)
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
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

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


S = TypeVar("S", bound=BaseSettings)


def describe_validation_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    """Turn a pydantic error into lines that name the environment variable and what is wrong."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    lines = [f"Invalid settings for {cls.__name__}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
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
