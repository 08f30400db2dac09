"""Maintenance interventions through the API and the CLI (issue 12, point 6): validation, hostile input, auth,
the repair command on the real command topic, and the CLI round trip down to the failure log training reads.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer
from typer.testing import CliRunner

from api.app import create_app
from api.cli import EXIT_AUTH, EXIT_NOT_FOUND, EXIT_USAGE, app
from api.db import Database
from api.routers.interventions import latest_intervention
from api.settings import ApiSettings
from common.contracts import RepairCommand
from models.train import FAILURE_LOG_COLUMNS, read_failure_log
from tests.integration.api.conftest import API_KEY, ApiDb

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": API_KEY}


def _turbine(api_db: ApiDb, index: int) -> str:
    return sorted(api_db.seeded.turbines)[index]


def _field_named(res, field: str) -> None:  # type: ignore[no-untyped-def]
    assert res.status_code == 422, res.text
    locs = [d["loc"] for d in res.json()["detail"]]
    assert any(field in map(str, loc) for loc in locs), (field, res.text)


def _repairs_on_topic(bootstrap: str, topic: str, intervention_id: str) -> list[RepairCommand]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=8000,
        group_id=None,
    )
    found = []
    try:
        for msg in consumer:
            data = json.loads(msg.value)
            if data.get("command") == "repair" and data.get("intervention_id") == intervention_id:
                found.append(RepairCommand.model_validate_json(msg.value))
    finally:
        consumer.close()
    return found


async def _latest(reader_url: str, turbine_id: str) -> dict[str, Any]:
    """``latest_intervention`` (what the turbine detail carries) on the API's own read-only pool."""
    db = Database(reader_url, min_size=1, max_size=1)
    await db.open()
    try:
        found = await latest_intervention(db, turbine_id)
    finally:
        await db.close()
    assert found is not None
    return found


def test_write_needs_the_key(client: TestClient, api_db: ApiDb) -> None:
    tid = _turbine(api_db, 0)
    body = {
        "kind": "done",
        "component": "gearbox",
        "finding": "no_fault_found",
        "done_at": "2026-01-01T00:00Z",
    }
    assert client.post(f"/v1/turbines/{tid}/interventions", json=body).status_code == 401
    res = client.post(f"/v1/turbines/{tid}/interventions", json=body, headers={"X-API-Key": "wrong"})
    assert res.status_code == 401
    assert client.get(f"/v1/turbines/{tid}/interventions").json()["items"] == []  # nothing written


def test_validation_names_the_field(client: TestClient, api_db: ApiDb) -> None:
    tid = _turbine(api_db, 1)
    url = f"/v1/turbines/{tid}/interventions"
    ok = {"kind": "done", "component": "gearbox", "finding": "no_fault_found", "done_at": "2026-01-01T00:00Z"}
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    cases = [
        ({**ok, "done_at": future}, "done_at"),  # not done yet
        ({**ok, "done_at": "2026-01-01T00:00"}, "done_at"),  # no UTC offset
        ({**ok, "done_at": "0026-01-01T00:00Z"}, "done_at"),  # a typo for 2026
        ({k: v for k, v in ok.items() if k != "finding"}, "finding"),  # done needs a finding
        ({**ok, "finding": "broken"}, "finding"),
        (
            {"kind": "planned", "component": "gearbox", "planned_for": future, "finding": "no_fault_found"},
            "finding",
        ),
        ({"kind": "planned", "component": "gearbox"}, "planned_for"),
        (
            {"kind": "planned", "component": "gearbox", "planned_for": future, "done_at": ok["done_at"]},
            "done_at",
        ),
        ({**ok, "kind": "maybe"}, "kind"),
        ({**ok, "component": ""}, "component"),
        ({**ok, "component": "gear\x00box"}, "component"),
        ({**ok, "component": "gear\x1b[31mbox"}, "component"),
        ({**ok, "component": "x" * 65}, "component"),
        ({**ok, "notes": "a" * 2001}, "notes"),
        ({**ok, "notes": "bell\x07"}, "notes"),
        ({**ok, "recorded_by": "\r\n"}, "recorded_by"),
        ({**ok, "extra": 1}, "extra"),
        ({**ok, "component": 42}, "component"),
        ({**ok, "id": "not-a-uuid"}, "id"),
    ]
    for body, field in cases:
        _field_named(client.post(url, json=body, headers=KEY), field)
    for raw in (b"\xff\xfe garbage", b"[]", b'{"kind": "done"' + b" " * 10, b"null"):
        res = client.post(url, content=raw, headers={**KEY, "Content-Type": "application/json"})
        assert res.status_code == 422, (raw, res.text)
    huge = {**ok, "notes": "n" * 2_000_000}
    assert client.post(url, json=huge, headers=KEY).status_code == 422
    assert client.get(url).json()["items"] == []  # none of them was recorded
    res = client.post("/v1/turbines/NO-SUCH-TURBINE/interventions", json=ok, headers=KEY)
    assert res.status_code == 404 and "NO-SUCH-TURBINE" in res.json()["detail"]
    assert client.post("/v1/turbines/bad id!/interventions", json=ok, headers=KEY).status_code in (404, 422)
    assert client.get("/v1/turbines/NO-SUCH-TURBINE/interventions").status_code == 404
    assert client.get("/v1/interventions", params={"since": "yesterday"}).status_code == 422
    assert client.get("/v1/interventions", params={"finding": "maybe"}).status_code == 422


