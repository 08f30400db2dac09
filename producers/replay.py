"""Replay of a SCADA export (CSV or Parquet) through a :class:`~producers.mapping.ReplayMapping`.

Why vectorised per chunk: exports run to millions of rows; pandas converts a chunk of 50k rows in a few
milliseconds while memory stays bounded. A row that cannot be mapped is never fatal: it is counted under
a short reason (``out of range: power_kw``...), optionally written to a rejects CSV, and skipped.
Accepted rows leave here range-checked against the contract, so the hot path can serialise them
without pydantic.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from common.contracts import (
    DEFAULT_MAX_FUTURE_SKEW,
    DEFAULT_MIN_EVENT_TIME,
    IDENTIFIER_PATTERN,
    SIGNALS,
    TelemetryEvent,
)
from producers.mapping import IdSpec, MappingError, ReplayMapping
from producers.units import conversion

_LINE_NO = re.compile(r"[Ll]ine (\d+)")


def contract_bounds() -> dict[str, tuple[float, float]]:
    """``field -> (min, max)`` read from the contract itself, so the two can never disagree."""
    bounds: dict[str, tuple[float, float]] = {}
    for name in SIGNALS:
        low, high = -np.inf, np.inf
        for item in TelemetryEvent.model_fields[name].metadata:
            low = getattr(item, "ge", low)
            high = getattr(item, "le", high)
        bounds[name] = (float(low), float(high))
    return bounds


BOUNDS = contract_bounds()
ID_MAX_LEN = 64
MIN_EVENT_TIME = DEFAULT_MIN_EVENT_TIME
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def _invalid_ids(values: np.ndarray) -> np.ndarray:
    """Rows whose id the contract refuses (space, NUL, control or non-ASCII character, bad first one)."""
    match = _IDENTIFIER.fullmatch
    return np.fromiter((not match(v) for v in values), dtype=bool, count=len(values))


def _id_details(values: np.ndarray) -> np.ndarray:
    return np.array(
        [f"{v[:80]!r} does not match {IDENTIFIER_PATTERN} (letters, digits, ._:/-)" for v in values.tolist()],
        dtype=object,
    )


def detect_format(path: Path, mapping: ReplayMapping) -> str:
    if mapping.format:
        return mapping.format
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise MappingError(f"{path}: cannot tell the format from the extension; set 'format: csv|parquet'")


def _is_blank(raw: pd.Series) -> np.ndarray:
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        return (raw.isna() | (raw.astype("string").str.strip() == "")).to_numpy(dtype=bool)
    return raw.isna().to_numpy(dtype=bool)


def _to_number(raw: pd.Series, decimal: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("float64")
    text = raw.astype("string").str.strip()
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


class FileReplay:
    """Iterate contract records from a data file; counts what was read, accepted and rejected (why)."""

    def __init__(
        self,
        path: str | Path,
        mapping: ReplayMapping,
        *,
        chunk_rows: int = 50_000,
        rejects_path: str | Path | None = None,
        max_examples: int = 3,
        now: datetime | None = None,
    ) -> None:
        self.path = Path(path)
        self.now = now  # fixed "now" for the future-time check (tests); default: the wall clock
        self.mapping = mapping
        self.format = detect_format(self.path, mapping)
        self.chunk_rows = chunk_rows
        self.rejects_path = Path(rejects_path) if rejects_path else None
        self.max_examples = max_examples
        self.rows_read = 0
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self._columns = mapping.source_columns()
        self._scales = {src: conversion(spec.field, spec.unit) for src, spec in mapping.columns.items()}
        self.check()

    # -- reading ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Fail fast (MappingError) when the file is missing or lacks a mapped column."""
        if not self.path.is_file():
            raise MappingError(f"{self.path}: no such file")
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                names = list(pq.ParquetFile(self.path).schema_arrow.names)
            except Exception as exc:
                raise MappingError(f"{self.path}: not a readable Parquet file: {exc}") from None
        else:
            opts = self.mapping.csv
            try:
                head = pd.read_csv(
                    self.path,
                    sep=opts.delimiter,
                    nrows=0,
                    encoding=opts.encoding,
                    skiprows=opts.skip_rows,
                    encoding_errors="replace",
                )
            except (ValueError, OSError) as exc:
                raise MappingError(f"{self.path}: cannot read the CSV header: {exc}") from None
            names = [str(c) for c in head.columns]
        self.mapping.check_columns(names, str(self.path))

    def _chunks(self) -> Iterator[pd.DataFrame]:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.path).iter_batches(
                batch_size=self.chunk_rows, columns=self._columns
            ):
                yield batch.to_pandas()
            return
        opts = self.mapping.csv
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reader = pd.read_csv(
                self.path,
                sep=opts.delimiter,
                dtype=str,
                chunksize=self.chunk_rows,
                encoding=opts.encoding,
                encoding_errors="replace",
                skiprows=opts.skip_rows,
                on_bad_lines="warn",
                skip_blank_lines=True,
            )
            with reader:
                for chunk in reader:  # all columns are read so that ragged lines are detected
                    self._count_bad_lines(caught)
                    yield chunk[self._columns]
            self._count_bad_lines(caught)

    def _count_bad_lines(self, caught: list[warnings.WarningMessage]) -> None:
        """Lines pandas skipped (wrong number of fields) become rejects, not crashes."""
        for item in caught:
            for line in str(item.message).splitlines():
                if "expected" in line and "fields" in line:
                    match = _LINE_NO.search(line)
                    self.rows_read += 1
                    self._reject_one("malformed line (wrong number of fields)", line.strip(), match)
        caught.clear()

    def _reject_one(self, reason: str, detail: str, _match: object = None) -> None:
        self.rejected[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            examples.append(detail)

    # -- conversion ------------------------------------------------------------------------------
    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Accepted rows as contract records, in file order (per-turbine order = file order)."""
        rejects_file: TextIO | None = None
        writer: Any = None
        if self.rejects_path:
            rejects_file = self.rejects_path.open("w", newline="", encoding="utf-8")
            writer = csv.writer(rejects_file)
            writer.writerow(["row", "reason", "detail", *self._columns])
        try:
            first_row = 1
            for chunk in self._chunks():
                records, rejects = self.convert(chunk, first_row)
                first_row += len(chunk)
                if writer is not None and len(rejects):
                    writer.writerows(rejects.itertuples(index=False, name=None))
                yield from records
        finally:
            if rejects_file is not None:
                rejects_file.close()

    def _id_column(self, frame: pd.DataFrame, spec: IdSpec, n: int) -> tuple[np.ndarray, np.ndarray]:
        if spec.constant is not None:
            return np.full(n, spec.prefix + spec.constant, dtype=object), np.zeros(n, dtype=bool)
        assert spec.column is not None
        raw = frame[spec.column]
        blank = _is_blank(raw)
        text = raw.astype("string").str.strip()
        values = (spec.prefix + text.fillna("")).to_numpy(dtype=object)
        return values, blank

    def convert(self, frame: pd.DataFrame, first_row: int = 1) -> tuple[list[dict[str, Any]], pd.DataFrame]:
        """Map one chunk: returns the accepted records and a frame of rejects (row, reason, detail, raw)."""
        frame = frame.reset_index(drop=True)
        n = len(frame)
        self.rows_read += n
        mapping = self.mapping
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)

        def reject(mask: np.ndarray, key: str, why: Any) -> None:
            hit = mask & pd.isna(reason)
            if hit.any():
                if callable(why):
                    why = why()
                reason[hit] = key
                detail[hit] = why[hit] if isinstance(why, np.ndarray) else why

        # Timestamp: parse, localise naive times in the declared zone, convert to UTC.
        ts = mapping.timestamp
        raw_ts = frame[ts.column]
        blank_ts = _is_blank(raw_ts)
        reject(blank_ts, "missing timestamp", f"empty {ts.column!r}")
        times = self._parse_times(raw_ts)
        bad_parse = times.isna().to_numpy() & ~blank_ts
        reject(
            bad_parse,
            "unparseable timestamp",
            lambda: np.array([f"{v!r} does not match {ts.format!r}" for v in raw_ts.tolist()], dtype=object),
        )
        if times.dt.tz is None:
            times, nonexistent, ambiguous = self._localise(times, ts.timezone)
            valid = ~bad_parse & ~blank_ts
            for mask, key, what in (
                (nonexistent & valid, "nonexistent local time (DST gap)", "does not exist"),
                (ambiguous & valid, "ambiguous local time (DST fold)", "occurs twice"),
            ):
                reject(
                    mask,
                    key,
                    lambda what=what: np.array(
                        [f"{v!r} {what} in {ts.timezone}" for v in raw_ts.tolist()], dtype=object
                    ),
                )
        else:
            times = times.dt.tz_convert(UTC)

        # Event time inside what the scorer accepts: not before the contract's floor, not in the future.
        # (pandas comparisons keep the parsed resolution: year 9999 does not wrap around as nanoseconds)
        now = self.now or datetime.now(UTC)
        reject(
            (times < pd.Timestamp(MIN_EVENT_TIME)).to_numpy(dtype=bool),
            f"event time before {MIN_EVENT_TIME:%Y-%m-%d}",
            lambda: np.array([f"{ts.column}={v!r}" for v in raw_ts.tolist()], dtype=object),
        )
        reject(
            (times > pd.Timestamp(now + DEFAULT_MAX_FUTURE_SKEW)).to_numpy(dtype=bool),
            "event time in the future",
            lambda: np.array(
                [f"{ts.column}={v!r} is after {now:%Y-%m-%d %H:%M} UTC" for v in raw_ts.tolist()],
                dtype=object,
            ),
        )

        # Identifiers: what the contract accepts (IDENTIFIER_PATTERN), each failure with its own reason.
        turbines, blank_t = self._id_column(frame, mapping.turbine_id, n)
        reject(blank_t, "missing turbine id", f"empty {mapping.turbine_id.column!r}")
        too_long = np.fromiter((len(t) > ID_MAX_LEN for t in turbines), dtype=bool, count=n)
        reject(too_long, "turbine id too long", f"> {ID_MAX_LEN} characters")
        reject(_invalid_ids(turbines), "invalid turbine id", lambda: _id_details(turbines))
        sites, blank_s = self._id_column(frame, mapping.site_id, n)
        reject(blank_s, "missing site id", f"empty {mapping.site_id.column!r}")
        too_long = np.fromiter((len(s) > ID_MAX_LEN for s in sites), dtype=bool, count=n)
        reject(too_long, "site id too long", f"> {ID_MAX_LEN} characters")
        reject(_invalid_ids(sites), "invalid site id", lambda: _id_details(sites))

        # Status code.
        if mapping.status_code is not None:
            raw_status = frame[mapping.status_code.column]
            num = _to_number(raw_status, mapping.csv.decimal)
            blank = _is_blank(raw_status)
            values = num.to_numpy()
            bad = ~blank & (np.isnan(values) | (values != np.round(values)) | (values < 0) | (values > 999))
            reject(bad, "invalid status_code", f"{mapping.status_code.column!r} not an integer in [0, 999]")
            status = np.where(blank | bad, mapping.status_code.default, np.nan_to_num(values)).astype(
                np.int64
            )
        else:
            status = np.zeros(n, dtype=np.int64)

        # Signals: numeric, converted, inside the contract's range.
        signals: dict[str, np.ndarray] = {}
        for source, spec in mapping.columns.items():
            raw = frame[source]
            numbers = _to_number(raw, mapping.csv.decimal).to_numpy()
            blank = _is_blank(raw)
            scale, offset = self._scales[source]
            with np.errstate(invalid="ignore", over="ignore"):
                converted = numbers * scale + offset
            not_number = ~blank & ~np.isfinite(converted)
            reject(
                not_number,
                f"not a number: {spec.field}",
                lambda raw=raw, source=source: np.array(
                    [f"{source}={t!r}" for t in raw.tolist()], dtype=object
                ),
            )
            low, high = BOUNDS[spec.field]
            with np.errstate(invalid="ignore"):
                outside = np.isfinite(converted) & ((converted < low) | (converted > high))
            reject(
                outside,
                f"out of range: {spec.field}",
                lambda raw=raw, source=source, conv=converted, low=low, high=high: np.array(
                    [
                        f"{source}={r} -> {c:.6g}, allowed [{low:g}, {high:g}]"
                        for r, c in zip(raw.tolist(), conv, strict=True)
                    ],
                    dtype=object,
                ),
            )
            signals[spec.field] = converted

        ok = pd.isna(reason)
        bad_idx = np.flatnonzero(~ok)
        for i in bad_idx:
            self._reject_one(str(reason[i]), f"row {first_row + i}: {detail[i]}")
        rejects = pd.DataFrame(
            {"row": bad_idx + first_row, "reason": reason[bad_idx], "detail": detail[bad_idx]}
        )
        for col in self._columns:
            raw_col = frame[col].iloc[bad_idx]
            rejects[col] = raw_col.astype(object).where(raw_col.notna(), "").to_numpy(dtype=object)

        keep = np.flatnonzero(ok)
        self.accepted += len(keep)
        cols: dict[str, list[Any]] = {
            "turbine_id": turbines[keep].tolist(),
            "site_id": sites[keep].tolist(),
            "event_time": list(times.iloc[keep].dt.to_pydatetime()),
        }
        for name in SIGNALS:
            if name in signals:
                cols[name] = signals[name][keep].tolist()
        cols["status_code"] = status[keep].tolist()
        names = list(cols)
        records = [dict(zip(names, row, strict=True)) for row in zip(*cols.values(), strict=True)]
        return records, rejects

    def _parse_times(self, raw: pd.Series) -> pd.Series:
        fmt = self.mapping.timestamp.format
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            return raw
        if fmt in ("epoch_s", "epoch_ms"):
            num = _to_number(raw, ".")
            return pd.to_datetime(num, unit="s" if fmt == "epoch_s" else "ms", utc=True, errors="coerce")
        text = raw.astype("string").str.strip()
        kwargs: dict[str, Any] = {"format": "ISO8601" if fmt == "iso" else fmt, "errors": "coerce"}
        try:
            return pd.to_datetime(text, **kwargs)
        except (ValueError, TypeError):  # mixed offsets or naive/aware mix: read as UTC instants
            return pd.to_datetime(text, utc=True, **kwargs)

    @staticmethod
    def _localise(times: pd.Series, zone: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
        """Attach ``zone`` to naive times; DST gaps and folds become NaT with their own reason."""
        if zone == "UTC":
            none = np.zeros(len(times), dtype=bool)
            return times.dt.tz_localize(UTC), none, none
        n = len(times)
        not_nat = times.notna().to_numpy()
        strict = times.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        gaps = times.dt.tz_localize(zone, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT")
        nonexistent = gaps.isna().to_numpy() & not_nat
        ambiguous = strict.isna().to_numpy() & not_nat & ~nonexistent
        return strict.dt.tz_convert(UTC), nonexistent, ambiguous

    def top_reasons(self, limit: int = 5) -> list[tuple[str, int]]:
        return self.rejected.most_common(limit)
