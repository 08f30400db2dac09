"""The scorer's fleet register holder and sensor-set routing (no services)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from common.fleet import FleetRegister, TurbineSpec
from scorer.fleet import FleetRouting, RegisterHolder

pytestmark = pytest.mark.unit

OPERATIONAL = frozenset(
    {
        "wind_speed_ms",
        "wind_direction_deg",
        "ambient_temp_c",
        "power_kw",
        "rotor_rpm",
        "pitch_angle_deg",
        "nacelle_direction_deg",
    }
)


def _register(*ids: str, fitted: frozenset[str] | None = OPERATIONAL) -> FleetRegister:
    return FleetRegister(
        turbines={t: TurbineSpec(turbine_id=t, site_id="SITE-V", fitted_sensors=fitted) for t in ids}
    )


@pytest.fixture(scope="module")
def tiny_batch_scorer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from models.registry import load_version, save_version
    from models.scoring import BatchScorer
    from tests.unit.models.conftest import tiny_models

    reg = tmp_path_factory.mktemp("registry")
    save_version(reg, tiny_models(), {"metrics": {}}, version="v1")
    return BatchScorer(load_version(reg, "v1"))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_register_is_read_when_due_kept_on_failure_and_generation_counts_changes() -> None:
    clock = Clock()
    answers: list[Any] = [
        _register("A"),
        _register("A"),
        RuntimeError("connection refused"),
        _register("A", "B"),
    ]

    def loader(_url: str) -> FleetRegister:
        item = answers.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    h = RegisterHolder("postgresql://x", refresh_s=60, clock=clock, loader=loader)
    assert h.register is None and h.due()
    assert h.refresh() and h.generation == 1 and h.register is not None and set(h.register.turbines) == {"A"}
    assert not h.due()
    clock.t += 60
    assert h.due()
    assert not h.refresh() and h.generation == 1  # same register: nothing rebuilt
    assert not h.refresh() and h.error is not None and "connection refused" in h.error
    assert h.register is not None and set(h.register.turbines) == {"A"}  # the last one is kept
    assert h.refresh() and h.generation == 2 and h.error is None
    assert set(h.register.turbines) == {"A", "B"}


class _Holder:
    def __init__(self) -> None:
        self.scorer: Any = None
        self.operational: Any = None


def test_routing_builds_one_fleet_scorer_and_rebuilds_it_when_an_input_changes(
    tiny_batch_scorer: Any,
) -> None:
    holder = _Holder()
    regs = RegisterHolder("postgresql://x", refresh_s=60, loader=lambda _u: _register("A"))
    routing = FleetRouting(holder, regs)  # type: ignore[arg-type]
    assert routing.scorer() is None  # no production model: not ready
    holder.scorer = tiny_batch_scorer
    first = routing.scorer()
    assert first is not None and routing.scorer() is first
    regs.refresh()
    second = routing.scorer()
    assert second is not None and second is not first
    assert routing.scorer() is second


def _calibration(days: float = 35.0, seed: int = 0) -> Any:
    from models.calibration import fit_calibration
    from tests.unit.models._synth import synth_fleet

    frame, _ = synth_fleet(n_turbines=2, days=days, seed=seed, failures_per_turbine=0)
    return fit_calibration(frame, None), frame


def test_stream_batch_routes_each_turbine_by_its_fitted_sensors(tiny_batch_scorer: Any) -> None:
    """One batch: WT-001 registered with operational sensors only, WT-002 not registered (full set)."""
    from common.settings import load_settings
    from models.fleet_scoring import FleetScorer
    from models.operational import OperationalScorer
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
    proc = BatchProcessor(load_settings(ScorerSettings), tiny_batch_scorer)
    proc.fleet = FleetScorer(
        tiny_batch_scorer, OperationalScorer(tiny_batch_scorer.policy, cal), _register("WT-001")
    )
    out = proc.process(records)
    assert out.accepted == len(records) and out.turbines_scored == 2
    dq = {row.turbine_id: orjson.loads(row.data_quality) for row in out.state_rows}
    assert dq["WT-001"]["sensor_set"] == "operational"
    assert dq["WT-001"]["calibration_version"] == cal.version
    assert set(dq["WT-001"]["signals_used"]) <= OPERATIONAL
    assert dq["WT-002"]["sensor_set"] == "full"  # no register entry: scored as before, full set
    # The operational assessment names no unfitted sensor as missing data.
    assert not set(dq["WT-001"]["silent_key_signals_24h"]) - OPERATIONAL
    assert not set(dq["WT-001"]["frozen_signals"]) - OPERATIONAL


def test_holder_loads_the_production_calibration_and_picks_up_a_new_one(tmp_path: Path) -> None:
    from models.calibration_registry import save_calibration
    from models.policy import RiskPolicy
    from models.registry import promote, save_version
    from scorer.model import ModelHolder
    from tests.unit.models.conftest import tiny_models

    reg = tmp_path / "registry"
    save_version(reg, tiny_models(), {"metrics": {}}, version="v1")
    promote(reg, "v1")
    holder = ModelHolder(reg, RiskPolicy())
    assert holder.refresh() and holder.version == "v1"
    assert holder.operational is None and holder.calibration_error is not None  # none yet, said so
    first, _ = _calibration(seed=1)
    save_calibration(reg, first, promote=True)
    assert holder.refresh() and holder.calibration_version == first.version
    assert holder.operational is not None and not holder.refresh()  # unchanged: nothing reloaded
    second, _ = _calibration(seed=2)
    second.version = first.version + "-b"
    save_calibration(reg, second, promote=True)
    assert holder.refresh() and holder.calibration_version == second.version  # no restart needed
    # A broken promotion keeps the calibration in use and says why.
    (reg / "calibrations" / "PRODUCTION").write_text("c-does-not-exist\n")
    assert not holder.refresh()
    assert holder.calibration_version == second.version
    assert holder.calibration_error is not None and "c-does-not-exist" in holder.calibration_error