def test_record_plan_then_done_publishes_one_repair(
    client: TestClient, api_db: ApiDb, kafka_bootstrap: str, command_topic: str
) -> None:
    tid = _turbine(api_db, 2)
    url = f"/v1/turbines/{tid}/interventions"
    planned = client.post(
        url,
        json={
            "kind": "planned",
            "component": "main bearing",
            "planned_for": "2026-12-01T08:00:00+01:00",
            "notes": "crane booked\nline two",
            "recorded_by": "crew-north",
        },
        headers=KEY,
    )
    assert planned.status_code == 201, planned.text
    item = planned.json()
    assert item["kind"] == "planned" and item["finding"] is None and item["repair_command"] == "not needed"
    assert item["planned_for"].startswith("2026-12-01T07:00:00") and item["notes"] == "crane booked\nline two"
    assert planned.headers["location"].endswith(item["id"])
    patch_url = f"{url}/{item['id']}"
    _field_named(client.patch(patch_url, json={"finding": "failure_confirmed"}, headers=KEY), "done_at")
    assert (
        client.patch(
            patch_url, json={"done_at": "2026-11-20T10:00Z", "finding": "failure_confirmed"}
        ).status_code
        == 401
    )
    res = client.patch(
        patch_url, json={"done_at": "2026-11-20T10:00Z", "finding": "failure_confirmed"}, headers=KEY
    )
    assert res.status_code == 200, res.text
    done = res.json()
    assert done["kind"] == "done" and done["finding"] == "failure_confirmed"
    assert done["repair_command"] == "published" and done["notes"] == "crane booked\nline two"
    # the same request again is idempotent; a different one is a conflict
    again = client.patch(
        patch_url, json={"done_at": "2026-11-20T10:00Z", "finding": "failure_confirmed"}, headers=KEY
    )
    assert again.status_code == 200 and again.json()["id"] == item["id"]
    other = client.patch(
        patch_url, json={"done_at": "2026-11-21T10:00Z", "finding": "no_fault_found"}, headers=KEY
    )
    assert other.status_code == 409
    assert (
        client.patch(
            f"{url}/{uuid.uuid4()}",
            json={"done_at": "2026-11-20T10:00Z", "finding": "no_fault_found"},
            headers=KEY,
        ).status_code
        == 404
    )
    commands = _repairs_on_topic(kafka_bootstrap, command_topic, item["id"])
    assert commands and all(c.turbine_id == tid and c.finding == "failure_confirmed" for c in commands)
    assert (
        commands[0].done_at == datetime(2026, 11, 20, 10, tzinfo=UTC)
        and commands[0].component == "main bearing"
    )
    listed = client.get(url).json()["items"]
    assert [i["id"] for i in listed] == [item["id"]]
    # no_fault_found: recorded, no repair command
    nff = client.post(
        url,
        json={
            "kind": "done",
            "component": "pitch",
            "finding": "no_fault_found",
            "done_at": "2026-11-25T09:00:00Z",
        },
        headers=KEY,
    )
    assert nff.status_code == 201 and nff.json()["repair_command"] == "not needed"
    assert [i["finding"] for i in client.get(url).json()["items"]] == ["no_fault_found", "failure_confirmed"]
    latest = client.get("/v1/interventions", params={"latest": "true"}).json()["items"]
    assert [i["finding"] for i in latest if i["turbine_id"] == tid] == ["no_fault_found"]
    assert asyncio.run(_latest(api_db.reader_url, tid))["id"] == uuid.UUID(nff.json()["id"])
    since = client.get("/v1/interventions", params={"since": "2026-11-24T00:00:00Z"}).json()["items"]
    assert {i["id"] for i in since if i["turbine_id"] == tid} == {nff.json()["id"]}


