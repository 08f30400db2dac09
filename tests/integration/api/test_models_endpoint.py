"""Lineage: ``GET /v1/models`` against a temp registry, and score rows carrying the calibration version.

The registry is a real one (``models.registry.save_version`` / ``promote``, the gate's history entries,
a calibration pointer as ``models.calibration_registry`` writes it); the artifacts are plain objects since
only the metadata is read. The score rows go through the scorer's own offline path
(``scorer.processing.assessment_rows`` -> ``scorer.sink.Sink.write_batch``) into a migrated database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from common.rows import TurbineSeenRow
from models import registry as R
from models.calibration_registry import POINTER as CAL_POINTER
from models.calibration_registry import calibrations_dir
from models.gate import decide as gate_decide
from models.gate import load_config, record_decision, version_figures
from models.scoring import RiskAssessment
from scorer.processing import BatchOutcome, assessment_rows
from scorer.sink import Sink
from tests.integration.api.conftest import reader_url_for

pytestmark = pytest.mark.integration

CALIBRATION = "c20261129-070000"


def _metrics(pr_auc: float) -> dict[str, Any]:
    return {
        "holdout": {"source": "simulator preset=training turbines=8 days=180.0 seed=1007"},
        "model": {"pr_auc": pr_auc, "brier": 0.02, "ttf_mae_le14_days": 8.0, "recall_at_precision_0.9": 0.3},
        "baseline": {"pr_auc": 0.4, "brier": 0.06, "ttf_mae_le14_days": 11.0},
    }


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reg = tmp_path_factory.mktemp("models-endpoint") / "registry"
    stubs = {a: {"stub": a} for a in R.ARTIFACTS}
    R.save_version(reg, stubs, {"metrics": _metrics(0.80)}, version="v1")
    R.save_version(reg, stubs, {"metrics": _metrics(0.82)}, version="v2")
    R.save_version(reg, stubs, {}, version="v3-unevaluated")
    R.promote(reg, "v1")
    config = load_config()
    decision = gate_decide(config, version_figures(reg / "v2"), version_figures(reg / "v1"))
    assert decision.passed
    record_decision(reg, decision, forced=False)
    R.promote(reg, "v2")
    (reg / "v2" / "backtest.json").write_text("{}", encoding="utf-8")
    cal = calibrations_dir(reg)
    (cal / CALIBRATION).mkdir(parents=True)
    (cal / CAL_POINTER).write_text(CALIBRATION + "\n", encoding="utf-8")
    return reg


@pytest.fixture(scope="module")
def models_client(make_settings: Callable[..., ApiSettings], registry: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(registry_dir=registry))) as c:
        yield c


def test_models_lists_versions_production_and_calibration(models_client: TestClient, registry: Path) -> None:
    res = models_client.get("/v1/models")
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["registry"] == str(registry)
    assert body["production"] == "v2"
    assert body["calibration_version"] == CALIBRATION
    history = R.read_history(registry)
    promoted_v2 = [h for h in history if h["action"] == "promote" and h["version"] == "v2"][-1]["at"]
    assert body["promoted_at"] == promoted_v2
    by = {v["version"]: v for v in body["versions"]}
    assert list(by) == ["v1", "v2", "v3-unevaluated"]
    assert by["v2"]["production"] and not by["v1"]["production"]
    assert by["v2"]["model"]["pr_auc"] == pytest.approx(0.82)
    assert by["v2"]["model"]["recall_at_precision_0.9"] == pytest.approx(0.3)
    assert by["v2"]["baseline"]["brier"] == pytest.approx(0.06)
    assert by["v2"]["backtest"] is True and by["v1"]["backtest"] is False
    assert by["v1"]["promoted_at"] is not None and by["v3-unevaluated"]["promoted_at"] is None
    assert by["v3-unevaluated"]["model"]["pr_auc"] is None  # never evaluated: figures absent, not invented
    assert by["v1"]["created_at"]
    actions = [(h["action"], h["version"], h.get("decision")) for h in body["history"]]
    assert actions == [("promote", "v1", None), ("gate", "v2", "passed"), ("promote", "v2", None)]


def test_models_follows_a_rollback(models_client: TestClient, registry: Path) -> None:
    R.rollback(registry)
    try:
        body = models_client.get("/v1/models").json()
        assert body["production"] == "v1"
        assert body["promoted_at"] == R.read_history(registry)[-1]["at"]  # the rollback made it production
    finally:
        R.promote(registry, "v2")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_unreadable_registry_is_503_naming_the_directory(
    make_settings: Callable[..., ApiSettings], tmp_path: Path, kind: str
) -> None:
    target = tmp_path / "no-registry"
    if kind == "file":
        target.write_text("not a directory", encoding="utf-8")
    with TestClient(create_app(make_settings(registry_dir=target))) as c:
        res = c.get("/v1/models")
        assert res.status_code == 503
        assert str(target.resolve()) in res.text and "COCKPIT_REGISTRY_DIR" in res.text
        assert c.get("/v1/policy").status_code == 200  # the rest of the API keeps serving


def test_empty_registry_has_no_production(make_settings: Callable[..., ApiSettings], tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(registry_dir=tmp_path))) as c:
        body = c.get("/v1/models").json()
    assert body["production"] is None and body["versions"] == [] and body["calibration_version"] is None


def test_score_rows_carry_the_calibration_version(fresh_database: Callable[[str], str]) -> None:
    url = fresh_database("lineage")
    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)

    def assessment(tid: str, calibration: str | None) -> RiskAssessment:
        dq: dict[str, Any] = {"sensor_set": "operational", "signals_used": ["power_kw", "wind_speed_ms"]}
        dq["calibration_version"] = calibration  # what models.fleet_scoring.FleetScorer sets
        return RiskAssessment(tid, now, 42.0, "moderate", 0.1, 20.0, 10.0, 30.0, [], dq, "v2")

    out = BatchOutcome()
    for tid, cal in (("WT-101", CALIBRATION), ("WT-102", None)):
        out.turbine_rows.append(TurbineSeenRow(tid, "SITE-A", now))
        hist, state = assessment_rows(assessment(tid, cal), "stream", "SITE-A", now, now)
        out.history_rows.append(hist)
        out.state_rows.append(state)
    sink = Sink(url, "lineage-test", "lineage-test")
    try:
        sink.write_batch(out, 1.0)
    finally:
        sink.close()
    with psycopg.connect(reader_url_for(url)) as conn:
        hist_rows = conn.execute(
            "SELECT turbine_id, model_version, trigger, calibration_version, data_quality "
            "FROM score_history ORDER BY turbine_id"
        ).fetchall()
        state_rows = conn.execute(
            "SELECT turbine_id, calibration_version FROM turbine_state ORDER BY turbine_id"
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in hist_rows] == [
        ("WT-101", "v2", "stream", CALIBRATION),
        ("WT-102", "v2", "stream", None),
    ]
    dq = hist_rows[0][4] if isinstance(hist_rows[0][4], dict) else json.loads(hist_rows[0][4])
    assert dq["calibration_version"] == CALIBRATION
    assert state_rows == [("WT-101", CALIBRATION), ("WT-102", None)]
