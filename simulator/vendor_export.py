"""A vendor-like 10-minute SCADA export of a small fleet, with injected underperformance and ground truth.

Why: onboarding a real fleet means reading files the cockpit did not write. This export looks like an
operator's download from a turbine vendor's portal (the layout of public 10-minute SCADA datasets):
operational signals only, string turbine ids (``T01``...), local time in Europe/Paris written with its
UTC offset (``+01:00`` in winter, ``+02:00`` in summer), sentinels (``-273.2`` for a dead temperature
probe, ``9999`` for a missing value), the exporter's daylight-saving bug (each row is labelled with the
offset in force at the END of its local day: 12 duplicated UTC times and a 70-minute gap per turbine
each spring, 6 duplicates and a 70-minute gap each autumn), negative power of stopped turbines
(auxiliary consumption), hours of missing rows (communication losses), a metadata file and a mapping
file that imports it all (``python -m producers convert|replay|register --mapping DIR/mapping.yaml``).

Physics: the simulator engine (:class:`simulator.engine.Simulation`) gives wind, direction, ambient
temperature, power, pitch and rotor speed; random failures and sensor faults are switched off (their
signatures live in signals this export does not have). Underperformance is then applied physically:

* ``derating``: power capped at ``magnitude`` x rated; the controller pitches to shed the rest;
* ``pitch_fault``: a pitch offset of ``magnitude`` degrees: reported pitch higher for the wind, the
  aerodynamic efficiency drops by 3 % per degree (power below rated falls; rated is reached later);
* ``yaw_misalignment``: the nacelle points ``magnitude`` degrees off the wind: the nacelle direction
  is offset from the wind direction and the aerodynamic power scales with cos^3(offset).

Ground truth (``ground_truth.csv``): ``turbine`` (cockpit id), ``kind``, ``start``, ``end`` (UTC),
``magnitude``, ``unit``, ``vendor_turbine``. The first turbine is always healthy; every kind occurs at
least once. Deterministic for a seed; pure (numpy/pandas/pyarrow, no Kafka or database).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from common.contracts import STATUS_FAULT, STATUS_MAINTENANCE
from simulator.config import FleetConfig
from simulator.engine import SIG, Simulation

KINDS: tuple[str, ...] = ("derating", "pitch_fault", "yaw_misalignment")
MAGNITUDE_UNITS = {"derating": "fraction_of_rated", "pitch_fault": "deg", "yaw_misalignment": "deg"}
TIMEZONE = "Europe/Paris"
SITE_ID = "V-SITE-A"
DELIMITER = ";"
SENTINEL_TEMPERATURE = -273.2
SENTINEL_MISSING = 9999.0
#: Aerodynamic efficiency lost per degree of pitch offset (a few degrees cost 10-20 % below rated).
PITCH_LOSS_PER_DEG = 0.03
MIN_DAYS = 7.0

#: Export columns (vendor names) and what they hold.
SCADA_COLUMNS: dict[str, str] = {
    "Wind_turbine_name": "vendor turbine id",
    "Date_time": "local time with its UTC offset (ISO 8601), start of the 10-min period",
    "Ws1_avg": "wind speed, anemometer 1, m/s (9999 = missing)",
    "Ws2_avg": "wind speed, anemometer 2, m/s (9999 = missing)",
    "Ws_min": "wind speed minimum over the period, m/s",
    "Ws_max": "wind speed maximum over the period, m/s",
    "Ws_std": "wind speed standard deviation over the period, m/s",
    "Wa_avg": "wind direction, deg",
    "Ya_avg": "nacelle direction, deg",
    "Ot_avg": "outdoor temperature, degC (-273.2 = probe failed)",
    "P_avg": "active power, kW (negative when stopped: auxiliary consumption)",
    "Ba_avg": "blade pitch angle, deg (9999 = missing)",
    "Rs_avg": "rotor speed, rpm (NaN = missing)",
}
METADATA_COLUMNS = (
    "Turbine",
    "Manufacturer",
    "Model",
    "Rated power (MW)",
    "Rotor diameter (m)",
    "Hub height (m)",
    "Latitude",
    "Longitude",
    "Commissioning date",
)
GROUND_TRUTH_COLUMNS = ("turbine", "kind", "start", "end", "magnitude", "unit", "vendor_turbine")


class VendorExportError(ValueError):
    """Options that cannot give a meaningful export (the message says which and why)."""


@dataclass(frozen=True)
class InjectedFault:
    """One underperformance period of one turbine (``end`` exclusive, UTC)."""

    turbine_index: int
    vendor_id: str
    turbine_id: str
    kind: str
    start: datetime
    end: datetime
    magnitude: float

    @property
    def unit(self) -> str:
        return MAGNITUDE_UNITS[self.kind]


@dataclass(frozen=True)
class VendorExportResult:
    """Where the files went, how many rows, how long it took."""

    directory: Path
    scada: Path
    metadata: Path
    mapping: Path
    ground_truth: Path
    rows: int
    steps: int
    turbines: int
    faults: tuple[InjectedFault, ...]
    seconds: float


def vendor_id(index: int) -> str:
    return f"T{index + 1:02d}"


def cockpit_id(index: int) -> str:
    return f"V-WT-{index + 1:03d}"


def export_start(day: date, zone: str = TIMEZONE) -> datetime:
    """Local midnight of ``day`` in ``zone``, as UTC (the export starts at the beginning of a local day)."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def fleet_config(turbines: int, days: float, seed: int, start: date) -> FleetConfig:
    """The simulator configuration behind the export: one site, no random failures or sensor faults."""
    return FleetConfig.model_validate(
        {
            "seed": seed,
            "n_turbines": turbines,
            "turbines_per_site": turbines,
            "start": export_start(start),
            "duration_days": days,
            "period_s": 600,
            "failures": {"random_enabled": False},
            "sensor_faults": {"random_enabled": False},
        }
    )


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x56454E44, stream])))


