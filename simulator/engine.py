"""Vectorised physics of the fleet, computed chunk by chunk with carried state.

Arrays are laid out (time, turbine) so that rows come out sorted by event time then turbine id.
Every quantity is a numpy expression over a whole chunk; the only Python loop over time is the
first-order thermal lag, vectorised over turbines x components (one iteration per time step, not per
row). Chunks always start at step 0 of the configuration and have a fixed size, so any window gives
the same values (the state at a window start is reached by simulating from the configuration start).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from common.contracts import (
    SIGNALS,
    STATUS_ALARM_PRESSURE,
    STATUS_ALARM_TEMPERATURE,
    STATUS_ALARM_VIBRATION,
    STATUS_CURTAILED,
    STATUS_FAULT,
    STATUS_HIGH_WIND_CUTOUT,
    STATUS_LOW_WIND,
    STATUS_MAINTENANCE,
    STATUS_OK,
    TelemetryEvent,
)
from simulator.config import FAILURE_MODES, FailureMode, FleetConfig, SensorFaultKind, site_id, turbine_id
from simulator.schedule import (
    SITE_DOMAIN,
    STREAM_NOISE,
    STREAM_STATIC,
    TURBINE_DOMAIN,
    Curtailment,
    FailureEvent,
    SensorFault,
    curtailment_schedule,
    failure_schedule,
    forced_failures,
    forced_sensor_faults,
    heatwave_windows,
    merge_failures,
    rng_for,
    sensor_fault_schedule,
)

SIG = {name: i for i, name in enumerate(SIGNALS)}
N_SIGNALS = len(SIGNALS)

#: Rows (turbines x steps) simulated per chunk: bounds memory whatever the fleet size.
ROW_BUDGET = 1 << 18

# Columns of the per-step standard-normal noise block drawn for each turbine.
(K_TURB, K_DIR, K_NAC, K_AMB, K_POW, K_ROT, K_PITCH, K_T0) = range(8)
K_VIB, K_VIB2, K_PRES, K_PIRR, K_SELF, K_GEN, K_WSENS = range(K_T0 + 6, K_T0 + 13)
K_NOISE = K_WSENS + 1

#: Lagged component temperatures (order of the lag state) and their thermal time constants (s).
TEMPS = (
    "gearbox_oil_temp_c",
    "gearbox_bearing_temp_c",
    "generator_winding_temp_c",
    "generator_bearing_temp_c",
    "main_bearing_temp_c",
    "converter_temp_c",
)
TAU_S = np.array([9000.0, 3600.0, 2400.0, 5400.0, 10800.0, 1200.0])
TEMP_NOISE_C = 0.3

#: Alarm limits applied by the turbine controller to the true (not the faulty-sensor) values.
ALARM_TEMP_C = {
    "gearbox_oil_temp_c": 85.0,
    "gearbox_bearing_temp_c": 95.0,
    "generator_winding_temp_c": 140.0,
    "main_bearing_temp_c": 70.0,
    "converter_temp_c": 85.0,
}
ALARM_VIBRATION_MM_S = 9.0
ALARM_PRESSURE_BAR = 120.0

#: Typical scale of each signal, used to size spikes and drifts (units per day) realistically.
SIGNAL_SCALE = {
    "wind_speed_ms": 1.0,
    "wind_direction_deg": 60.0,
    "ambient_temp_c": 1.0,
    "power_kw": 50.0,
    "rotor_rpm": 1.0,
    "generator_rpm": 100.0,
    "pitch_angle_deg": 2.0,
    "nacelle_direction_deg": 60.0,
    "vibration_mm_s": 0.3,
    "pitch_hydraulic_pressure_bar": 5.0,
}
SPIKE_SIZE = {
    "wind_speed_ms": 15.0,
    "wind_direction_deg": 120.0,
    "ambient_temp_c": 25.0,
    "power_kw": 1500.0,
    "rotor_rpm": 10.0,
    "generator_rpm": 1000.0,
    "pitch_angle_deg": 30.0,
    "nacelle_direction_deg": 120.0,
    "vibration_mm_s": 12.0,
    "pitch_hydraulic_pressure_bar": 80.0,
}


def _contract_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Field bounds taken from the contract itself so the simulator can never emit an invalid value."""
    low = np.full(N_SIGNALS, -np.inf)
    high = np.full(N_SIGNALS, np.inf)
    for i, name in enumerate(SIGNALS):
        for meta in TelemetryEvent.model_fields[name].metadata:
            if getattr(meta, "ge", None) is not None:
                low[i] = float(meta.ge)
            if getattr(meta, "le", None) is not None:
                high[i] = float(meta.le)
    return low, high


