"""CLI paths that need no broker: settings, usage errors, dry-run replay, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import SettingsError, load_settings
from producers.kafka_io import producer_config
from producers.settings import ProducerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "producers" / "examples"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COCKPIT_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "producers", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_defaults_and_no_loss_producer_config() -> None:
    settings = load_settings(ProducerSettings)
    assert settings.partitions == 6 and settings.compression == "none"
    bulk = producer_config(settings, bulk=True)
    live = producer_config(settings, bulk=False)
    for config in (bulk, live):
        assert config["acks"] == "all" and config["enable_idempotence"] is True
        assert config["max_in_flight_requests_per_connection"] <= 5 and config["retries"] > 0
    assert bulk["batch_size"] > live["batch_size"] and bulk["linger_ms"] >= live["linger_ms"]
    assert load_settings(ProducerSettings, compression="gzip").compression == "gzip"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_in_flight": 6}, "COCKPIT_MAX_IN_FLIGHT"),
        ({"partitions": 0}, "COCKPIT_PARTITIONS"),
        ({"compression": "brotli"}, "COCKPIT_COMPRESSION"),
        ({"backfill_batch_size": 8 * 1024 * 1024}, "must not exceed max_request_size"),
    ],
)
def test_invalid_settings_name_the_variable(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(ProducerSettings, **overrides)


def test_env_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_PARTITIONS", "12")
    monkeypatch.setenv("COCKPIT_RATE_LIMIT", "500")
    settings = load_settings(ProducerSettings)
    assert settings.partitions == 12 and settings.rate_limit == 500


def test_replay_check_maps_without_kafka() -> None:
    result = cli(
        "replay",
        str(EXAMPLES / "scada_export.csv"),
        "--mapping",
        str(EXAMPLES / "scada_mapping.yaml"),
        "--check",
    )
    assert result.returncode == 0, result.stderr
    assert "out of range: power_kw" in result.stdout
    assert '"accepted":72' in result.stderr and '"rejected":5' in result.stderr


def test_bad_input_exits_2_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text(
        "timestamp: {column: ts}\nturbine_id: {column: t}\nsite_id: {constant: S}\ncolumns: {x: nope}\n"
    )
    result = cli("replay", str(EXAMPLES / "scada_export.csv"), "--mapping", str(bad))
    assert result.returncode == 2 and "unknown contract field 'nope'" in result.stderr
    result = cli("scenario", "no_such_scenario")
    assert result.returncode == 2 and "available scenarios" in result.stderr
    result = cli("backfill")
    assert result.returncode == 2 and "--days" in result.stderr
    result = cli("accelerated", "--speed", "0")
    assert result.returncode == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--lead", "soon"), "is not a duration"),
        (("--lead", "-3h"), "between 0 and 366 days"),
        (("--id-prefix", "R "), "telemetry contract refuses"),
        (("--id-prefix", "-R"), "telemetry contract refuses"),
    ],
)
def test_scenario_refuses_bad_lead_and_prefix_before_kafka(args: tuple[str, ...], message: str) -> None:
    result = cli("scenario", "gearbox_bearing_failure", "--shift-to-now", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_backfill_refuses_an_end_in_the_future() -> None:
    result = cli("backfill", "--days", "1", "--end", "2999-01-01T00:00:00Z")
    assert result.returncode == 2 and "--end is in the future" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86_400), ("90m", 5_400), ("2d", 172_800), ("1.5", 5_400), ("30s", 30)]
)
def test_lead_durations(text: str, seconds: float) -> None:
    from producers.cli import _parse_duration

    assert _parse_duration(text, "--lead").total_seconds() == seconds