def plan_faults(turbines: int, days: float, seed: int, start: datetime) -> list[InjectedFault]:
    """Underperformance periods (pure, deterministic): turbine 1 healthy, every kind at least once.

    Faults fall in the last 65 % of the export (the first third is healthy history for calibration),
    last a few days to three weeks, and never overlap on one turbine.
    """
    if turbines < 2:
        raise VendorExportError("--turbines must be at least 2 (one healthy turbine and one with faults)")
    if days < MIN_DAYS:
        raise VendorExportError(f"--days must be at least {MIN_DAYS:g} (faults last days to weeks)")
    rng = _rng(seed, 1)
    faulty = list(range(1, turbines))
    assignments: dict[int, list[str]] = {i: [] for i in faulty}
    for k, kind in enumerate(KINDS):
        assignments[faulty[k % len(faulty)]].append(kind)
    for i in faulty[len(KINDS) :]:  # larger fleets: some more turbines with one fault, others healthy
        if rng.random() < 0.5:
            assignments[i].append(str(rng.choice(KINDS)))
    span_start, span_end = days * 0.35, days - 0.5
    out: list[InjectedFault] = []
    for i, kinds in assignments.items():
        if not kinds:
            continue
        slot = (span_end - span_start) / len(kinds)
        for k, kind in enumerate(kinds):
            lo = span_start + k * slot
            duration = rng.uniform(min(3.0, slot * 0.4), min(21.0, slot * 0.8))
            begin = rng.uniform(lo, lo + slot - duration)
            first = start + timedelta(hours=round(begin * 24))
            last = start + timedelta(hours=round((begin + duration) * 24))
            magnitude = {
                "derating": round(float(rng.uniform(0.5, 0.75)), 2),
                "pitch_fault": round(float(rng.uniform(4.0, 8.0)), 1),
                "yaw_misalignment": round(float(rng.uniform(12.0, 20.0)), 1),
            }[kind]
            out.append(InjectedFault(i, vendor_id(i), cockpit_id(i), kind, first, last, magnitude))
    return sorted(out, key=lambda f: (f.start, f.turbine_index))


