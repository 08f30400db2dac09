"""Small, fast fleets shared by the simulator unit tests (module-scoped: simulation is deterministic)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from simulator.config import FleetConfig
from simulator.fleet import Fleet

#: Turbine -> mode of the forced failures used by the signature tests (WT-006..WT-008 stay healthy).
MODE_OF = {
    "WT-001": "gearbox_bearing",
    "WT-002": "generator_winding",
    "WT-003": "main_bearing",
    "WT-004": "pitch_hydraulic",
    "WT-005": "converter_cooling",
}
ONSET = pd.Timestamp("2024-06-03T00:00:00Z")
FAILURE = pd.Timestamp("2024-06-15T00:00:00Z")


def failure_config(**overrides: Any) -> FleetConfig:
    """Eight turbines, five forced failures (one per mode), no random incident, no sensor fault."""
    data: dict[str, Any] = {
        "seed": 42,
        "n_turbines": 8,
        "start": "2024-06-01T00:00:00Z",
        "duration_days": 22,
        "failures": {"random_enabled": False},
        "sensor_faults": {"random_enabled": False},
        "curtailment": {"rate_per_site_year": 0},
        "forced_failures": [
            {
                "turbine_id": tid,
                "mode": mode,
                "onset": ONSET.isoformat(),
                "failure_time": FAILURE.isoformat(),
                "fault_hours": 12,
                "maintenance_hours": 36,
            }
            for tid, mode in MODE_OF.items()
        ],
    }
    data.update(overrides)
    return FleetConfig.model_validate(data)


@pytest.fixture(scope="package")
def failure_fleet() -> Fleet:
    return Fleet(failure_config())


@pytest.fixture(scope="package")
def failure_frame(failure_fleet: Fleet) -> pd.DataFrame:
    return failure_fleet.to_frame()


@pytest.fixture(scope="package")
def baseline_frame() -> pd.DataFrame:
    """The same fleet and weather without any failure: the reference for signatures."""
    return Fleet(failure_config(forced_failures=[])).to_frame()


@pytest.fixture(scope="package")
def physics_fleet() -> Fleet:
    """Ten turbines for a month with training-rate failures but clean sensors (physics invariants)."""
    return Fleet(
        FleetConfig(
            seed=3,
            n_turbines=10,
            duration_days=30,
            preset="training",
            sensor_faults={"random_enabled": False},  # type: ignore[arg-type]
            curtailment={"rate_per_site_year": 60},  # type: ignore[arg-type]
        )
    )


@pytest.fixture(scope="package")
def physics_frame(physics_fleet: Fleet) -> pd.DataFrame:
    return physics_fleet.to_frame()