def test_client_id_makes_a_retry_idempotent(client: TestClient, api_db: ApiDb) -> None:
    tid = _turbine(api_db, 3)
    body = {
        "id": str(uuid.uuid4()),
        "kind": "done",
        "component": "yaw drive",
        "finding": "preventive_replacement",
        "done_at": "2026-11-18T12:00:00Z",
    }
    first = client.post(f"/v1/turbines/{tid}/interventions", json=body, headers=KEY)
    second = client.post(f"/v1/turbines/{tid}/interventions", json=body, headers=KEY)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"] == body["id"]
    assert second.json()["repair_command"] == "published"  # re-published: the scorer ignores a repeat
    clash = client.post(f"/v1/turbines/{_turbine(api_db, 4)}/interventions", json=body, headers=KEY)
    assert clash.status_code == 409
    assert len(client.get(f"/v1/turbines/{tid}/interventions").json()["items"]) == 1
    last = client.get(f"/v1/turbines/{tid}").json()["last_intervention"]  # the detail carries it
    assert last["id"] == body["id"] and last["finding"] == "preventive_replacement"


def test_kafka_down_keeps_the_record_and_says_so(
    make_settings: Callable[..., ApiSettings], api_db: ApiDb
) -> None:
    from tests.integration.api.conftest import free_port

    tid = _turbine(api_db, 5)
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_timeout_seconds=2)
    with TestClient(create_app(settings)) as c:
        res = c.post(
            f"/v1/turbines/{tid}/interventions",
            headers=KEY,
            json={
                "kind": "done",
                "component": "gearbox",
                "finding": "failure_confirmed",
                "done_at": "2026-11-10T00:00Z",
            },
        )
        assert res.status_code == 201, res.text
        assert res.json()["repair_command"].startswith("failed: kafka not reachable")
        assert [i["id"] for i in c.get(f"/v1/turbines/{tid}/interventions").json()["items"]] == [
            res.json()["id"]
        ]


