"""Configuration: defaults, validation messages, YAML loading, presets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from simulator.config import (
    TRAINING_FAILURE_RATES,
    ConfigError,
    FailureMode,
    FleetConfig,
    load_fleet_config,
    parse_fleet_config,
    site_id,
    turbine_id,
)
from simulator.fleet import Fleet

pytestmark = pytest.mark.unit


def test_default_fleet_is_the_customers_45_mw_site() -> None:
    fleet = Fleet(FleetConfig())
    assert len(fleet.turbines) == 20
    assert fleet.turbines[0].turbine_id == "WT-001"
    assert fleet.turbines[-1].turbine_id == "WT-020"
    assert {t.site_id for t in fleet.turbines} == {"SITE-A"}
    assert sum(t.rated_power_kw for t in fleet.turbines) == pytest.approx(45_000)
    assert fleet.config.period_s == 600
    assert all(t.commissioned_on.year >= 2008 for t in fleet.turbines)


def test_ids_stay_sortable_for_large_fleets() -> None:
    assert turbine_id(0, 20) == "WT-001"
    assert turbine_id(9999, 10_000) == "WT-10000"
    assert turbine_id(0, 10_000) == "WT-00001"
    assert [site_id(i) for i in (0, 25, 26, 27)] == ["SITE-A", "SITE-Z", "SITE-AA", "SITE-AB"]
    fleet = Fleet(FleetConfig(n_turbines=45, turbines_per_site=20, duration_days=1))
    assert [t.site_id for t in fleet.turbines].count("SITE-C") == 5


def test_unknown_key_is_rejected_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_fleet_config({"n_turbines": 3, "climate": {"weibul_shape": 2.0}})
    assert "climate.weibul_shape" in str(err.value)
    assert "unknown key" in str(err.value)
    with pytest.raises(ValidationError):
        FleetConfig(turbines=3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"n_turbines": 0}, "n_turbines"),
        ({"period_s": 7}, "must divide one day"),
        ({"turbine": {"cut_in_ms": 6.0, "rated_wind_ms": 5.0}}, "cut_in_ms < rated_wind_ms"),
        ({"failures": {"degradation_days": [30, 5]}}, "failures.degradation_days"),
        ({"failures": {"rates_per_turbine_year": {"gearbox_bearing": -1}}}, "within [0, 50]"),
        ({"failures": {"rates_per_turbine_year": {"gearbox": 1}}}, "failures.rates_per_turbine_year"),
        (
            {
                "forced_failures": [
                    {
                        "turbine_id": "WT-099",
                        "mode": "main_bearing",
                        "onset": "2024-01-02",
                        "failure_time": "2024-01-05",
                    }
                ]
            },
            "unknown turbine 'WT-099'",
        ),
        (
            {
                "forced_failures": [
                    {
                        "turbine_id": "WT-001",
                        "mode": "main_bearing",
                        "onset": "2024-01-05",
                        "failure_time": "2024-01-02",
                    }
                ]
            },
            "failure_time must be after onset",
        ),
        (
            {
                "forced_sensor_faults": [
                    {
                        "turbine_id": "WT-001",
                        "signal": "power",
                        "kind": "frozen",
                        "start": "2024-01-02",
                        "end": "2024-01-03",
                    }
                ]
            },
            "unknown signal 'power'",
        ),
        ({"seed": "abc"}, "seed"),
    ],
)
def test_wrong_values_give_clear_messages(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_fleet_config(data)
    assert fragment in str(err.value)


def test_load_yaml(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("seed: 9\nn_turbines: 4\nduration_days: 2\nperiod_s: 60\npreset: training\n")
    cfg = load_fleet_config(path)
    assert (cfg.seed, cfg.n_turbines, cfg.period_s) == (9, 4, 60)
    assert cfg.n_steps == 2 * 1440
    assert cfg.failures.rates_per_turbine_year == TRAINING_FAILURE_RATES
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_fleet_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("n_turbine: 4\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*\n.*n_turbine: unknown key"):
        load_fleet_config(typo)


def test_presets() -> None:
    realistic = FleetConfig()
    training = FleetConfig(preset="training")
    per_decade = 10 * sum(realistic.failures.rates_per_turbine_year.values())
    assert 1.0 <= per_decade <= 8.0  # "a few major failures per turbine per decade"
    per_year = sum(training.failures.rates_per_turbine_year.values())
    assert 3.0 <= per_year <= 6.0
    explicit = FleetConfig.model_validate(
        {"preset": "training", "failures": {"rates_per_turbine_year": {"main_bearing": 0.5}}}
    )
    assert explicit.failures.rates_per_turbine_year == {FailureMode.MAIN_BEARING: 0.5}


def test_naive_times_are_utc() -> None:
    cfg = FleetConfig.model_validate({"start": "2024-03-01T00:00:00"})
    assert cfg.start.utcoffset() is not None
    assert cfg.end.isoformat() == "2024-03-08T00:00:00+00:00"
