"""The sweep's rows: scored in overlapping chunks, handed out in ascending turbine order, and the same
rows as one plain scoring pass over the same windows (no services)."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from common.fleet import FleetRegister, TurbineSpec
from common.gc_pause import without_cyclic_gc
from models.fleet_scoring import FleetScorer
from models.operational import OperationalScorer
from scorer import sweep
from scorer.processing import assessment_rows
from scorer.repairs import annotate_from_window
from scorer.sweep import plan_sweep, sweep_and_write, sweep_fleet
from tests.unit.scorer.test_fleet_routing import OPERATIONAL, _calibration

pytestmark = pytest.mark.unit

RUN = "8f1d7c52-4a43-4d2a-9a55-0f6f4e0c2b11"


@pytest.fixture(scope="module")
def tiny_batch_scorer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from models.registry import load_version, save_version
    from models.scoring import BatchScorer
    from tests.unit.models.conftest import tiny_models

    reg = tmp_path_factory.mktemp("registry")
    save_version(reg, tiny_models(), {"metrics": {}}, version="v1")
    return BatchScorer(load_version(reg, "v1"))


@pytest.fixture(scope="module")
def fleet_of(tiny_batch_scorer: Any) -> Any:
    """A processor holding 14 turbines (copies of two real windows, ids out of order, two sites) and
    a fleet scorer routing three of them to the operational model and one to no model."""
    from common.settings import load_settings
    from producers.serialize import encode_record
    from scorer.processing import BatchProcessor, RawRecord
    from scorer.settings import ScorerSettings
    from tests.unit.models._synth import events_of

    cal, frame = _calibration()
    tail = frame[frame["event_time"] >= frame["event_time"].max() - pd.Timedelta(days=8)]
    records = []
    for i, ev in enumerate(events_of(tail.drop(columns=["event_id"]))):
        key, value = encode_record(ev)
        records.append(RawRecord(0, i, 1.0, value, "telemetry", key))
    src = BatchProcessor(load_settings(ScorerSettings), tiny_batch_scorer)
    src.process(records)
    blobs = [(st.window.to_bytes(), st.aux_bytes()) for _, st in sorted(src.turbines.items())]
    ids = [f"WT-{n:03d}" for n in (12, 3, 7, 1, 14, 9, 2, 11, 5, 13, 4, 8, 10, 6)]
    ids[5] = "wt-lower"  # after every upper-case id in code-point order
    ids[9] = "WT-ü"  # non-ASCII
    proc = BatchProcessor(load_settings(ScorerSettings), tiny_batch_scorer)
    proc.restore(
        [
            SimpleNamespace(
                turbine_id=tid,
                site_id="SITE-A" if i % 3 else "SITE-B",
                partition=i % 3,
                state=blobs[i % 2][0],
                aux=blobs[i % 2][1],
            )
            for i, tid in enumerate(ids)
        ]
    )
    specs = {t: TurbineSpec(turbine_id=t, site_id="SITE-A", fitted_sensors=OPERATIONAL) for t in ids[2:5]}
    specs[ids[6]] = TurbineSpec(turbine_id=ids[6], site_id="SITE-A", fitted_sensors=frozenset({"power_kw"}))
    op = OperationalScorer(tiny_batch_scorer.policy, cal)
    return proc, FleetScorer(tiny_batch_scorer, op, FleetRegister(turbines=specs))


def _reference(proc: Any, fleet: FleetScorer, wall: datetime) -> list[tuple[Any, Any]]:
    """Rows of one plain pass: FleetScorer.score over every window, each as of its site's time."""
    ids = sorted(proc.turbines)
    sites = [proc.turbines[t].site_id for t in ids]
    windows = [proc.turbines[t].window for t in ids]
    lasts = [w.last_event_ts for w in windows]
    plan = plan_sweep(zip(ids, sites, lasts, strict=True), wall)
    as_ofs = [plan.site_as_of[s] for s in sites]
    out = []
    for a, w, site, ts, as_of in zip(
        fleet.score(list(zip(ids, windows, strict=True)), as_ofs), windows, sites, lasts, as_ofs, strict=True
    ):
        annotate_from_window(a, w)
        out.append(assessment_rows(a, "sweep", site, datetime.fromtimestamp(ts, UTC), as_of, RUN))
    return out


