"""Fleet register end to end: migration 0005, the real CLI (`python -m common fleet import|show`) against a
fresh database, what the store reads back, and what the API answers (through the read-only role)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from common.fleet import read_register
from common.fleet_store import load_register, upsert_register

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_YAML = ROOT / "docs" / "examples" / "fleet_register.yaml"
EXAMPLE_CSV = ROOT / "docs" / "examples" / "fleet_register.csv"
OPERATIONAL = ["ambient_temp_c", "nacelle_direction_deg", "pitch_angle_deg", "power_kw", "wind_direction_deg"]


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m common fleet ...`` as a user types it: only the database URL is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(COCKPIT_DATABASE_URL=url, COCKPIT_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "common", "fleet", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _as_url(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(dsn)
    return f"postgresql://{p['user']}:{p['password']}@{p['host']}:{p['port']}/{p['dbname']}"


def _reader(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params.update(user="cockpit_reader", password="cockpit_reader")
    return make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def db(fresh_database: Callable[[str], str]) -> str:
    """A migrated database (URL form, as users write it) where WT-101 sent data and was scored and WT-900
    sent data but is not in the register."""
    url = _as_url(fresh_database("fleet"))
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO turbines (turbine_id, site_id, last_event_time) VALUES "
            "('WT-101', 'NORTH-RIDGE', '2024-03-02T12:00Z'), ('WT-900', 'NORTH-RIDGE', '2024-03-02T12:00Z')"
        )
        conn.execute(
            "INSERT INTO turbine_state (turbine_id, site_id, as_of, trigger, score, tier, model_version, "
            "last_event_time) VALUES ('WT-101', 'NORTH-RIDGE', '2024-03-02T12:00Z', 'stream', 12, 'low', "
            "'v1', '2024-03-02T12:00Z')"
        )
    return url


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM turbines WHERE register_updated_at IS NOT NULL").fetchone()
    assert row is not None
    return int(row[0])


def test_migration_adds_the_register_columns(db: str) -> None:
    with psycopg.connect(db) as conn:
        cols = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'turbines'"
            ).fetchall()
        )
        status = conn.execute("SELECT status FROM schema_migrations WHERE version = 5").fetchone()
    assert status == ("applied",)
    assert cols["fitted_sensors"] == "ARRAY"
    assert cols["commissioned_on"] == "date"
    assert {"manufacturer", "model", "rotor_diameter_m", "hub_height_m", "latitude", "longitude"} <= set(cols)
    assert "commissioning_date" not in cols  # one column for the date: 0001's commissioned_on


def test_import_cli_dry_run_then_import_then_idempotent(db: str, tmp_path: Path) -> None:
    dry = _cli(db, "import", str(EXAMPLE_YAML), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "3 turbine(s) on 2 site(s); rated power for 3; fitted sensors declared for 2" in dry.stdout
    assert "would insert 2, would update 1, unchanged 0 (nothing written)" in dry.stdout
    assert "cockpit_writer:***@127.0.0.1" in dry.stdout  # the address, password hidden
    assert "password" not in dry.stdout and ":cockpit_writer@" not in dry.stdout
    assert _count(db) == 0

    done = _cli(db, "import", str(EXAMPLE_YAML))
    assert done.returncode == 0, done.stderr
    assert "inserted 2, updated 1, unchanged 0" in done.stdout
    assert _count(db) == 3

    again = _cli(db, "import", str(EXAMPLE_CSV))  # the CSV example says the same thing
    assert again.returncode == 0, again.stderr
    assert "inserted 0, updated 0, unchanged 3" in again.stdout

    shown = _cli(db, "show", "--out", str(tmp_path / "stored.csv"))
    assert shown.returncode == 0, shown.stderr
    assert "4 turbine(s) on 2 site(s)" in shown.stdout
    stored = read_register(tmp_path / "stored.csv")  # what the database holds, as a register file
    assert {k: v for k, v in stored.turbines.items() if k != "WT-900"} == read_register(EXAMPLE_YAML).turbines
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[2:] if line.strip()}
    assert "Siemens Gamesa SG 3.4-132" in lines["WT-201"] and "all (not declared)" in lines["WT-201"]
    assert "6/16: wind_speed_ms," in lines["WT-101"]
    assert "all (not declared)" in lines["WT-900"]


def test_invalid_file_exits_2_with_every_problem_and_writes_nothing(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "fleet.csv"
    bad.write_text(
        "turbine_id,site_id,rated_power_kw,fitted_sensors\n"
        "WT-101,NORTH-RIDGE,-1,power_kw\n"
        "WT-777,NORTH-RIDGE,2000,gearbox_temp\n"
    )
    with psycopg.connect(db) as conn:
        before = conn.execute("SELECT count(*), max(register_updated_at) FROM turbines").fetchone()
    result = _cli(db, "import", str(bad))
    assert result.returncode == 2
    assert f"{bad}: invalid fleet register (2 problem(s)):" in result.stderr
    assert "line 2, turbine WT-101: rated_power_kw: Input should be greater than 0" in result.stderr
    assert "line 3, turbine WT-777: fitted_sensors: unknown sensor 'gearbox_temp'" in result.stderr
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*), max(register_updated_at) FROM turbines").fetchone() == before


def test_unreachable_database_exits_3_naming_the_address() -> None:
    result = _cli("postgresql://someone:secret@127.0.0.1:1/cockpit", "import", str(EXAMPLE_YAML))
    assert result.returncode == 3
    assert "cannot connect to PostgreSQL at postgresql://someone:***@127.0.0.1:1/cockpit" in result.stderr
    assert "secret" not in result.stderr + result.stdout
    shown = _cli("postgresql://someone:secret@127.0.0.1:1/cockpit", "show")
    assert shown.returncode == 3


def test_store_reads_back_what_was_imported_and_updates_changes(
    fresh_database: Callable[[str], str],
) -> None:
    url = fresh_database("fleet_store")
    register = read_register(EXAMPLE_YAML)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO turbines (turbine_id, site_id) VALUES ('WT-101', 'OLD-SITE')")
        conn.commit()
        assert upsert_register(conn, register) == {
            "inserted": 2,
            "updated": 1,
            "unchanged": 0,
            "site_changed": 1,
        }
        assert load_register(conn) == register
        changed = register.model_copy(
            update={
                "turbines": {
                    **register.turbines,
                    "WT-201": register.turbines["WT-201"].model_copy(update={"rated_power_kw": None}),
                }
            }
        )
        assert upsert_register(conn, changed, dry_run=True)["updated"] == 1
        assert load_register(conn) == register  # dry run kept nothing
        assert upsert_register(conn, changed)["updated"] == 1
        spec = load_register(conn).get("WT-201")
        assert spec is not None and spec.rated_power_kw is None and spec.rotor_diameter_m == 132.0
        # the scorer's read: only the turbines that declare their fitted sensors, each one whole
        conn.execute("INSERT INTO turbines (turbine_id, site_id) VALUES ('WT-STREAM-ONLY', 'SITE-X')")
        declared = load_register(conn, declared_sensors_only=True)
        full = load_register(conn)
        assert "WT-STREAM-ONLY" in full.turbines and "WT-STREAM-ONLY" not in declared.turbines
        assert declared.turbines == {
            tid: spec for tid, spec in full.turbines.items() if spec.fitted_sensors is not None
        }
        assert declared.turbines  # the example register declares some


@pytest.fixture(scope="module")
def api(db: str, kafka_bootstrap: str) -> Iterator[TestClient]:
    from api.app import create_app
    from api.settings import ApiSettings
    from common.settings import load_settings

    settings = load_settings(
        ApiSettings,
        reader_database_url=_reader(db),
        kafka_bootstrap_servers=kafka_bootstrap,
        ensure_topics_on_start=False,
        log_format="console",
        log_level="WARNING",
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_api_carries_the_register(db: str, api: TestClient) -> None:
    if _count(db) == 0:  # this test also runs alone
        assert _cli(db, "import", str(EXAMPLE_YAML)).returncode == 0
    page = api.get("/v1/turbines", params={"limit": 50})
    assert page.status_code == 200, page.text
    items = {item["turbine_id"]: item for item in page.json()["items"]}
    assert set(items) == {"WT-101", "WT-102", "WT-201", "WT-900"}  # registered before any data: listed too
    scored = items["WT-101"]
    assert scored["tier"] == "low"
    assert scored["manufacturer"] == "Vestas" and scored["model"] == "V90-2.0 MW"
    assert scored["rated_power_kw"] == 2000.0 and scored["rotor_diameter_m"] == 90.0
    assert scored["hub_height_m"] == 80.0
    assert scored["latitude"] == 55.4312 and scored["longitude"] == -2.1875
    assert scored["commissioning_date"] == "2011-06-14"
    assert sorted(scored["fitted_sensors"]) == sorted([*OPERATIONAL, "wind_speed_ms"])
    assert scored["sensor_set"] == "operational"
    assert items["WT-102"]["tier"] == "unknown" and items["WT-102"]["sensor_set"] == "operational"
    assert items["WT-201"]["fitted_sensors"] is None and items["WT-201"]["sensor_set"] == "full"
    unregistered = items["WT-900"]
    assert unregistered["manufacturer"] is None and unregistered["fitted_sensors"] is None
    assert unregistered["sensor_set"] == "full"

    detail = api.get("/v1/turbines/WT-201")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["manufacturer"] == "Siemens Gamesa" and body["rated_power_kw"] == 3465.0
    assert body["commissioning_date"] == "2019-03-01" and body["commissioned_on"] == "2019-03-01"
    assert body["fitted_sensors"] is None and body["sensor_set"] == "full"
    assert body["latitude"] == 53.5501 and body["hub_height_m"] == 114.0
    operational = api.get("/v1/turbines/WT-101").json()
    assert operational["sensor_set"] == "operational"
    assert operational["fitted_sensors"][0] == "wind_speed_ms"  # contract order
