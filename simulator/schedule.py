"""Sparse incident schedules (failures, sensor faults, curtailments) drawn once per turbine/site.

Why up front: incidents are rare, so we draw their times as a Poisson process per turbine from a
dedicated random stream. The stream is consumed in a fixed order and only truncated at the horizon,
so a longer run contains exactly the incidents of a shorter one (window independence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.contracts import SIGNALS
from simulator.config import (
    FAILURE_MODES,
    SENSOR_FAULT_KINDS,
    FailureMode,
    FleetConfig,
    SensorFaultKind,
    site_id,
)

SECONDS_PER_YEAR = 365.25 * 86_400.0

# SeedSequence spawn keys: (domain, index, stream) keeps every turbine's randomness independent of
# the fleet size and of the time window requested.
TURBINE_DOMAIN, SITE_DOMAIN, FORCED_DOMAIN = 0, 1, 2
STREAM_NOISE, STREAM_FAILURES, STREAM_SENSOR, STREAM_STATIC = 0, 1, 2, 3

#: Signals eligible for random drift (directions wrap around, so a drift there is meaningless).
DRIFTABLE = tuple(i for i, s in enumerate(SIGNALS) if "direction" not in s)


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """Independent generator for a (domain, index, stream) key."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


@dataclass(frozen=True)
class FailureEvent:
    """One degradation-to-failure cycle; times in seconds since the configuration start."""

    turbine: int
    mode: FailureMode
    onset_s: float
    failure_s: float
    fault_end_s: float
    repair_s: float
    shape: float
    wiggle: tuple[float, float, float]
    forced: bool

    def health(self, t: np.ndarray) -> np.ndarray:
        """Noisy but monotone health index: 0 at onset, exactly 1 (failure threshold) at failure."""
        x = np.clip((t - self.onset_s) / (self.failure_s - self.onset_s), 0.0, 1.0)
        f = x.copy()
        for j, a in enumerate(self.wiggle, start=1):
            f += a * np.sin(np.pi * j * x) / (np.pi * j)
        return np.clip(f, 0.0, 1.0) ** self.shape


@dataclass(frozen=True)
class SensorFault:
    """An instrument fault on one signal; ``magnitude`` is drift units/day or spike size."""

    turbine: int
    signal: int
    kind: SensorFaultKind
    start_s: float
    end_s: float
    magnitude: float
    forced: bool


@dataclass(frozen=True)
class Curtailment:
    """Grid curtailment of a whole site to ``limit`` x rated power."""

    site: int
    start_s: float
    end_s: float
    limit: float


def _sec(value: float) -> float:
    """Incident times are whole seconds: readable ground truth, identical masks everywhere."""
    return float(round(value))


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _progression(rng: np.random.Generator) -> tuple[float, tuple[float, float, float]]:
    shape = float(rng.uniform(1.0, 2.0))  # >1: damage accelerates towards failure
    w = rng.uniform(-0.3, 0.3, 3)  # sum |a| < 1 keeps the health index monotone
    return shape, (float(w[0]), float(w[1]), float(w[2]))


def failure_schedule(config: FleetConfig, turbine: int) -> list[FailureEvent]:
    """Random failures of one turbine over the configured horizon (forced ones excluded)."""
    fc = config.failures
    rates = np.array([fc.rates_per_turbine_year.get(m, 0.0) for m in FAILURE_MODES], dtype=float)
    total = float(rates.sum())
    if not fc.random_enabled or total <= 0:
        return []
    rng = rng_for(config.seed, TURBINE_DOMAIN, turbine, STREAM_FAILURES)
    horizon = config.n_steps * config.period_s
    events: list[FailureEvent] = []
    cursor = 0.0
    while True:
        cursor = _sec(cursor + float(rng.exponential(SECONDS_PER_YEAR / total)))
        mode = FAILURE_MODES[int(rng.choice(len(FAILURE_MODES), p=rates / total))]
        degradation = _sec(_uniform(rng, fc.degradation_days) * 86_400)
        fault = _sec(_uniform(rng, fc.fault_hours) * 3600)
        maintenance = _sec(_uniform(rng, fc.maintenance_hours) * 3600)
        shape, wiggle = _progression(rng)
        if cursor >= horizon:
            return events
        failure = cursor + degradation
        events.append(
            FailureEvent(
                turbine,
                mode,
                cursor,
                failure,
                failure + fault,
                failure + fault + maintenance,
                shape,
                wiggle,
                False,
            )
        )
        cursor = failure + fault + maintenance


def forced_failures(config: FleetConfig) -> list[FailureEvent]:
    """Scripted failures of a scenario, with their own random progression shape."""
    index = {tid: i for i, tid in enumerate(config.turbine_ids)}
    fc = config.failures
    events = []
    for k, item in enumerate(config.forced_failures):
        rng = rng_for(config.seed, FORCED_DOMAIN, k, 0)
        shape, wiggle = _progression(rng)
        fault_h = item.fault_hours if item.fault_hours is not None else _uniform(rng, fc.fault_hours)
        maint_h = (
            item.maintenance_hours
            if item.maintenance_hours is not None
            else _uniform(rng, fc.maintenance_hours)
        )
        onset = (item.onset - config.start).total_seconds()
        failure = (item.failure_time - config.start).total_seconds()
        events.append(
            FailureEvent(
                index[item.turbine_id],
                item.mode,
                onset,
                failure,
                _sec(failure + fault_h * 3600),
                _sec(failure + (fault_h + maint_h) * 3600),
                shape,
                wiggle,
                True,
            )
        )
    return events


