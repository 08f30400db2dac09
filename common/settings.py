"""Typed settings shared by every service.

Each service defines one subclass (``ScorerSettings``, ``ApiSettings``...) and loads it once at
start-up with :func:`load_settings`; nothing else in the code base reads the environment. Values come
from ``COCKPIT_*`` environment variables or a ``.env`` file; a wrong or missing value stops the
process with a message naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "COCKPIT_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(SystemExit):
    """Raised when settings are invalid; uncaught, it prints the message and exits with status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


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
        default="127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    telemetry_topic: str = Field(default="telemetry.v1", min_length=1)
    dead_letter_topic: str = Field(default="telemetry.dlq.v1", min_length=1)
    command_topic: str = Field(default="scorer.commands.v1", min_length=1)
    database_url: str = Field(
        default="postgresql://cockpit_writer:cockpit_writer@127.0.0.1:5433/cockpit",
        description="libpq URL of the cockpit database.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"


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
