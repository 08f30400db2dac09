"""Simulator configuration.

One strict pydantic model (``extra="forbid"``) so that a typo in a YAML scenario fails loudly before a
long export instead of silently simulating something else.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from common import config_files
from common.contracts import SIGNALS


class FailureMode(StrEnum):
    """Degradation modes that end in a failure (each has its own signature in the signals)."""

    GEARBOX_BEARING = "gearbox_bearing"
    GENERATOR_WINDING = "generator_winding"
    MAIN_BEARING = "main_bearing"
    PITCH_HYDRAULIC = "pitch_hydraulic"
    CONVERTER_COOLING = "converter_cooling"


class SensorFaultKind(StrEnum):
    """Instrument faults that are NOT turbine failures (one signal, no correlated symptoms)."""

    FROZEN = "frozen"
    DROPOUT = "dropout"
    SPIKE = "spike"
    DRIFT = "drift"


FAILURE_MODES: tuple[FailureMode, ...] = tuple(FailureMode)
SENSOR_FAULT_KINDS: tuple[SensorFaultKind, ...] = tuple(SensorFaultKind)
Preset = Literal["realistic", "training"]


class ConfigError(ValueError):
    """A configuration file could not be read or validated; the message says where and why."""


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_range(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if low > high:
        raise ValueError(f"range minimum {low} is above its maximum {high}")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
Range = Annotated[tuple[float, float], AfterValidator(_check_range)]
IntRange = Annotated[tuple[int, int], AfterValidator(_check_range)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClimateConfig(_Strict):
    """Site climate: Weibull wind with seasonal/diurnal cycles, temperature cycles."""

    weibull_shape: float = Field(default=2.0, gt=1.0, le=5.0)
    weibull_scale_ms: float = Field(default=8.0, gt=0.5, le=20.0)
    seasonal_wind_amplitude: float = Field(default=0.15, ge=0.0, lt=0.6, description="relative, winter peak")
    diurnal_wind_amplitude: float = Field(
        default=0.08, ge=0.0, lt=0.6, description="relative, afternoon peak"
    )
    turbulence_intensity: float = Field(default=0.12, ge=0.0, le=0.4)
    turbine_wind_variation: float = Field(
        default=0.04, ge=0.0, le=0.3, description="std of per-turbine scale"
    )
    site_correlation: float = Field(
        default=0.95, ge=0.0, le=1.0, description="turbine vs site wind correlation"
    )
    prevailing_direction_deg: float = Field(default=240.0, ge=0.0, lt=360.0)
    mean_temp_c: float = Field(default=9.0, ge=-30.0, le=35.0)
    seasonal_temp_amplitude_c: float = Field(default=9.0, ge=0.0, le=25.0)
    diurnal_temp_amplitude_c: float = Field(default=4.0, ge=0.0, le=15.0)
    weather_temp_std_c: float = Field(default=3.0, ge=0.0, le=10.0)


class TurbineModelConfig(_Strict):
    """A 2 MW-class variable-speed pitch-regulated turbine (defaults: 2.25 MW, 90 m rotor)."""

    rated_power_kw: float = Field(default=2250.0, gt=100.0, le=15000.0)
    cut_in_ms: float = Field(default=3.0, gt=0.5, le=8.0)
    rated_wind_ms: float = Field(default=12.0, gt=3.0, le=20.0)
    cut_out_ms: float = Field(default=25.0, gt=10.0, le=40.0)
    rotor_radius_m: float = Field(default=45.0, gt=5.0, le=150.0)
    tip_speed_ratio: float = Field(default=8.0, gt=2.0, le=14.0)
    rotor_rpm_min: float = Field(default=9.0, ge=0.0, le=30.0)
    rotor_rpm_max: float = Field(default=16.8, gt=1.0, le=60.0)
    gear_ratio: float = Field(default=107.0, ge=1.0, le=200.0)

    @model_validator(mode="after")
    def _ordered(self) -> TurbineModelConfig:
        if not self.cut_in_ms < self.rated_wind_ms < self.cut_out_ms:
            raise ValueError("need cut_in_ms < rated_wind_ms < cut_out_ms")
        if self.rotor_rpm_min >= self.rotor_rpm_max:
            raise ValueError("rotor_rpm_min must be below rotor_rpm_max")
        if self.rotor_rpm_max * self.gear_ratio > 3000:
            raise ValueError("rotor_rpm_max * gear_ratio exceeds the contract's 3000 rpm generator limit")
        return self


class HeatwaveConfig(_Strict):
    """A hot spell added to ambient temperature (smooth 12 h ramps at both ends)."""

    start: UtcDatetime
    end: UtcDatetime
    delta_c: float = Field(default=12.0, gt=0.0, le=30.0)
    sites: list[str] | None = Field(default=None, description="site ids; None = every site")

    @model_validator(mode="after")
    def _ordered(self) -> HeatwaveConfig:
        if self.end <= self.start:
            raise ValueError("heatwave end must be after start")
        return self


REALISTIC_FAILURE_RATES: dict[FailureMode, float] = {
    FailureMode.GEARBOX_BEARING: 0.06,
    FailureMode.GENERATOR_WINDING: 0.05,
    FailureMode.MAIN_BEARING: 0.03,
    FailureMode.PITCH_HYDRAULIC: 0.10,
    FailureMode.CONVERTER_COOLING: 0.08,
}
TRAINING_FAILURE_RATES: dict[FailureMode, float] = {
    FailureMode.GEARBOX_BEARING: 1.0,
    FailureMode.GENERATOR_WINDING: 0.8,
    FailureMode.MAIN_BEARING: 0.7,
    FailureMode.PITCH_HYDRAULIC: 0.9,
    FailureMode.CONVERTER_COOLING: 0.8,
}
REALISTIC_SENSOR_FAULT_RATES: dict[SensorFaultKind, float] = {
    SensorFaultKind.FROZEN: 1.0,
    SensorFaultKind.DROPOUT: 4.0,
    SensorFaultKind.SPIKE: 6.0,
    SensorFaultKind.DRIFT: 0.5,
}
TRAINING_SENSOR_FAULT_RATES: dict[SensorFaultKind, float] = {
    SensorFaultKind.FROZEN: 4.0,
    SensorFaultKind.DROPOUT: 10.0,
    SensorFaultKind.SPIKE: 15.0,
    SensorFaultKind.DRIFT: 2.0,
}


class FailureConfig(_Strict):
    """Random failures: Poisson onsets per mode, degradation duration, then downtime."""

    random_enabled: bool = True
    rates_per_turbine_year: dict[FailureMode, float] = Field(
        default_factory=lambda: dict(REALISTIC_FAILURE_RATES)
    )
    degradation_days: Range = (5.0, 30.0)
    fault_hours: Range = (4.0, 36.0)
    maintenance_hours: Range = (12.0, 96.0)

    @field_validator("rates_per_turbine_year")
    @classmethod
    def _rates(cls, value: dict[FailureMode, float]) -> dict[FailureMode, float]:
        for mode, rate in value.items():
            if not 0.0 <= rate <= 50.0:
                raise ValueError(f"rate for {mode.value} must be within [0, 50] per turbine-year, got {rate}")
        return value

    @field_validator("degradation_days")
    @classmethod
    def _positive_degradation(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] <= 0:
            raise ValueError("degradation_days must be positive")
        return value


class SensorFaultConfig(_Strict):
    """Random instrument faults (frozen, dropout, spike, drift), each on one signal."""

    random_enabled: bool = True
    rates_per_turbine_year: dict[SensorFaultKind, float] = Field(
        default_factory=lambda: dict(REALISTIC_SENSOR_FAULT_RATES)
    )
    frozen_hours: Range = (2.0, 48.0)
    dropout_hours: Range = (0.2, 12.0)
    drift_days: Range = (3.0, 20.0)
    drift_rate: Range = Field(default=(0.5, 2.0), description="signal drift units per day")
    spike_samples: IntRange = (1, 3)

    @field_validator("rates_per_turbine_year")
    @classmethod
    def _rates(cls, value: dict[SensorFaultKind, float]) -> dict[SensorFaultKind, float]:
        for kind, rate in value.items():
            if not 0.0 <= rate <= 1000.0:
                raise ValueError(f"rate for {kind.value} must be within [0, 1000] per turbine-year")
        return value


class CurtailmentConfig(_Strict):
    """Grid-operator curtailment periods, per site."""

    rate_per_site_year: float = Field(default=12.0, ge=0.0, le=2000.0)
    hours: Range = (1.0, 8.0)
    limit_fraction: Range = (0.3, 0.8)


class ForcedFailure(_Strict):
    """A scripted degradation: health rises from 0 at ``onset`` to the failure threshold at ``failure_time``.

    Why both times: scenarios must fail exactly when the story says so.
    """

    turbine_id: str
    mode: FailureMode
    onset: UtcDatetime
    failure_time: UtcDatetime
    fault_hours: float | None = Field(default=None, ge=0.0, le=24 * 60)
    maintenance_hours: float | None = Field(default=None, ge=0.0, le=24 * 60)

    @model_validator(mode="after")
    def _ordered(self) -> ForcedFailure:
        if self.failure_time <= self.onset:
            raise ValueError("failure_time must be after onset")
        return self


class ForcedSensorFault(_Strict):
    """A scripted instrument fault on one signal of one turbine."""

    turbine_id: str
    signal: str
    kind: SensorFaultKind
    start: UtcDatetime
    end: UtcDatetime
    magnitude: float | None = Field(
        default=None, description="drift rate (signal units/day) or spike size factor; None = typical"
    )

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        if value not in SIGNALS:
            raise ValueError(f"unknown signal {value!r}; expected one of {', '.join(SIGNALS)}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ForcedSensorFault:
        if self.end <= self.start:
            raise ValueError("sensor fault end must be after start")
        return self


class FleetConfig(_Strict):
    """Everything that determines a simulation; same config (incl. seed) -> byte-identical output."""

    preset: Preset = "realistic"
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    n_turbines: int = Field(default=20, ge=1, le=100_000)
    turbines_per_site: int = Field(default=20, ge=1, le=10_000)
    start: UtcDatetime = datetime(2024, 1, 1, tzinfo=UTC)
    duration_days: float = Field(default=7.0, gt=0.0, le=36_600.0)
    period_s: int = Field(default=600, ge=1, le=3600)
    commissioned_between: tuple[date, date] = (date(2008, 1, 1), date(2020, 12, 31))
    turbine: TurbineModelConfig = TurbineModelConfig()
    climate: ClimateConfig = ClimateConfig()
    failures: FailureConfig = FailureConfig()
    sensor_faults: SensorFaultConfig = SensorFaultConfig()
    curtailment: CurtailmentConfig = CurtailmentConfig()
    heatwaves: list[HeatwaveConfig] = Field(default_factory=list)
    forced_failures: list[ForcedFailure] = Field(default_factory=list)
    forced_sensor_faults: list[ForcedSensorFault] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """The training preset raises failure/fault rates unless the caller set them explicitly."""
        if not isinstance(data, dict) or data.get("preset") != "training":
            return data
        data = dict(data)
        for key, rates in (
            ("failures", TRAINING_FAILURE_RATES),
            ("sensor_faults", TRAINING_SENSOR_FAULT_RATES),
        ):
            section = data.get(key)
            if isinstance(section, BaseModel):
                continue
            section = dict(section or {})
            section.setdefault("rates_per_turbine_year", dict(rates))
            data[key] = section
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FleetConfig:
        if 86_400 % self.period_s:
            raise ValueError(f"period_s={self.period_s} must divide one day (86400 s), e.g. 1, 10, 60, 600")
        if self.n_steps < 1:
            raise ValueError("duration_days is shorter than one period")
        low, high = self.commissioned_between
        if low > high:
            raise ValueError("commissioned_between: first date is after the second")
        known = set(self.turbine_ids)
        end = self.end
        items: list[ForcedFailure | ForcedSensorFault] = [*self.forced_failures, *self.forced_sensor_faults]
        for item in items:
            if item.turbine_id not in known:
                raise ValueError(
                    f"forced incident on unknown turbine {item.turbine_id!r} "
                    f"(fleet has {self.turbine_ids[0]}..{self.turbine_ids[-1]})"
                )
        for failure in self.forced_failures:
            if not self.start <= failure.onset < end:
                raise ValueError(f"forced failure onset {failure.onset} outside the simulated window")
        for fault in self.forced_sensor_faults:
            if not self.start <= fault.start < end:
                raise ValueError(f"forced sensor fault start {fault.start} outside the simulated window")
        return self

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.n_steps * self.period_s)

    @property
    def n_steps(self) -> int:
        return round(self.duration_days * 86_400 / self.period_s)

    @property
    def steps_per_day(self) -> int:
        return 86_400 // self.period_s

    @property
    def id_width(self) -> int:
        return max(3, len(str(self.n_turbines)))

    @property
    def turbine_ids(self) -> list[str]:
        return [turbine_id(i, self.n_turbines) for i in range(self.n_turbines)]


def turbine_id(index: int, n_turbines: int) -> str:
    """``WT-001``...; zero-padded to the fleet's width so lexical order equals numeric order."""
    return f"WT-{index + 1:0{max(3, len(str(n_turbines)))}d}"


def site_id(index: int) -> str:
    """``SITE-A``..``SITE-Z``, ``SITE-AA``... (bijective base 26)."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return f"SITE-{letters}"


def format_validation_error(exc: ValidationError, source: str = "config") -> str:
    """One line per problem, with the dotted path, so YAML authors find the faulty key quickly."""
    return config_files.format_validation_error(exc, source, "simulator configuration")


def parse_fleet_config(data: Any, source: str = "config") -> FleetConfig:
    """Validate a mapping, turning pydantic errors into a readable :class:`ConfigError`."""
    return config_files.parse_config(data, FleetConfig, ConfigError, source, "simulator configuration")


def load_fleet_config(path: str | Path) -> FleetConfig:
    """Load a YAML file holding a :class:`FleetConfig` mapping."""
    data = config_files.read_yaml(path, ConfigError)
    return parse_fleet_config(data or {}, str(path))