BOUND_LOW, BOUND_HIGH = _contract_bounds()


def _scale(name: str) -> float:
    return SIGNAL_SCALE.get(name, 1.0)  # temperatures: 1 degC


def _spike(name: str) -> float:
    return SPIKE_SIZE.get(name, 40.0 if name.endswith("_c") else 10.0)


@dataclass(frozen=True)
class TurbineSpec:
    """Static description of one turbine."""

    turbine_id: str
    site_id: str
    rated_power_kw: float
    commissioned_on: date


@dataclass
class Chunk:
    """Simulated rows of consecutive steps: ``values`` is (steps, turbines, signals)."""

    step0: int
    values: np.ndarray
    status: np.ndarray


@dataclass
class _State:
    gens: list[np.random.Generator]
    lag: np.ndarray | None = None
    frozen: dict[int, float] = field(default_factory=dict)


class _Sinusoids:
    """Sum of random-phase cosines with unit variance: a stateless, window-independent Gaussian process."""

    def __init__(self, omega: np.ndarray, phase: np.ndarray) -> None:
        self.omega = omega  # (series, components), rad/s
        self.phase = phase
        self.gain = np.sqrt(2.0 / omega.shape[1])

    def __call__(self, t: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Values (len(t), len(rows))."""
        om = self.omega[rows]
        ph = self.phase[rows]
        arg = t[:, None, None] * om[None, :, :] + ph[None, :, :]
        return np.cos(arg).sum(axis=2) * self.gain


class Simulation:
    """Holds static parameters and schedules; ``chunks()`` replays the fleet from the start."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        c = config
        n = c.n_turbines
        self.n = n
        self.n_sites = (n + c.turbines_per_site - 1) // c.turbines_per_site
        self.site_of = np.arange(n) // c.turbines_per_site
        self.turbine_ids = [turbine_id(i, n) for i in range(n)]
        self.site_ids = [site_id(s) for s in range(self.n_sites)]
        self.start_epoch = c.start.timestamp()
        self.chunk_steps = max(1, min(c.n_steps, ROW_BUDGET // n))

        # Site-level climate processes and metadata (each site from its own stream).
        lo, hi = c.commissioned_between
        span = (hi - lo).days
        comm: list[date] = []
        g_om: list[np.ndarray] = []
        g_ph: list[np.ndarray] = []
        tp_om: list[np.ndarray] = []
        tp_ph: list[np.ndarray] = []
        dr_om: list[np.ndarray] = []
        dr_ph: list[np.ndarray] = []
        for s in range(self.n_sites):
            rng = rng_for(c.seed, SITE_DOMAIN, s, 0)
            comm.append(lo + timedelta(days=int(rng.integers(0, span + 1))))
            for om, ph, rows, count, periods in (
                (g_om, g_ph, 2, 12, (6 * 3600.0, 12 * 86400.0)),
                (tp_om, tp_ph, 1, 6, (2 * 86400.0, 20 * 86400.0)),
                (dr_om, dr_ph, 1, 6, (12 * 3600.0, 6 * 86400.0)),
            ):
                log_period = rng.uniform(np.log(periods[0]), np.log(periods[1]), (rows, count))
                om.append(2 * np.pi / np.exp(log_period))
                ph.append(rng.uniform(0, 2 * np.pi, (rows, count)))
        self.site_g = _Sinusoids(np.concatenate(g_om), np.concatenate(g_ph))
        self.site_temp = _Sinusoids(np.concatenate(tp_om), np.concatenate(tp_ph))
        self.site_dir = _Sinusoids(np.concatenate(dr_om), np.concatenate(dr_ph))

        # Per-turbine static parameters (each from the turbine's own stream).
        static = np.empty((n, 12))
        local_omega = np.empty((2 * n, 8))
        local_phase = np.empty((2 * n, 8))
        for i in range(n):
            rng = rng_for(c.seed, TURBINE_DOMAIN, i, STREAM_STATIC)
            static[i] = rng.standard_normal(12)
            local_omega[2 * i : 2 * i + 2] = (
                2 * np.pi / np.exp(rng.uniform(np.log(3600.0), np.log(2 * 86400.0), (2, 8)))
            )
            local_phase[2 * i : 2 * i + 2] = rng.uniform(0, 2 * np.pi, (2, 8))
        self.local_g = _Sinusoids(local_omega, local_phase)
        self.wind_factor = 1.0 + c.climate.turbine_wind_variation * np.clip(static[:, 0], -2.5, 2.5)
        self.temp_offset = 1.5 * np.clip(static[:, 1:7], -2.5, 2.5)
        self.vib_factor = np.exp(0.12 * np.clip(static[:, 7], -2.5, 2.5))
        self.pressure_nominal = 190.0 + 4.0 * np.clip(static[:, 8], -2.5, 2.5)
        self.yaw_offset = 2.0 * np.clip(static[:, 9], -2.5, 2.5)
        self.self_consumption = 10.0 + 2.5 * np.clip(static[:, 10], -2.0, 2.0)
        self.pump_phase = (static[:, 11] * 1000.0) % 1.0
        self.specs = [
            TurbineSpec(
                self.turbine_ids[i],
                self.site_ids[self.site_of[i]],
                c.turbine.rated_power_kw,
                comm[self.site_of[i]],
            )
            for i in range(n)
        ]

        # Incident schedules.
        random_failures = [e for i in range(n) for e in failure_schedule(c, i)]
        self.failures = merge_failures(random_failures, forced_failures(c))
        faults = [f for i in range(n) for f in sensor_fault_schedule(c, i)] + forced_sensor_faults(c)
        self.sensor_faults = sorted(faults, key=lambda f: (f.start_s, f.turbine, f.signal))
        self.curtailments: list[Curtailment] = [
            e for s in range(self.n_sites) for e in curtailment_schedule(c, s)
        ]
        self.heatwaves = heatwave_windows(c, self.n_sites)
        self._fail_span = np.array([[e.onset_s, e.repair_s] for e in self.failures]).reshape(-1, 2)
        self._fault_span = np.array([[f.start_s, f.end_s] for f in self.sensor_faults]).reshape(-1, 2)
        self._curt_span = np.array([[e.start_s, e.end_s] for e in self.curtailments]).reshape(-1, 2)

    # ------------------------------------------------------------------ public helpers
    def step_range(self, start_s: float | None, end_s: float | None) -> tuple[int, int]:
        """Steps [first, last) whose times fall in [start_s, end_s) (seconds since config start)."""
        p = self.config.period_s
        n_steps = self.config.n_steps
        first = 0 if start_s is None else int(np.clip(np.ceil(start_s / p), 0, n_steps))
        last = n_steps if end_s is None else int(np.clip(np.ceil(end_s / p), 0, n_steps))
        return first, max(first, last)

    def chunks(self, first: int = 0, last: int | None = None) -> Iterator[Chunk]:
        """Chunks covering steps [first, last); simulation always replays from step 0."""
        last = self.config.n_steps if last is None else last
        seed = self.config.seed
        state = _State(gens=[rng_for(seed, TURBINE_DOMAIN, i, STREAM_NOISE) for i in range(self.n)])
        step = 0
        while step < last:
            size = min(self.chunk_steps, self.config.n_steps - step)
            values, status = self._simulate(step, size, state)
            lo, hi = max(first, step), min(last, step + size)
            if hi > lo:
                yield Chunk(lo, values[lo - step : hi - step], status[lo - step : hi - step])
            step += size

    # ------------------------------------------------------------------ physics
    def _overlapping(self, spans: np.ndarray, t0: float, t1: float) -> np.ndarray:
        if spans.size == 0:
            return np.empty(0, dtype=int)
        return np.nonzero((spans[:, 0] <= t1) & (spans[:, 1] > t0))[0]

    def _simulate(self, n0: int, size: int, state: _State) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        tm = c.turbine
        cl = c.climate
        n = self.n
        period = float(c.period_s)
        t = (n0 + np.arange(size)) * period  # seconds since start, (L,)
        t_abs = self.start_epoch + t
        t0, t1 = float(t[0]), float(t[-1])
        days = t_abs / 86_400.0
        doy = np.mod(days, 365.2425)
        hour = np.mod(t_abs, 86_400.0) / 3600.0
        site = self.site_of

        z = np.stack([g.standard_normal((size, K_NOISE)) for g in state.gens], axis=1)  # (L, T, K)

        # --- ambient temperature (site climate + heatwaves + turbine offset).
        season_t = np.cos(2 * np.pi * (doy - 200.0) / 365.2425)
        diurnal_t = np.cos(2 * np.pi * (hour - 15.0) / 24.0)
        amb_site = (
            cl.mean_temp_c
            + cl.seasonal_temp_amplitude_c * season_t[:, None]
            + cl.diurnal_temp_amplitude_c * diurnal_t[:, None]
            + cl.weather_temp_std_c * self.site_temp(t_abs)
        )  # (L, S)
        for s, hs, he, delta in self.heatwaves:
            if he >= t0 and hs <= t1:
                ramp = np.clip((t - hs) / 43_200.0, 0, 1) * np.clip((he - t) / 43_200.0, 0, 1)
                amb_site[:, s] += delta * ramp
        ambient = amb_site[:, site] + 0.3 * self.temp_offset[:, 0] / 1.5 + 0.2 * z[:, :, K_AMB]

        # --- wind: Weibull marginal from two Gaussian processes (site-correlated), cycles, turbulence.
        rho = cl.site_correlation
        gs = self.site_g(t_abs)  # (L, 2S)
        gl = self.local_g(t_abs)  # (L, 2T)
        g1 = rho * gs[:, 2 * site] + np.sqrt(1 - rho**2) * gl[:, 0::2]
        g2 = rho * gs[:, 2 * site + 1] + np.sqrt(1 - rho**2) * gl[:, 1::2]
        expo = 0.5 * (g1**2 + g2**2)  # exactly Exp(1) for independent unit Gaussians
        cycle = (1 + cl.seasonal_wind_amplitude * np.cos(2 * np.pi * (doy - 15.0) / 365.2425)) * (
            1 + cl.diurnal_wind_amplitude * np.cos(2 * np.pi * (hour - 14.0) / 24.0)
        )
        scale = cl.weibull_scale_ms * cycle[:, None] * self.wind_factor[None, :]
        ti = cl.turbulence_intensity * min(1.0, np.sqrt(60.0 / period))
        wind = scale * expo ** (1.0 / cl.weibull_shape) * (1 + ti * z[:, :, K_TURB])
        # Rounded like the published reading, so regimes (cut-in, cut-out) agree with what is reported.
        wind = np.round(np.maximum(wind, 0.0), 3)

        wdir = (
            cl.prevailing_direction_deg
            + 50.0 * self.site_dir(t_abs)[:, site]
            + self.yaw_offset[None, :] * 0.5
            + 3.0 * z[:, :, K_DIR]
        )

        # --- incident state: health per mode, downtime, curtailment.
        health = np.zeros((len(FAILURE_MODES), size, n))
        fault = np.zeros((size, n), dtype=bool)
        maint = np.zeros((size, n), dtype=bool)
        down_mode = np.full((size, n), -1, dtype=np.int8)
        for k in self._overlapping(self._fail_span, t0, t1):
            e: FailureEvent = self.failures[k]
            m = FAILURE_MODES.index(e.mode)
            a, b = np.searchsorted(t, [e.onset_s, e.failure_s])
            if b > a:
                health[m, a:b, e.turbine] = e.health(t[a:b])
            b2 = np.searchsorted(t, e.fault_end_s)
            b3 = np.searchsorted(t, e.repair_s)
            fault[b:b2, e.turbine] = True
            maint[b2:b3, e.turbine] = True
            down_mode[b:b3, e.turbine] = m
        limit = np.full((size, n), np.inf)
        for k in self._overlapping(self._curt_span, t0, t1):
            cu = self.curtailments[k]
            a, b = np.searchsorted(t, [cu.start_s, cu.end_s])
            cols = site == cu.site
            limit[a:b, cols] = np.minimum(limit[a:b, cols], cu.limit)
        h_gb, h_gw, h_mb, h_ph, h_cc = (health[FAILURE_MODES.index(m)] for m in FailureMode)
        down = fault | maint

        # --- operating regime, power curve, speeds, pitch.
        rated = tm.rated_power_kw
        run = ~down & (wind >= tm.cut_in_ms) & (wind < tm.cut_out_ms)
        cutout = ~down & (wind >= tm.cut_out_ms)
        lowwind = ~down & (wind < tm.cut_in_ms)
        frac = np.clip((wind**3 - tm.cut_in_ms**3) / (tm.rated_wind_ms**3 - tm.cut_in_ms**3), 0.0, 1.0)
        # Partial load follows the gusts; at rated the controller holds power within a few tenths of %.
        avail = rated * frac * (1 + (0.003 + 0.015 * (1 - frac)) * z[:, :, K_POW])
        avail = np.minimum(avail, rated * (1 + 0.004 * np.abs(z[:, :, K_POW])))
        curtailed = run & (avail > limit * rated)
        power = np.where(curtailed, limit * rated, avail)
        power = np.where(
            run,
            np.clip(power, 0.0, rated * 1.01),
            -self.self_consumption[None, :] * (1 + 0.1 * z[:, :, K_SELF]),
        )
        power = np.where(down, 0.0, power)
        load = np.clip(power / rated, 0.0, 1.0)

        rpm_opt = tm.tip_speed_ratio * wind / tm.rotor_radius_m * 60 / (2 * np.pi)
        rotor = np.clip(rpm_opt, tm.rotor_rpm_min, tm.rotor_rpm_max) * (1 + 0.01 * z[:, :, K_ROT])
        rotor = np.where(curtailed, rotor * (0.7 + 0.3 * limit.clip(0, 1)), rotor)
        idle = np.clip(0.25 * wind, 0.0, 2.0) * (1 + 0.05 * z[:, :, K_ROT])
        rotor = np.where(run, rotor, np.where(lowwind, idle, 0.0))
        rotor = np.clip(rotor, 0.0, None)
        generator = rotor * tm.gear_ratio * (1 + 0.002 * z[:, :, K_GEN])
        speed = rotor / tm.rotor_rpm_max

        above = np.clip(wind - tm.rated_wind_ms, 0.0, None)
        pitch = 0.5 + 2.6 * above**0.8 + 0.3 * z[:, :, K_PITCH]
        pitch = np.where(curtailed, pitch + 12.0 * (1 - limit.clip(0, 1)) * frac, pitch)
        pitch = pitch + h_ph * (1.5 + 3.0 * np.abs(z[:, :, K_PIRR]))  # sluggish, irregular pitch
        parked = np.where(lowwind, 60.0 + 2.0 * z[:, :, K_PITCH], 88.0 + 0.2 * z[:, :, K_PITCH])
        pitch = np.where(run, pitch, parked)
        nacelle = wdir + self.yaw_offset[None, :] + 4.0 * z[:, :, K_NAC]

        # --- component temperatures: steady-state targets followed through a first-order lag.
        amb = ambient
        heat = 1 + np.clip(amb - 15.0, 0.0, None) / 8.0
        targets = (
            np.stack(
                [
                    amb + 6 + 38 * load + 3 * h_gb,
                    amb + 9 + 46 * load + h_gb * (6 + 30 * load),
                    amb + 12 + 75 * load**1.4 + h_gw * (8 + 45 * load),
                    amb + 8 + 30 * load + 10 * speed,
                    amb + 4 + 16 * speed + 4 * load + h_mb * (5 + 20 * speed),
                    amb + 10 + 28 * load + h_cc * (4 + 22 * load) * heat,
                ],
                axis=2,
            )
            + self.temp_offset[None, :, :]
        )  # (L, T, 6)
        temps = self._lag(targets, state)
        temps = temps + TEMP_NOISE_C * z[:, :, K_T0 : K_T0 + 6]

        # --- vibration and pitch hydraulics.
        vib = (0.4 + 2.0 * speed**2 + 0.6 * load) * self.vib_factor[None, :]
        vib = vib + h_gb**1.2 * (2.5 + 6.0 * load) + h_mb**1.2 * (1.5 + 3.5 * speed) + 0.4 * h_ph * speed
        vib = vib * np.exp(0.08 * z[:, :, K_VIB] + 0.25 * (h_gb + h_mb) * z[:, :, K_VIB2])
        vib = np.where(run, vib, 0.1 * (1 + 0.2 * np.abs(z[:, :, K_VIB])) + 0.3 * speed)

        saw = np.mod(t[:, None] / 1800.0 + self.pump_phase[None, :], 1.0) - 0.5
        pressure = (
            self.pressure_nominal[None, :]
            + 8.0 * saw * (1 + 3 * h_ph)
            - 5.0 * np.clip(above / 8.0, 0, 1)
            - 70.0 * h_ph**1.2
            + 1.5 * z[:, :, K_PRES]
        )
        pitch_down = down_mode == FAILURE_MODES.index(FailureMode.PITCH_HYDRAULIC)
        pressure = np.where(pitch_down & fault, 35.0 + 3.0 * z[:, :, K_PRES], pressure)
        pressure = np.where(maint, 150.0 + 2.0 * z[:, :, K_PRES], pressure)

        # --- status (from true values; faulty sensors never raise alarms).
        status = np.full((size, n), STATUS_OK, dtype=np.int16)
        status[lowwind] = STATUS_LOW_WIND
        status[curtailed] = STATUS_CURTAILED
        status[cutout] = STATUS_HIGH_WIND_CUTOUT
        status[~down & (pressure < ALARM_PRESSURE_BAR)] = STATUS_ALARM_PRESSURE
        status[~down & (vib > ALARM_VIBRATION_MM_S)] = STATUS_ALARM_VIBRATION
        hot = np.zeros((size, n), dtype=bool)
        for j, name in enumerate(TEMPS):
            if name in ALARM_TEMP_C:
                hot |= temps[:, :, j] > ALARM_TEMP_C[name]
        status[~down & hot] = STATUS_ALARM_TEMPERATURE
        status[fault] = STATUS_FAULT
        status[maint] = STATUS_MAINTENANCE

        out = np.empty((size, n, N_SIGNALS))
        out[:, :, SIG["wind_direction_deg"]] = np.mod(wdir, 360.0)
        out[:, :, SIG["ambient_temp_c"]] = ambient
        out[:, :, SIG["power_kw"]] = power
        out[:, :, SIG["rotor_rpm"]] = rotor
        out[:, :, SIG["generator_rpm"]] = generator
        out[:, :, SIG["pitch_angle_deg"]] = pitch
        out[:, :, SIG["nacelle_direction_deg"]] = np.mod(nacelle, 360.0)
        for j, name in enumerate(TEMPS):
            out[:, :, SIG[name]] = temps[:, :, j]
        out[:, :, SIG["vibration_mm_s"]] = vib
        out[:, :, SIG["pitch_hydraulic_pressure_bar"]] = pressure
        # The anemometer reading drives the power curve: keep "no power below cut-in" exact.
        out[:, :, SIG["wind_speed_ms"]] = wind

        self._apply_sensor_faults(out, t, state)
        np.round(out, 3, out=out)
        np.clip(out, BOUND_LOW, BOUND_HIGH, out=out)
        for j in (SIG["wind_direction_deg"], SIG["nacelle_direction_deg"]):
            out[:, :, j] = np.mod(out[:, :, j], 360.0)
        return out, status

    def _lag(self, targets: np.ndarray, state: _State) -> np.ndarray:
        """First-order lag y[k] = a*y[k-1] + (1-a)*x[k]; exact and chunk-independent (state carried)."""
        a = np.exp(-self.config.period_s / TAU_S)
        bx = targets * (1 - a)
        y = targets[0].copy() if state.lag is None else state.lag.copy()
        out = np.empty_like(targets)
        for k in range(targets.shape[0]):
            y *= a
            y += bx[k]
            out[k] = y
        state.lag = y
        return out

    def _apply_sensor_faults(self, out: np.ndarray, t: np.ndarray, state: _State) -> None:
        for k in self._overlapping(self._fault_span, float(t[0]), float(t[-1])):
            f: SensorFault = self.sensor_faults[k]
            a, b = np.searchsorted(t, [f.start_s, f.end_s])
            if b <= a:
                continue
            col = out[a:b, f.turbine, f.signal]
            name = SIGNALS[f.signal]
            if f.kind is SensorFaultKind.FROZEN:
                if k not in state.frozen:
                    state.frozen[k] = float(np.round(col[0], 3))
                col[:] = state.frozen[k]
            elif f.kind is SensorFaultKind.DROPOUT:
                col[:] = np.nan
            elif f.kind is SensorFaultKind.SPIKE:
                sign = -1.0 if name.endswith("_bar") else 1.0
                col += sign * f.magnitude * _spike(name)
            else:  # drift: grows linearly from the fault start, on this one signal only
                col += f.magnitude * _scale(name) * (t[a:b] - f.start_s) / 86_400.0

    def describe(self) -> dict[str, Any]:
        """Small summary for the CLI."""
        return {
            "turbines": self.n,
            "sites": self.n_sites,
            "steps": self.config.n_steps,
            "rows": self.n * self.config.n_steps,
            "failures": len(self.failures),
            "sensor_faults": len(self.sensor_faults),
            "curtailments": len(self.curtailments),
        }