def _spans(
    rng: np.random.Generator, n_steps: int, per_day: float, hours: tuple[float, float]
) -> list[tuple[int, int]]:
    """Random [first, last) step spans: Poisson count at ``per_day``, durations uniform in ``hours``."""
    count = int(rng.poisson(per_day * n_steps / 144))
    starts = rng.integers(0, max(1, n_steps), count)
    lengths = np.round(rng.uniform(hours[0], hours[1], count) * 6).astype(int)
    return [
        (int(s), int(min(n_steps, s + max(1, length)))) for s, length in zip(starts, lengths, strict=True)
    ]


@dataclass
class _Artefacts:
    """Vendor-side artefacts, scheduled once for the whole export: (turbine or -1 = all, first, last)."""

    outages: list[tuple[int, int, int]]
    dead_probe: list[tuple[int, int, int]]
    dead_anemometer: list[tuple[int, int, int]]


def _artefacts(seed: int, turbines: int, n_steps: int) -> _Artefacts:
    rng = _rng(seed, 2)
    outages = [(-1, a, b) for a, b in _spans(rng, n_steps, 1 / 60, (2.0, 8.0))]  # site datalogger
    probe: list[tuple[int, int, int]] = []
    anemo: list[tuple[int, int, int]] = []
    for i in range(turbines):
        outages += [(i, a, b) for a, b in _spans(rng, n_steps, 1 / 20, (1.0, 12.0))]
        probe += [(i, a, b) for a, b in _spans(rng, n_steps, 1 / 60, (3.0, 48.0))]
        anemo += [(i, a, b) for a, b in _spans(rng, n_steps, 1 / 120, (24.0, 72.0))]
    return _Artefacts(outages, probe, anemo)


def _span_mask(spans: list[tuple[int, int, int]], step0: int, steps: int, turbines: int) -> np.ndarray:
    mask = np.zeros((steps, turbines), dtype=bool)
    for who, a, b in spans:
        lo, hi = max(a, step0) - step0, min(b, step0 + steps) - step0
        if hi > lo:
            if who < 0:
                mask[lo:hi, :] = True
            else:
                mask[lo:hi, who] = True
    return mask


def _offset_text(seconds: float) -> str:
    sign = "+" if seconds >= 0 else "-"
    total = int(abs(seconds)) // 60
    return f"{sign}{total // 60:02d}:{total % 60:02d}"


