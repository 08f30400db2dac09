"""Public face of the simulator: a fleet you can turn into a DataFrame, a record stream or ground truth."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from common.contracts import EVENT_ID_NAMESPACE, SIGNALS
from simulator.config import FleetConfig
from simulator.engine import Chunk, Simulation, TurbineSpec

__all__ = ["COLUMNS", "Fleet", "GroundTruth", "TurbineSpec", "event_ids"]

COLUMNS: tuple[str, ...] = ("event_id", "turbine_id", "site_id", "event_time", *SIGNALS, "status_code")
FAILURE_COLUMNS = (
    "turbine_id",
    "site_id",
    "mode",
    "onset_time",
    "failure_time",
    "maintenance_start",
    "repair_time",
    "forced",
)
SENSOR_FAULT_COLUMNS = ("turbine_id", "signal", "kind", "start", "end", "magnitude", "forced")

_NS = EVENT_ID_NAMESPACE.bytes
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES = (8, 13, 18, 23)
_NIBBLE_POS = np.array([i for i in range(36) if i not in _DASHES])

TimeLike = datetime | pd.Timestamp | str | None


@dataclass(frozen=True)
class GroundTruth:
    """What really happened: failures (with onset/failure/repair times) and sensor faults."""

    failures: pd.DataFrame
    sensor_faults: pd.DataFrame


def event_ids(turbine_ids: list[str], stamps: list[str]) -> pa.Array:
    """``make_event_id`` for every (stamp, turbine) pair, time-major, vectorised except the SHA-1 itself.

    Why: uuid5 per row through the uuid module costs more than the whole physics of a 2-year export.
    ``stamps`` are ``%Y-%m-%dT%H:%M:%S.%fZ`` strings, exactly as ``make_event_id`` formats them.
    """
    sha1 = hashlib.sha1
    prefixes = [_NS + f"{tid}|".encode() for tid in turbine_ids]
    encoded = [s.encode() for s in stamps]
    digests = b"".join([sha1(p + s).digest() for s in encoded for p in prefixes])
    raw = np.frombuffer(digests, dtype=np.uint8).reshape(-1, 20)[:, :16].copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x50  # version 5
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = np.full((raw.shape[0], 36), ord("-"), dtype=np.uint8)
    nibbles = np.empty((raw.shape[0], 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    text[:, _NIBBLE_POS] = _HEX[nibbles]
    binary = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(36), raw.shape[0], [None, pa.py_buffer(text.tobytes())]
    )
    return binary.cast(pa.binary()).cast(pa.string())


def _stamps(times: np.ndarray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(times, unit="us").tolist()]


class Fleet:
    """A simulated fleet; every method replays the simulation from the configured start (deterministic)."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self._sim = Simulation(config)
        self.turbines: list[TurbineSpec] = self._sim.specs
        self._start64 = np.datetime64(config.start.replace(tzinfo=None), "us")

    # ------------------------------------------------------------------ windows
    def _seconds(self, value: TimeLike) -> float | None:
        if value is None:
            return None
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return (ts.to_pydatetime() - self.config.start).total_seconds()

    def _chunks(self, start: TimeLike, end: TimeLike) -> Iterator[Chunk]:
        first, last = self._sim.step_range(self._seconds(start), self._seconds(end))
        if last <= first:
            return iter(())
        return self._sim.chunks(first, last)

    def _times(self, chunk: Chunk) -> np.ndarray:
        steps = chunk.step0 + np.arange(chunk.values.shape[0], dtype=np.int64)
        return self._start64 + steps * np.timedelta64(self.config.period_s, "s")

    # ------------------------------------------------------------------ outputs
    def iter_tables(self, start: TimeLike = None, end: TimeLike = None) -> Iterator[pa.Table]:
        """Arrow tables of consecutive chunks (what the exporter writes); rows time-major."""
        n = self._sim.n
        tids = pa.array(self._sim.turbine_ids, pa.string())
        sids = pa.array([self._sim.site_ids[s] for s in self._sim.site_of], pa.string())
        for chunk in self._chunks(start, end):
            steps = chunk.values.shape[0]
            times = self._times(chunk)
            idx = pa.array(np.tile(np.arange(n, dtype=np.int32), steps))
            flat = chunk.values.reshape(-1, len(SIGNALS))
            columns: dict[str, Any] = {
                "event_id": event_ids(self._sim.turbine_ids, _stamps(times)),
                "turbine_id": tids.take(idx),
                "site_id": sids.take(idx),
                "event_time": pa.array(np.repeat(times, n), pa.timestamp("us", tz="UTC")),
            }
            for j, name in enumerate(SIGNALS):
                col = np.ascontiguousarray(flat[:, j])
                columns[name] = pa.array(col, pa.float64())
            columns["status_code"] = pa.array(chunk.status.reshape(-1).astype(np.int64))
            yield pa.table(columns)

    def to_frame(self, start: TimeLike = None, end: TimeLike = None) -> pd.DataFrame:
        """All rows in [start, end) sorted by event_time then turbine_id; NaN marks a dropout."""
        tables = list(self.iter_tables(start, end))
        if not tables:
            return self._empty_frame()
        frame = pa.concat_tables(tables).to_pandas()
        frame.attrs = {}
        return frame

    def _empty_frame(self) -> pd.DataFrame:
        data: dict[str, Any] = {
            "event_id": pd.Series([], dtype="str"),
            "turbine_id": pd.Series([], dtype="str"),
            "site_id": pd.Series([], dtype="str"),
            "event_time": pd.Series([], dtype="datetime64[us, UTC]"),
        }
        for name in SIGNALS:
            data[name] = pd.Series([], dtype="float64")
        data["status_code"] = pd.Series([], dtype="int64")
        return pd.DataFrame(data)

    def iter_records(self, start: TimeLike = None, end: TimeLike = None) -> Iterator[dict[str, Any]]:
        """Rows as ``TelemetryEvent`` keyword dicts (None for dropouts), streamed one chunk at a time."""
        n = self._sim.n
        tids = self._sim.turbine_ids
        sids = [self._sim.site_ids[s] for s in self._sim.site_of]
        for chunk in self._chunks(start, end):
            times = self._times(chunk)
            stamps = _stamps(times)
            for k in range(chunk.values.shape[0]):
                ids = event_ids(tids, [stamps[k]]).to_pylist()
                when = datetime.fromisoformat(stamps[k][:-1]).replace(tzinfo=UTC)
                block = chunk.values[k]
                rows = block.tolist()
                for i in np.nonzero(np.isnan(block).any(axis=1))[0].tolist():
                    rows[i] = [None if v != v else v for v in rows[i]]
                statuses = chunk.status[k].tolist()
                for i in range(n):
                    record: dict[str, Any] = {
                        "event_id": ids[i],
                        "turbine_id": tids[i],
                        "site_id": sids[i],
                        "event_time": when,
                    }
                    record.update(zip(SIGNALS, rows[i], strict=True))
                    record["status_code"] = statuses[i]
                    yield record

    def ground_truth(self) -> GroundTruth:
        """Every failure and sensor fault of the configured horizon (failure may fall after its end)."""
        sim = self._sim
        start = pd.Timestamp(self.config.start)

        def at(seconds: float) -> pd.Timestamp:
            return start + timedelta(microseconds=round(seconds * 1e6))

        failures = pd.DataFrame(
            [
                (
                    sim.turbine_ids[e.turbine],
                    sim.site_ids[sim.site_of[e.turbine]],
                    e.mode.value,
                    at(e.onset_s),
                    at(e.failure_s),
                    at(e.fault_end_s),
                    at(e.repair_s),
                    e.forced,
                )
                for e in sim.failures
            ],
            columns=list(FAILURE_COLUMNS),
        )
        faults = pd.DataFrame(
            [
                (
                    sim.turbine_ids[f.turbine],
                    SIGNALS[f.signal],
                    f.kind.value,
                    at(f.start_s),
                    at(f.end_s),
                    f.magnitude,
                    f.forced,
                )
                for f in sim.sensor_faults
            ],
            columns=list(SENSOR_FAULT_COLUMNS),
        )
        for frame, cols in ((failures, FAILURE_COLUMNS[3:7]), (faults, SENSOR_FAULT_COLUMNS[3:5])):
            for col in cols:
                frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[us, UTC]")
        failures["forced"] = failures["forced"].astype(bool)
        faults["forced"] = faults["forced"].astype(bool)
        faults["magnitude"] = faults["magnitude"].astype(float)
        return GroundTruth(failures=failures, sensor_faults=faults)

    def describe(self) -> dict[str, Any]:
        """Counts for the CLI."""
        return self._sim.describe()
