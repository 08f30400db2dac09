"""Small synthetic telemetry with known failures, so model tests do not depend on the simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from common.contracts import SIGNALS, STATUS_MAINTENANCE, STATUS_OK

START = datetime(2024, 1, 1, tzinfo=UTC)


def synth_fleet(
    n_turbines: int = 4,
    days: float = 60.0,
    period_s: int = 600,
    seed: int = 0,
    failures_per_turbine: int = 1,
    degradation_days: float = 12.0,
    repair_hours: float = 24.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Telemetry rows (contract columns) and failures (turbine_id, mode, onset/failure/repair times).

    Gearbox bearing temperature drifts above its load-driven normal value during degradation, so a
    model can learn the failure; maintenance status covers the repair.
    """
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / period_s)
    t = pd.date_range(START, periods=n, freq=f"{period_s}s", tz="UTC")
    frames, failures = [], []
    hours = np.arange(n) * period_s / 3600.0
    for i in range(n_turbines):
        tid = f"WT-{i + 1:03d}"
        wind = np.clip(7 + 3 * np.sin(hours / 17.0 + i) + rng.normal(0, 1.5, n), 0, 30)
        power = np.clip((wind - 3) / 9, 0, 1) ** 3 * 2250
        amb = 8 + 5 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.5, n)
        drift = np.zeros(n)
        status = np.full(n, STATUS_OK)
        for k in range(failures_per_turbine):
            fail_day = days * (k + 1) / (failures_per_turbine + 1) + rng.uniform(-3, 3)
            f_idx = int(fail_day * 86400 / period_s)
            o_idx = max(0, f_idx - int(degradation_days * 86400 / period_s))
            r_idx = min(n, f_idx + int(repair_hours * 3600 / period_s))
            drift[o_idx:f_idx] = np.linspace(0, 25, f_idx - o_idx)
            status[f_idx:r_idx] = STATUS_MAINTENANCE
            failures.append(
                {
                    "turbine_id": tid,
                    "mode": "gearbox_bearing",
                    "onset_time": t[o_idx],
                    "failure_time": t[f_idx],
                    "repair_time": t[min(r_idx, n - 1)],
                }
            )
        down = status == STATUS_MAINTENANCE
        power = np.where(down, 0.0, power)
        base = 35 + 0.012 * power + 0.6 * amb
        df = pd.DataFrame(
            {
                "event_id": [f"{tid}-{j}" for j in range(n)],
                "turbine_id": tid,
                "site_id": "SITE-A",
                "event_time": t,
                "wind_speed_ms": wind,
                "wind_direction_deg": 240.0,
                "ambient_temp_c": amb,
                "power_kw": power,
                "rotor_rpm": 12.0,
                "generator_rpm": 1200.0,
                "pitch_angle_deg": 2.0,
                "nacelle_direction_deg": 240.0,
                "gearbox_oil_temp_c": base + rng.normal(0, 0.5, n),
                "gearbox_bearing_temp_c": base + 8 + drift + rng.normal(0, 0.5, n),
                "generator_winding_temp_c": base + 20 + rng.normal(0, 0.5, n),
                "generator_bearing_temp_c": base + 2 + rng.normal(0, 0.5, n),
                "main_bearing_temp_c": 20 + 0.5 * amb + 0.002 * power + rng.normal(0, 0.3, n),
                "vibration_mm_s": 1.5 + 0.0005 * power + 0.05 * drift + rng.normal(0, 0.1, n),
                "converter_temp_c": 30 + 0.005 * power + 0.5 * amb + rng.normal(0, 0.4, n),
                "pitch_hydraulic_pressure_bar": 180 + rng.normal(0, 2, n),
                "status_code": status,
            }
        )
        frames.append(df)
    frame = pd.concat(frames, ignore_index=True)
    assert set(SIGNALS) <= set(frame.columns)
    return frame, pd.DataFrame(failures)


def events_of(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts with python datetimes and None for missing values."""
    out = []
    for rec in frame.to_dict("records"):
        rec["event_time"] = rec["event_time"].to_pydatetime()
        for k, v in rec.items():
            if isinstance(v, float) and v != v:
                rec[k] = None
        out.append(rec)
    return out


def start_plus(hours: float) -> datetime:
    return START + timedelta(hours=hours)