def test_reads_stay_read_only(api_db: ApiDb) -> None:
    """The API's role may write interventions only (migration 0006), and only inside READ WRITE."""
    with psycopg.connect(api_db.reader_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE turbine_state SET score = 0")


def test_cli_round_trip_to_the_failure_log(
    live_api: str, api_db: ApiDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COCKPIT_API_KEY", raising=False)
    runner = CliRunner()
    tid_a, tid_b = _turbine(api_db, 6), _turbine(api_db, 7)

    def run(*args: str, key: str | None = API_KEY):  # type: ignore[no-untyped-def]
        env = {"COCKPIT_API_URL": live_api, "COLUMNS": "200"}
        if key is not None:
            env["COCKPIT_API_KEY"] = key
        return runner.invoke(app, list(args), env=env)

    add = ("intervention", "add")
    res = run(
        *add,
        tid_a,
        "--kind",
        "done",
        "--component",
        "gearbox",
        "--finding",
        "failure_confirmed",
        "--at",
        "2026-11-20T10:00Z",
        "--notes",
        "bearing spalled",
        "--json",
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["repair_command"] == "published"
    res = run(
        *add,
        tid_b,
        "--kind",
        "done",
        "--component",
        "generator",
        "--finding",
        "failure_confirmed",
        "--at",
        "2026-10-02T06:30:00+02:00",
    )
    assert res.exit_code == 0, res.output
    assert "generator" in res.stdout and "published" in res.stdout
    assert (
        run(
            *add, tid_b, "--component", "pitch", "--finding", "no_fault_found", "--at", "2026-10-05T00:00Z"
        ).exit_code
        == 0
    )
    planned = run(
        *add, tid_b, "--kind", "planned", "--component", "blade", "--at", "2027-01-10T08:00Z", "--json"
    )
    assert planned.exit_code == 0, planned.output
    # documented exit codes
    assert (
        run(
            *add,
            tid_a,
            "--component",
            "gearbox",
            "--finding",
            "failure_confirmed",
            "--at",
            "2026-11-20T10:00Z",
            key=None,
        ).exit_code
        == EXIT_AUTH
    )
    assert (
        run(
            *add,
            tid_a,
            "--component",
            "gearbox",
            "--finding",
            "failure_confirmed",
            "--at",
            "2026-11-20T10:00Z",
            key="wrong",
        ).exit_code
        == EXIT_AUTH
    )
    bad = run(
        *add, tid_a, "--component", "gearbox", "--finding", "failure_confirmed", "--at", "2999-01-01T00:00Z"
    )
    assert bad.exit_code == EXIT_USAGE and "done_at" in bad.output
    assert (
        run(*add, tid_a, "--component", "gearbox", "--finding", "failure_confirmed").exit_code == EXIT_USAGE
    )
    assert (
        run(
            *add, "NO-SUCH", "--component", "x", "--finding", "no_fault_found", "--at", "2026-11-20T10:00Z"
        ).exit_code
        == EXIT_NOT_FOUND
    )
    pid = json.loads(planned.stdout)["id"]
    assert (
        run(
            "intervention", "done", tid_b, pid, "--finding", "no_fault_found", "--at", "2026-11-01T00:00Z"
        ).exit_code
        == 0
    )

    listed = run("intervention", "list", tid_b)
    assert listed.exit_code == 0 and "generator" in listed.stdout and "blade" in listed.stdout
    assert run("intervention", "list", "NO-SUCH").exit_code == EXIT_NOT_FOUND

    res = run("intervention", "list", "--as-failure-log")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert tuple(csv.DictReader(io.StringIO(res.stdout)).fieldnames or ()) == FAILURE_LOG_COLUMNS
    mine = [r for r in rows if r["turbine_id"] in (tid_a, tid_b)]
    expected = [  # confirmed failures only, in UTC
        {
            "turbine_id": tid_a,
            "component": "gearbox",
            "failure_time": "2026-11-20T10:00:00Z",
            "repair_time": "2026-11-20T10:00:00Z",
        },
        {
            "turbine_id": tid_b,
            "component": "generator",
            "failure_time": "2026-10-02T04:30:00Z",
            "repair_time": "2026-10-02T04:30:00Z",
        },
    ]
    assert mine == sorted(expected, key=lambda r: r["turbine_id"])
    path = tmp_path / "failures.csv"
    path.write_text(res.stdout, encoding="utf-8")
    log = read_failure_log(path)  # the very parser `python -m models train --failure-log` uses
    got = log[log["turbine_id"].isin([tid_a, tid_b])]
    assert sorted(got["component"]) == ["gearbox", "generator"]
    gear = got[got["component"] == "gearbox"].iloc[0]
    assert gear["failure_time"].isoformat() == "2026-11-20T10:00:00+00:00"


def test_missing_grant_is_a_503_that_names_it(
    fresh_database: Callable[[str], str], make_settings: Callable[..., ApiSettings]
) -> None:
    """A deployment whose API role was not granted INSERT on interventions: said, not an internal error."""
    from tests.integration.api.conftest import reader_url_for

    url = fresh_database("interv_nogrant")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO turbines (turbine_id, site_id) VALUES ('WT-900', 'SITE-Z')")
        conn.execute("REVOKE INSERT, UPDATE ON interventions FROM cockpit_reader")
    with TestClient(create_app(make_settings(reader_database_url=reader_url_for(url)))) as c:
        body = {
            "kind": "done",
            "component": "gearbox",
            "finding": "no_fault_found",
            "done_at": "2026-01-01T00:00Z",
        }
        res = c.post("/v1/turbines/WT-900/interventions", json=body, headers=KEY)
        assert res.status_code == 503, res.text
        assert "GRANT INSERT, UPDATE ON interventions" in res.json()["detail"]
        assert c.get("/v1/turbines/WT-900/interventions").json()["items"] == []