def local_labels(times_utc: np.ndarray, zone: str = TIMEZONE) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SS+hh:mm`` local wall time, labelled with the offset at the END of its local
    day (the exporter's daylight-saving bug: on change days the rows before the change carry the wrong
    offset)."""
    index = pd.DatetimeIndex(times_utc).tz_localize(UTC).tz_convert(zone)
    wall = index.tz_localize(None)
    days = wall.normalize()
    unique_days = days.unique()
    tz = ZoneInfo(zone)
    label_of = {
        d: _offset_text(
            (datetime(d.year, d.month, d.day, 23, 0, tzinfo=tz).utcoffset() or timedelta(0)).total_seconds()
        )
        for d in unique_days
    }
    labels = pd.Series(days).map(label_of).to_numpy(dtype=str)
    text = np.datetime_as_string(wall.to_numpy().astype("datetime64[s]"), unit="s")
    return np.char.add(text, labels)


def _apply_faults(
    faults: list[InjectedFault],
    times: np.ndarray,
    values: np.ndarray,
    status: np.ndarray,
    config: FleetConfig,
) -> None:
    """Underperformance applied in place on (steps, turbines, signals) values of one chunk."""
    tm = config.turbine
    rated = tm.rated_power_kw
    wind = values[:, :, SIG["wind_speed_ms"]]
    down = (status == STATUS_FAULT) | (status == STATUS_MAINTENANCE)
    running = ~down & (wind >= tm.cut_in_ms) & (wind < tm.cut_out_ms)
    with np.errstate(invalid="ignore"):
        aero = np.clip((wind**3 - tm.cut_in_ms**3) / (tm.rated_wind_ms**3 - tm.cut_in_ms**3), 0.0, None)
    first, last = times[0], times[-1]
    for fault in faults:
        start64 = np.datetime64(fault.start.replace(tzinfo=None), "s")
        end64 = np.datetime64(fault.end.replace(tzinfo=None), "s")
        if end64 <= first or start64 > last:
            continue
        rows = (times >= start64) & (times < end64)
        i = fault.turbine_index
        active = rows & running[:, i]
        power = values[:, i, SIG["power_kw"]]
        pitch = values[:, i, SIG["pitch_angle_deg"]]
        rotor = values[:, i, SIG["rotor_rpm"]]
        before = power.copy()
        if fault.kind == "derating":
            cap = fault.magnitude * rated
            shed = active & (power > cap)
            with np.errstate(invalid="ignore", divide="ignore"):
                pitch[shed] += 2.0 + 12.0 * (1.0 - cap / power[shed])
            power[shed] = cap
        else:
            if fault.kind == "pitch_fault":
                factor = max(0.0, 1.0 - PITCH_LOSS_PER_DEG * fault.magnitude)
                pitch[active] += fault.magnitude
            else:
                factor = float(np.cos(np.radians(fault.magnitude)) ** 3)
                nacelle = values[:, i, SIG["nacelle_direction_deg"]]
                nacelle[rows] = np.mod(nacelle[rows] + fault.magnitude, 360.0)
            r = aero[:, i]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.minimum(1.0, r * factor) / np.minimum(1.0, r)
            hit = active & (power > 0) & (r > 0)
            power[hit] = power[hit] * ratio[hit]
        slower = active & (before > 0) & (power < before)
        with np.errstate(invalid="ignore", divide="ignore"):
            rotor[slower] = np.maximum(
                tm.rotor_rpm_min * 0.9, rotor[slower] * np.cbrt(power[slower] / before[slower])
            )


def _mapping_document(turbines: int) -> dict[str, Any]:
    table = {vendor_id(i): {"turbine_id": cockpit_id(i), "site_id": SITE_ID} for i in range(turbines)}
    return {
        "format": "csv",
        "csv": {"delimiter": DELIMITER, "decimal": "."},
        "timestamp": {"column": "Date_time", "format": "iso", "timezone": TIMEZONE},
        "turbine_id": {"column": "Wind_turbine_name"},
        "turbines": table,
        "na_values": [SENTINEL_MISSING, "NaN"],
        "fields": {
            "wind_speed_ms": {
                "sources": ["Ws1_avg", "Ws2_avg"],
                "aggregate": "mean",
                "unit": "m/s",
                "stats": {"min": "Ws_min", "max": "Ws_max", "std": "Ws_std"},
            },
            "wind_direction_deg": {"source": "Wa_avg"},
            "ambient_temp_c": {
                "source": "Ot_avg",
                "unit": "degC",
                "na_values": [SENTINEL_TEMPERATURE],
                "on_invalid": "null",
            },
            "power_kw": {"source": "P_avg", "unit": "kW"},
            "rotor_rpm": {"source": "Rs_avg", "unit": "rpm"},
            "pitch_angle_deg": {"source": "Ba_avg", "unit": "deg", "on_invalid": "null"},
            "nacelle_direction_deg": {"source": "Ya_avg"},
        },
        "metadata": {
            "file": "metadata.csv",
            "csv": {"delimiter": DELIMITER},
            "turbine": "Turbine",
            "columns": {
                "manufacturer": "Manufacturer",
                "model": "Model",
                "rated_power_kw": {"column": "Rated power (MW)", "unit": "MW"},
                "rotor_diameter_m": "Rotor diameter (m)",
                "hub_height_m": "Hub height (m)",
                "latitude": "Latitude",
                "longitude": "Longitude",
                "commissioning_date": {"column": "Commissioning date", "format": "%d/%m/%Y"},
            },
        },
    }


MAPPING_HEADER = """\
# Mapping of this vendor export onto the cockpit (written by `python -m simulator vendor-export`).
#   python -m producers convert  --mapping mapping.yaml --input scada.csv --out contract.parquet
#   python -m producers register --mapping mapping.yaml --out fleet.yaml
#   python -m producers replay scada.csv --mapping mapping.yaml
# Vendor ids T01.. become V-WT-001.. on site V-SITE-A; the two anemometers are averaged; 9999 and NaN
# are "no value"; -273.2 is a failed temperature probe; a bad pitch or temperature value is nulled
# (the row is kept); Ws_min/Ws_max/Ws_std are not in the contract and are not published.
"""


def _write_metadata(path: Path, sim: Simulation, config: FleetConfig, seed: int) -> None:
    rng = _rng(seed, 3)
    n = sim.n
    rows = {
        "Turbine": [vendor_id(i) for i in range(n)],
        "Manufacturer": ["Windmaster"] * n,
        "Model": [f"WM{config.turbine.rated_power_kw / 1000:g}-{2 * config.turbine.rotor_radius_m:g}"] * n,
        "Rated power (MW)": [config.turbine.rated_power_kw / 1000.0] * n,
        "Rotor diameter (m)": [2 * config.turbine.rotor_radius_m] * n,
        "Hub height (m)": [80.0] * n,
        "Latitude": np.round(47.41 + 0.004 * np.arange(n) + rng.normal(0, 0.0005, n), 5).tolist(),
        "Longitude": np.round(1.72 + 0.006 * np.arange(n) + rng.normal(0, 0.0005, n), 5).tolist(),
        "Commissioning date": [spec.commissioned_on.strftime("%d/%m/%Y") for spec in sim.specs],
    }
    table = pa.table(rows)
    pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter=DELIMITER, quoting_style="none"))


def _write_ground_truth(path: Path, faults: list[InjectedFault]) -> None:
    frame = pd.DataFrame(
        [
            (
                f.turbine_id,
                f.kind,
                f.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                f.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                f.magnitude,
                f.unit,
                f.vendor_id,
            )
            for f in faults
        ],
        columns=list(GROUND_TRUTH_COLUMNS),
    )
    frame.to_csv(path, index=False)


def read_ground_truth(path: str | Path) -> pd.DataFrame:
    """``ground_truth.csv`` with ``start``/``end`` as UTC timestamps."""
    frame = pd.read_csv(path)
    for col in ("start", "end"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def vendor_export(
    out_dir: str | Path,
    *,
    turbines: int = 4,
    days: float = 400.0,
    seed: int = 7,
    start: date = date(2024, 1, 1),
    on_progress: Callable[[int], None] | None = None,
) -> VendorExportResult:
    """Write ``scada.csv``, ``metadata.csv``, ``mapping.yaml`` and ``ground_truth.csv`` into ``out_dir``."""
    started = time.perf_counter()
    out = Path(out_dir)
    config = fleet_config(turbines, days, seed, start)
    faults = plan_faults(turbines, days, seed, config.start)
    sim = Simulation(config)
    n = sim.n
    artefacts = _artefacts(seed, n, config.n_steps)
    rng = _rng(seed, 4)
    out.mkdir(parents=True, exist_ok=True)
    scada = out / "scada.csv"
    tmp = out / "scada.csv.partial"
    start64 = np.datetime64(config.start.replace(tzinfo=None), "s")
    ids = np.array([vendor_id(i) for i in range(n)], dtype=object)
    writer: pacsv.CSVWriter | None = None
    rows = 0
    try:
        for chunk in sim.chunks():
            steps = chunk.values.shape[0]
            times = start64 + (chunk.step0 + np.arange(steps)) * np.timedelta64(config.period_s, "s")
            values = chunk.values.copy()
            _apply_faults(faults, times, values, chunk.status, config)
            table = _chunk_table(values, times, ids, artefacts, chunk.step0, rng)
            if writer is None:
                options = pacsv.WriteOptions(delimiter=DELIMITER, quoting_style="none")
                writer = pacsv.CSVWriter(str(tmp), table.schema, write_options=options)
            writer.write_table(table)
            rows += table.num_rows
            if on_progress is not None:
                on_progress(steps * n)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(scada)
    metadata = out / "metadata.csv"
    _write_metadata(metadata, sim, config, seed)
    mapping = out / "mapping.yaml"
    mapping.write_text(
        MAPPING_HEADER + yaml.safe_dump(_mapping_document(n), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    truth = out / "ground_truth.csv"
    _write_ground_truth(truth, faults)
    return VendorExportResult(
        out,
        scada,
        metadata,
        mapping,
        truth,
        rows,
        config.n_steps,
        n,
        tuple(faults),
        time.perf_counter() - started,
    )


def _chunk_table(
    values: np.ndarray,
    times: np.ndarray,
    ids: np.ndarray,
    artefacts: _Artefacts,
    step0: int,
    rng: np.random.Generator,
) -> pa.Table:
    """One chunk in the vendor layout (rows time-major, missing rows left out, sentinels written)."""
    steps, n, _ = values.shape
    shape = (steps, n)
    wind = values[:, :, SIG["wind_speed_ms"]]
    ws1 = np.maximum(0.0, wind * (1 + 0.01 * rng.standard_normal(shape)) + 0.05 * rng.standard_normal(shape))
    ws2 = np.maximum(0.0, 2 * wind - ws1)  # the two anemometers average to the engine's wind
    std = wind * (0.06 + 0.1 * rng.random(shape)) + 0.05
    ws_min = np.maximum(0.0, wind - std * (1.5 + rng.random(shape)))
    ws_max = wind + std * (1.8 + rng.random(shape))
    ambient = values[:, :, SIG["ambient_temp_c"]].copy()
    pitch = values[:, :, SIG["pitch_angle_deg"]].copy()

    dead_probe = _span_mask(artefacts.dead_probe, step0, steps, n) | (rng.random(shape) < 5e-4)
    ambient[dead_probe] = SENTINEL_TEMPERATURE
    dead_anemo = _span_mask(artefacts.dead_anemometer, step0, steps, n)
    ws2 = np.where(dead_anemo, SENTINEL_MISSING, ws2)
    ws1 = np.where(rng.random(shape) < 5e-4, SENTINEL_MISSING, ws1)
    pitch = np.where(rng.random(shape) < 3e-4, SENTINEL_MISSING, pitch)
    pitch = np.where(rng.random(shape) < 1e-4, -45.0, pitch)  # encoder glitch: outside the contract
    rotor_missing = rng.random(shape) < 3e-4

    keep = ~_span_mask(artefacts.outages, step0, steps, n)
    flat = keep.reshape(-1)
    labels = np.repeat(local_labels(times), n)[flat]

    def column(data: np.ndarray) -> pa.Array:
        return pa.array(np.round(data, 2).reshape(-1)[flat], pa.float64())

    rotor_text = pc.cast(column(values[:, :, SIG["rotor_rpm"]]), pa.string())
    rotor_text = pc.if_else(pa.array(rotor_missing.reshape(-1)[flat]), pa.scalar("NaN"), rotor_text)
    return pa.table(
        {
            "Wind_turbine_name": pa.array(np.tile(ids, steps)[flat], pa.string()),
            "Date_time": pa.array(labels, pa.string()),
            "Ws1_avg": column(ws1),
            "Ws2_avg": column(ws2),
            "Ws_min": column(ws_min),
            "Ws_max": column(ws_max),
            "Ws_std": column(std),
            "Wa_avg": column(values[:, :, SIG["wind_direction_deg"]]),
            "Ya_avg": column(values[:, :, SIG["nacelle_direction_deg"]]),
            "Ot_avg": column(ambient),
            "P_avg": column(values[:, :, SIG["power_kw"]]),
            "Ba_avg": column(pitch),
            "Rs_avg": rotor_text,
        }
    )


__all__ = [
    "GROUND_TRUTH_COLUMNS",
    "KINDS",
    "SCADA_COLUMNS",
    "InjectedFault",
    "VendorExportError",
    "VendorExportResult",
    "local_labels",
    "plan_faults",
    "read_ground_truth",
    "vendor_export",
]
