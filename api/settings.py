"""Settings of the API process and of the CLI client.

Why two classes: the server needs database/Kafka/freshness limits, the CLI only needs where the API is
and the key; both read ``COCKPIT_*`` variables so one ``.env`` serves both.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.settings import (
    DEFAULT_PG_PORT,
    ENV_PREFIX,
    LOCAL_HOST,
    RegistrySettings,
    local_database_url,
    refuse_unknown_variables,
)


class ApiSettings(RegistrySettings):
    """Everything the API reads from the environment (``COCKPIT_*``), loaded once in ``create_app``.

    ``registry_dir`` (COCKPIT_REGISTRY_DIR, from :class:`common.settings.RegistrySettings`): the model
    registry ``GET /v1/models`` reads (the scorer's and the models CLI's setting too).
    """

    reader_database_url: str = Field(
        default=local_database_url("cockpit_reader", DEFAULT_PG_PORT),
        description="libpq URL of the read-only role the API uses (follows COCKPIT_PG_PORT when unset).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="Key expected in X-API-Key for POST /v1/sweeps; unset disables sweeps; outside "
        "local/test an empty, placeholder or short (< 16 characters) key is refused.",
    )
    host: str = Field(default="127.0.0.1", description="Interface of `python -m api serve` (--host wins).")
    port: int = Field(
        default=8000, ge=1, le=65535, description="API port (--port wins); the CLI's default URL follows it."
    )
    stale_after_minutes: float = Field(
        default=30.0,
        gt=0,
        description="A turbine whose newest event is older than its site's data clock minus this is stale.",
    )
    historical_after_minutes: float = Field(
        default=120.0,
        gt=0,
        description="A site whose newest event is older than this (wall clock) is shown as historical.",
    )
    max_lag_seconds: float = Field(
        default=300.0, gt=0, description="Scorer consumer lag above which every turbine is stale."
    )
    heartbeat_max_age_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A scorer heartbeat older than this means the scorer is not publishing.",
    )
    sweep_max_age_hours: float = Field(
        default=26.0,
        gt=0,
        description="/v1/supervision lists the sweep as a problem when the last success is older than this.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Allowed origins (comma list or JSON list); empty = CORS closed."
    )
    db_pool_min_size: int = Field(default=2, ge=1, le=100, description="Database connections kept open.")
    db_pool_max_size: int = Field(default=8, ge=1, le=200, description="Most database connections.")
    db_pool_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, description="Wait for a free connection before answering 503."
    )
    db_statement_timeout_ms: int = Field(
        default=5000, ge=100, le=600_000, description="Longest query before it is cancelled."
    )
    kafka_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Longest wait to publish a sweep command."
    )
    ensure_topics_on_start: bool = Field(
        default=True, description="Create missing Kafka topics in the background at start-up."
    )
    topics_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Give up the start-up topic check after this long."
    )
    history_max_days: int = Field(
        default=400, ge=1, le=3650, description="Longest history one request reads."
    )
    summary_cache_seconds: float = Field(
        default=60.0, ge=0, description="How long per-day tier counts (an aggregate over history) are reused."
    )
    cache_seconds: float = Field(
        default=2.0, ge=0, description="How long small supervision snapshots (heartbeats) are reused."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept a comma-separated string as well as a JSON list."""
        if isinstance(value, str) and not value.strip().startswith("["):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("db_pool_max_size")
    @classmethod
    def _max_not_below_min(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        low = info.data.get("db_pool_min_size", 1)
        if value < low:
            raise ValueError(f"must be >= COCKPIT_DB_POOL_MIN_SIZE ({low})")
        return value

    @model_validator(mode="after")
    def _reader_follows_local_port(self) -> ApiSettings:
        if self.pg_port is not None and "reader_database_url" not in self.model_fields_set:
            self.reader_database_url = local_database_url("cockpit_reader", self.pg_port)
        return self


class ClientSettings(BaseSettings):
    """Where the CLI finds the API: ``COCKPIT_API_URL`` and ``COCKPIT_API_KEY``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore")

    api_url: str = Field(
        default=f"http://{LOCAL_HOST}:8000", min_length=1, description="Where the cockpit CLI finds the API."
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Local API port (COCKPIT_PORT); default api_url uses it.",
    )
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, description="CLI request timeout.")

    def __init__(self, **values: Any) -> None:
        # Before pydantic reads the environment and .env: a misspelt name must not fall back to a default.
        refuse_unknown_variables(type(self))
        super().__init__(**values)

    @model_validator(mode="after")
    def _follow_local_port(self) -> ClientSettings:
        """COCKPIT_PORT (where `make run` serves the API) moves the default URL; an explicit one wins."""
        if self.port is not None and "api_url" not in self.model_fields_set:
            self.api_url = f"http://{LOCAL_HOST}:{self.port}"
        return self
