"""The ``cockpit`` CLI against a live uvicorn on seeded data: output and documented exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest
from typer.testing import CliRunner

from api.cli import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_USAGE, app
from tests.integration.api.conftest import API_KEY, ApiDb, HistDb, LiveServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture()
def run(live_api: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("COCKPIT_API_KEY", raising=False)
    runner = CliRunner()

    def _run(*args: str, url: str | None = None, key: str | None = None):  # type: ignore[no-untyped-def]
        env = {"COCKPIT_API_URL": url or live_api, "COCKPIT_API_KEY": key or "", "COLUMNS": "200"}
        if key is None:
            env.pop("COCKPIT_API_KEY")
        return runner.invoke(app, list(args), env=env)

    return _run


def test_top_table_and_json(run, api_db: ApiDb) -> None:  # type: ignore[no-untyped-def]
    res = run("top", "--limit", "3")
    assert res.exit_code == 0, res.output
    first = max(api_db.seeded.scored, key=lambda t: api_db.seeded.scored[t])
    assert first in res.output and "Critique / Critical" in res.output
    res = run("top", "--tier", "critical,high", "--json")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert {r["tier"] for r in data["items"]} <= {"critical", "high"} and data["items"]
    res = run("top", "--site", "SITE-B", "--json")
    assert {r["site_id"] for r in json.loads(res.stdout)["items"]} == {"SITE-B"}


def test_top_usage_errors(run) -> None:  # type: ignore[no-untyped-def]
    assert run("top", "--tier", "bogus").exit_code == EXIT_USAGE
    assert run("top", "--limit", "0").exit_code == EXIT_USAGE
    assert run("nonsense").exit_code == EXIT_USAGE


def test_turbine(run, api_db: ApiDb) -> None:  # type: ignore[no-untyped-def]
    tid = api_db.seeded.turbines[0]
    res = run("turbine", tid)
    assert res.exit_code == 0, res.output
    assert tid in res.output and "gearbox_bearing_temp_c" in res.output and "Last sweep run" in res.output
    assert "Assessment: stream as of" in res.output and res.output.count("score ") == 1  # one score only
    data = json.loads(run("turbine", tid, "--json").stdout)
    assert data["turbine_id"] == tid
    missing = run("turbine", "WT-404")
    assert missing.exit_code == EXIT_NOT_FOUND and "not found" in missing.output


def test_history(run, api_db: ApiDb) -> None:  # type: ignore[no-untyped-def]
    tid = api_db.seeded.turbines[0]
    res = run("history", tid, "--days", "7")
    assert res.exit_code == 0, res.output
    assert "bucket 1d" in res.output
    data = json.loads(run("history", tid, "--days", "2", "--json").stdout)
    assert data["bucket"] == "1h" and data["scores"]
    assert run("history", "WT-404").exit_code == EXIT_NOT_FOUND
    assert run("history", tid, "--bucket", "fortnight").exit_code == EXIT_USAGE


def test_sweep(run) -> None:  # type: ignore[no-untyped-def]
    res = run("sweep", "--no-wait", "--json", key=API_KEY)
    assert res.exit_code == 0, res.output
    assert uuid.UUID(json.loads(res.stdout)["run_id"])
    # No scorer consumes this test's command topic: waiting ends with exit 3 and says what to check.
    waited = run("sweep", "--timeout", "2", key=API_KEY)
    assert waited.exit_code == EXIT_UNREACHABLE, waited.output
    assert "not finished after 2 s (not started)" in waited.output and "cockpit status" in waited.output
    assert run("sweep", key="wrong-key").exit_code == EXIT_AUTH
    assert run("sweep").exit_code == EXIT_AUTH  # no key configured on the client


def test_status(run, live_api: str) -> None:  # type: ignore[no-untyped-def]
    """Ready = the API serves reads; the scorer's and sweeps' problems come from /v1/supervision."""
    res = run("status")
    assert res.exit_code == 0, res.output
    assert "ready" in res.output and "database" in res.output
    data = json.loads(run("status", "--json").stdout)
    assert data["readiness"]["ready"] is True and data["summary"]["turbines"] == 12
    expected = httpx.get(f"{live_api}/v1/supervision", params={"days": 1}, timeout=10).json()["problems"]
    assert data["problems"] == expected
    for problem in expected:
        assert problem[:40] in res.output


def test_unreachable_api(run) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"
    for args in (("top",), ("status",), ("turbine", "WT-001")):
        res = run(*args, url=dead)
        assert res.exit_code == EXIT_UNREACHABLE, (args, res.output)


def test_console_entry_points(live_api: str) -> None:
    """``python -m api.cli`` (what the ``cockpit`` script runs) and ``python -m api --help`` both work."""
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "top" in out.stdout and "Exit codes" in out.stdout
    out = subprocess.run([sys.executable, "-m", "api", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "serve" in out.stdout


def test_historical_fleet_in_the_terminal(run, make_settings, hist_db: HistDb) -> None:  # type: ignore[no-untyped-def]
    """The CLI says the data is historical, shows one assessment with its source, and marks history gaps."""
    fleet = hist_db.fleet
    with LiveServer(make_settings(reader_database_url=hist_db.reader_url)) as server:
        top = run("top", url=server.url)
        assert top.exit_code == 0 and "historical data: ranking as of 2024-03-02 14:09 UTC" in top.output
        detail = run("turbine", fleet.sweep_turbine, url=server.url)
        assert detail.exit_code == 0, detail.output
        assert "Assessment: sweep as of 2024-03-02" in detail.output and detail.output.count("score ") == 1
        assert "historical data" in detail.output
        history = run("history", fleet.gap_turbine, "--days", "30", "--bucket", "6h", url=server.url)
        assert history.exit_code == 0 and history.output.count("no data") == 1, history.output
        assert "2024-03-02" in history.output  # the window ends at the last data, not today
        status = run("status", url=server.url)  # the API serves reads: ready; the scorer is supervision's
        assert status.exit_code == 0 and "database" in status.output, status.output