def merge_failures(random_events: list[FailureEvent], forced: list[FailureEvent]) -> list[FailureEvent]:
    """Forced incidents win: random events overlapping a forced one on the same turbine are dropped."""
    kept = [
        e
        for e in random_events
        if not any(
            f.turbine == e.turbine and e.onset_s < f.repair_s and f.onset_s < e.repair_s for f in forced
        )
    ]
    return sorted([*kept, *forced], key=lambda e: (e.onset_s, e.turbine))


def sensor_fault_schedule(config: FleetConfig, turbine: int) -> list[SensorFault]:
    """Random instrument faults of one turbine: an independent Poisson process per kind."""
    sc = config.sensor_faults
    if not sc.random_enabled:
        return []
    rng = rng_for(config.seed, TURBINE_DOMAIN, turbine, STREAM_SENSOR)
    horizon = config.n_steps * config.period_s
    faults: list[SensorFault] = []
    for kind in SENSOR_FAULT_KINDS:
        rate = sc.rates_per_turbine_year.get(kind, 0.0)
        if rate <= 0:
            continue
        cursor = 0.0
        while True:
            cursor = _sec(cursor + float(rng.exponential(SECONDS_PER_YEAR / rate)))
            u_signal = float(rng.random())
            u_duration = float(rng.random())
            u_magnitude = float(rng.random())
            if cursor >= horizon:
                break
            if kind is SensorFaultKind.DRIFT:
                signal = DRIFTABLE[int(u_signal * len(DRIFTABLE))]
            else:
                signal = int(u_signal * len(SIGNALS))
            if kind is SensorFaultKind.SPIKE:
                low, high = sc.spike_samples
                duration = float(low + int(u_duration * (high - low + 1))) * config.period_s
                magnitude = 1.0 + u_magnitude
            elif kind is SensorFaultKind.DRIFT:
                low_d, high_d = sc.drift_days
                duration = (low_d + u_duration * (high_d - low_d)) * 86_400
                magnitude = sc.drift_rate[0] + u_magnitude * (sc.drift_rate[1] - sc.drift_rate[0])
                magnitude *= 1.0 if u_signal * 1000 % 2 < 1 else -1.0
            else:
                bounds = sc.frozen_hours if kind is SensorFaultKind.FROZEN else sc.dropout_hours
                duration = (bounds[0] + u_duration * (bounds[1] - bounds[0])) * 3600
                magnitude = 0.0
            duration = _sec(max(duration, float(config.period_s)))
            faults.append(SensorFault(turbine, signal, kind, cursor, cursor + duration, magnitude, False))
            cursor += duration
    return faults


def forced_sensor_faults(config: FleetConfig) -> list[SensorFault]:
    """Scripted instrument faults of a scenario."""
    index = {tid: i for i, tid in enumerate(config.turbine_ids)}
    out = []
    for item in config.forced_sensor_faults:
        if item.magnitude is not None:
            magnitude = item.magnitude
        else:
            magnitude = 1.5 if item.kind in (SensorFaultKind.SPIKE, SensorFaultKind.DRIFT) else 0.0
        out.append(
            SensorFault(
                index[item.turbine_id],
                SIGNALS.index(item.signal),
                item.kind,
                (item.start - config.start).total_seconds(),
                (item.end - config.start).total_seconds(),
                magnitude,
                True,
            )
        )
    return out


def curtailment_schedule(config: FleetConfig, site: int) -> list[Curtailment]:
    """Grid curtailment periods of one site."""
    cc = config.curtailment
    if cc.rate_per_site_year <= 0:
        return []
    rng = rng_for(config.seed, SITE_DOMAIN, site, 1)
    horizon = config.n_steps * config.period_s
    out: list[Curtailment] = []
    cursor = 0.0
    while True:
        cursor = _sec(cursor + float(rng.exponential(SECONDS_PER_YEAR / cc.rate_per_site_year)))
        duration = _sec(_uniform(rng, cc.hours) * 3600)
        limit = _uniform(rng, cc.limit_fraction)
        if cursor >= horizon:
            return out
        out.append(Curtailment(site, cursor, cursor + duration, limit))
        cursor += duration


def heatwave_windows(config: FleetConfig, n_sites: int) -> list[tuple[int, float, float, float]]:
    """(site, start_s, end_s, delta_c) for every configured heatwave."""
    names = [site_id(s) for s in range(n_sites)]
    out = []
    for hw in config.heatwaves:
        sites = range(n_sites) if hw.sites is None else [names.index(s) for s in hw.sites if s in names]
        for s in sites:
            out.append(
                (
                    s,
                    (hw.start - config.start).total_seconds(),
                    (hw.end - config.start).total_seconds(),
                    hw.delta_c,
                )
            )
    return out
