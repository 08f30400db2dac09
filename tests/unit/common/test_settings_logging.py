from __future__ import annotations

import json
import logging

import pytest

from common.db import discover_migrations, redact
from common.logging import JsonFormatter, event
from common.settings import CommonSettings, SettingsError, load_settings

pytestmark = pytest.mark.unit


def test_settings_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_LOG_LEVEL", "LOUD")
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings)
    assert "COCKPIT_LOG_LEVEL" in str(info.value)
    assert "LOUD" in str(info.value)


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:9092")
    assert load_settings(CommonSettings).kafka_bootstrap_servers == "10.0.0.1:9092"


def test_local_port_variables_move_every_default_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout on other ports (`COCKPIT_*_PORT=... make run`): commands typed in that shell reach it."""
    from api.settings import ApiSettings, ClientSettings

    for var in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "READER_DATABASE_URL", "API_URL"):
        monkeypatch.delenv(f"COCKPIT_{var}", raising=False)
    monkeypatch.setenv("COCKPIT_KAFKA_PORT", "19092")
    monkeypatch.setenv("COCKPIT_PG_PORT", "15433")
    monkeypatch.setenv("COCKPIT_PORT", "18000")
    api = ApiSettings()
    assert api.kafka_bootstrap_servers == "127.0.0.1:19092"
    assert api.database_url == "postgresql://cockpit_writer:cockpit_writer@127.0.0.1:15433/cockpit"
    assert api.reader_database_url == "postgresql://cockpit_reader:cockpit_reader@127.0.0.1:15433/cockpit"
    assert ClientSettings().api_url == "http://127.0.0.1:18000"
    # An explicit address always wins over the port rule.
    monkeypatch.setenv("COCKPIT_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("COCKPIT_API_URL", "http://api:8000")
    assert CommonSettings().kafka_bootstrap_servers == "kafka:9092"
    assert ClientSettings().api_url == "http://api:8000"


def test_json_log_line_has_the_agreed_fields(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.json")
    record = logger.makeRecord(
        "test.json",
        logging.INFO,
        __file__,
        1,
        "sweep done",
        (),
        None,
        extra={"ctx": {"run_id": "r1", "turbines": 3}},
    )
    line = JsonFormatter("scorer").format(record)
    payload = json.loads(line)
    assert payload["component"] == "scorer"
    assert payload["level"] == "info"
    assert payload["message"] == "sweep done"
    assert payload["run_id"] == "r1" and payload["turbines"] == 3
    assert "timestamp" in payload and "\n" not in line
    with caplog.at_level(logging.INFO):
        event(logger, "hello", answer=42)
    assert caplog.records[-1].ctx == {"answer": 42}  # type: ignore[attr-defined]


def test_migrations_are_numbered_and_timescale_is_optional() -> None:
    migrations = discover_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert any(m.requires == "timescaledb" for m in migrations)
    assert all(m.requires in (None, "timescaledb") for m in migrations)


def test_redact_hides_passwords() -> None:
    assert redact("postgresql://user:pa55@host:5432/db") == "postgresql://user:***@host:5432/db"