def test_overlapped_chunks_give_the_rows_of_one_plain_pass_in_turbine_order(
    fleet_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, fleet = fleet_of
    wall = datetime.now(UTC) + timedelta(days=400)
    want = _reference(proc, fleet, wall)
    monkeypatch.setattr(sweep, "SWEEP_CHUNK", 3)  # several chunks: the helper thread runs ahead
    parts: list[tuple[list[Any], list[Any]]] = []
    result = sweep_fleet(proc, [], {0, 1, 2}, fleet, wall, RUN, lambda h, s: parts.append((h, s)))
    assert len(parts) > 2
    got = [(h, s) for hs, ss in parts for h, s in zip(hs, ss, strict=True)]
    assert got == want
    assert list(zip(result.history_rows, result.state_rows, strict=True)) == want
    ids = [h.turbine_id for h, _ in got]
    assert ids == sorted(ids) and len(ids) == 14  # code-point order: what Sink.write_sweep relies on
    tiers = {h.turbine_id: h.tier for h, _ in got}
    assert tiers["WT-002"] == "unknown"  # ids[6]: no model takes its sensors
    assert sum(result.counts.values()) == 14


def test_sweep_and_write_hands_every_part_to_one_write_then_the_summary(
    fleet_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, fleet = fleet_of
    monkeypatch.setattr(sweep, "SWEEP_CHUNK", 4)
    seen: dict[str, Any] = {}

    def write(run_id: str, version: str | None, parts: Any, summary: Any) -> None:
        seen["parts"] = [p for p in parts]  # the iterator ends once the scoring is done
        seen["summary"] = summary()
        seen["gc"] = gc.isenabled()

    done = without_cyclic_gc(sweep_and_write)(
        proc, [], {0, 1, 2}, fleet, datetime.now(UTC), RUN, write, "v1", 0.0
    )
    assert done.write_error is None and gc.isenabled()
    assert seen["gc"] is False  # the collector is paused for the whole sweep, writer included
    rows = [h for hs, _ in seen["parts"] for h in hs]
    assert rows == done.result.history_rows and seen["summary"].turbines == 14
    assert seen["summary"].tier_counts == done.result.counts


def test_a_failed_write_is_returned_with_all_rows_and_a_failed_scoring_reaches_the_writer(
    fleet_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, fleet = fleet_of
    monkeypatch.setattr(sweep, "SWEEP_CHUNK", 4)

    def refused(run_id: str, version: str | None, parts: Any, summary: Any) -> None:
        next(iter(parts))
        raise RuntimeError("database refused the rows")

    done = sweep_and_write(proc, [], {0, 1, 2}, fleet, datetime.now(UTC), RUN, refused, "v1", 0.0)
    assert isinstance(done.write_error, RuntimeError)
    assert len(done.result.history_rows) == 14  # all rows, to be written again

    caught: list[BaseException] = []

    def keeps(run_id: str, version: str | None, parts: Any, summary: Any) -> None:
        try:
            list(parts)
        except BaseException as exc:  # the transaction would roll back here
            caught.append(exc)
            raise

    def broken(*args: Any, **kw: Any) -> Any:
        raise ValueError("no model output")

    monkeypatch.setattr(fleet, "_assess_full", broken)
    with pytest.raises(ValueError, match="no model output"):
        sweep_and_write(proc, [], {0, 1, 2}, fleet, datetime.now(UTC), RUN, keeps, "v1", 0.0)
    assert len(caught) == 1 and isinstance(caught[0], ValueError)


def test_windows_of_partitions_not_held_are_read_from_checkpoints_and_a_bad_one_is_skipped(
    fleet_of: Any, tiny_batch_scorer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from common.settings import load_settings
    from scorer.processing import BatchProcessor
    from scorer.settings import ScorerSettings

    proc, fleet = fleet_of
    monkeypatch.setattr(sweep, "SWEEP_CHUNK", 4)
    wall = datetime.now(UTC) + timedelta(days=400)
    full = sweep_fleet(proc, [], {0, 1, 2}, fleet, wall, RUN)
    stored = [
        SimpleNamespace(
            turbine_id=tid, site_id=st.site_id, partition=st.partition, state=st.window.to_bytes(), aux=b""
        )
        for tid, st in sorted(proc.turbines.items())
    ]
    stored.append(
        SimpleNamespace(turbine_id="WT-BAD", site_id="SITE-A", partition=2, state=b"\x00junk", aux=b"")
    )
    empty = BatchProcessor(load_settings(ScorerSettings), tiny_batch_scorer)  # holds partition 0, no turbine
    got = sweep_fleet(empty, stored, {0}, fleet, wall, RUN)
    assert got.unreadable == 1 and any("WT-BAD" in str(r.__dict__) for r in caplog.records)
    want = {h.turbine_id: (h.score, h.tier, h.reasons) for h in full.history_rows}
    held = {s.turbine_id for s in stored if s.partition == 0}
    assert {h.turbine_id for h in got.history_rows} == set(want) - held  # owned partition: not from the DB
    assert all((h.score, h.tier, h.reasons) == want[h.turbine_id] for h in got.history_rows)
