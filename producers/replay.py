"""Replay of a SCADA export (CSV or Parquet) through a :class:`~producers.mapping.ReplayMapping`.

Why vectorised per chunk: exports run to millions of rows; pandas converts a chunk of 50k rows in a few
milliseconds while memory stays bounded. A row that cannot be mapped is never fatal: it is counted under
a short reason (``out of range: power_kw``...), optionally written to a rejects CSV, and skipped. A field
mapped with ``on_invalid: null`` loses only its value (counted per field in the import report). Accepted
rows leave here range-checked against the contract, so the hot path can serialise them without pydantic.

The same reading path serves ``replay`` (records for Kafka, :meth:`FileReplay.iter_records`) and
``convert`` (columnar contract frames written to Parquet/CSV, :meth:`FileReplay.iter_frames`). What a
file looks like beyond single rows (UTC offsets, duplicated times, gaps, daylight-saving changes) is
gathered in :class:`producers.import_report.ImportReport`; ``producers.convert`` writes contract files.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from common.contracts import (
    DEFAULT_MAX_FUTURE_SKEW,
    DEFAULT_MIN_EVENT_TIME,
    IDENTIFIER_PATTERN,
    SIGNALS,
)
from producers.import_report import (
    DST_NEIGHBOURHOOD,
    DUPLICATE_REASON,
    MAX_LISTED,
    ImportReport,
    Timeline,
    dst_transitions,
)
from producers.mapping import IdSpec, MappingError, ReplayMapping, SignalSource, code_key, contract_bounds
from producers.units import conversion

_LINE_NO = re.compile(r"[Ll]ine (\d+)")
_OFFSET = re.compile(r"(?:([+-])([0-9]{2}):?([0-9]{2})|(Z))$")


BOUNDS = contract_bounds()
ID_MAX_LEN = 64
MIN_EVENT_TIME = DEFAULT_MIN_EVENT_TIME
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


def _per_unique(values: np.ndarray, test: Any) -> np.ndarray:
    """``test`` applied once per distinct value (ids repeat: a few turbines over millions of rows)."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.fromiter((bool(test(u)) for u in uniques), dtype=bool, count=len(uniques))[codes]


def _invalid_ids(values: np.ndarray) -> np.ndarray:
    """Rows whose id the contract refuses (space, NUL, control or non-ASCII character, bad first one)."""
    match = _IDENTIFIER.fullmatch
    return _per_unique(values, lambda v: not match(v))


def _too_long(values: np.ndarray) -> np.ndarray:
    return _per_unique(values, lambda v: len(v) > ID_MAX_LEN)


def _id_details(values: np.ndarray) -> np.ndarray:
    return np.array(
        [f"{v[:80]!r} does not match {IDENTIFIER_PATTERN} (letters, digits, ._:/-)" for v in values.tolist()],
        dtype=object,
    )


def detect_format(path: Path, mapping_format: str | None) -> str:
    if mapping_format:
        return mapping_format
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    raise MappingError(f"{path}: cannot tell the format from the extension; set 'format: csv|parquet'")


def _is_text(raw: pd.Series) -> bool:
    return raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype)


def _arrow_text(raw: pd.Series) -> Any:
    """The column as an Arrow string array (cheap for pandas' Arrow-backed strings), else None."""
    if not _is_text(raw):
        return None
    try:
        array = pa.array(raw, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None
    return array if pa.types.is_string(array.type) or pa.types.is_large_string(array.type) else None


def _is_blank(raw: pd.Series) -> np.ndarray:
    array = _arrow_text(raw)
    if array is not None:
        empty = pc.equal(pc.utf8_trim_whitespace(array), "")
        return pc.or_kleene(array.is_null(), empty).fill_null(True).to_numpy(zero_copy_only=False)
    if _is_text(raw):
        return (raw.isna() | (raw.astype("string").str.strip() == "")).to_numpy(dtype=bool)
    return raw.isna().to_numpy(dtype=bool)


def _to_number(raw: pd.Series, decimal: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("float64")
    text = raw.astype("string").str.strip()
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _fast_numbers(raw: pd.Series, decimal: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(numbers, blank) through Arrow's C++ parser when every cell is a plain number or empty.

    None when a cell is anything else (text, spaces, a sentinel word...): the caller then takes the
    slower path that reads each cell on its own.
    """
    array = _arrow_text(raw)
    if array is None:
        return None
    try:
        if decimal != ".":
            array = pc.replace_substring(array, decimal, ".")
        numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return numbers, array.is_null().to_numpy(zero_copy_only=False)


@dataclass
class _Cells:
    """One source column read once: numbers, blanks, sentinels."""

    numbers: np.ndarray
    blank: np.ndarray
    sentinel: np.ndarray


def _read_cells(raw: pd.Series, decimal: str, na_values: tuple[float | str, ...]) -> _Cells:
    numeric_raw = pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype)
    fast = None if numeric_raw else _fast_numbers(raw, decimal)
    text: pd.Series | None = None
    if numeric_raw:
        numbers = raw.to_numpy(dtype="float64", na_value=np.nan)
        blank = raw.isna().to_numpy(dtype=bool)
    elif fast is not None:
        numbers, blank = fast
    else:
        text = raw.astype("string").str.strip()
        blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
        clean = text.str.replace(decimal, ".", regex=False) if decimal != "." else text
        numbers = pd.to_numeric(clean, errors="coerce").astype("float64").to_numpy()
    sentinel = np.zeros(len(numbers), dtype=bool)
    if na_values:
        nums, words = _split_sentinels(na_values)
        for value in nums:
            with np.errstate(invalid="ignore"):
                sentinel |= np.abs(numbers - value) <= 1e-9 * max(1.0, abs(value))
        if words and not numeric_raw:
            odd = np.flatnonzero(~np.isfinite(numbers) & ~blank)  # only cells that are not plain numbers
            if len(odd):
                folded = raw.iloc[odd].astype("string").str.strip().str.casefold()
                sentinel[odd] = folded.isin(words).to_numpy(dtype=bool)
    return _Cells(numbers, blank, sentinel)


def _split_sentinels(values: tuple[float | str, ...]) -> tuple[list[float], set[str]]:
    nums: list[float] = []
    words: set[str] = set()
    for value in values:
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                words.add(value.strip().casefold())
                continue
            if np.isfinite(number):
                nums.append(number)
            else:
                words.add(value.strip().casefold())
        else:
            nums.append(float(value))
    return nums, words


def _lookup(raw: pd.Series, table: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(looked-up value or None, key text, blank) per row; each distinct cell is looked up once."""
    codes, uniques = pd.factorize(raw)
    keys = [code_key(u) for u in uniques]
    found = np.array([table.get(k) for k in keys] + [None], dtype=object)
    texts = np.array([*keys, ""], dtype=object)
    blank_u = np.array([k == "" for k in keys] + [True], dtype=bool)
    return found[codes], texts[codes], blank_u[codes]


def _utc_ns(times: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch of aware times (already inside the contract's years)."""
    return times.dt.tz_convert(UTC).dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype("int64")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
        self.format = detect_format(self.path, mapping.format)
        self.chunk_rows = chunk_rows
        self.rejects_path = Path(rejects_path) if rejects_path else None
        self.max_examples = max_examples
        self.rows_read = 0
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.signals: list[SignalSource] = mapping.signal_sources()
        self.report = ImportReport(zone=mapping.timestamp.timezone, stats_columns=mapping.stats_columns())
        self._columns = mapping.source_columns()
        self._scales = {s.field: conversion(s.field, s.unit) for s in self.signals}
        self._timeline = Timeline()
        self._fold_seen: Counter[tuple[str, int]] = Counter()
        self._first_time: pd.Timestamp | None = None
        self._last_time: pd.Timestamp | None = None
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

    # -- iteration -------------------------------------------------------------------------------
    def iter_frames(self) -> Iterator[pd.DataFrame]:
        """Accepted rows, chunk by chunk, as contract columns (``turbine_id``, ``site_id``,
        ``event_time`` UTC, the mapped signals in contract order, ``status_code``), in file order.

        The import report's gaps are computed when the file has been read to its end.
        """
        rejects_file: TextIO | None = None
        writer: Any = None
        if self.rejects_path:
            rejects_file = self.rejects_path.open("w", newline="", encoding="utf-8")
            writer = csv.writer(rejects_file)
            writer.writerow(["row", "reason", "detail", *self._columns])
        try:
            first_row = 1
            for chunk in self._chunks():
                frame, rejects = self.map_chunk(chunk, first_row)
                first_row += len(chunk)
                if writer is not None and len(rejects):
                    writer.writerows(rejects.itertuples(index=False, name=None))
                yield frame
            self.finish()
        finally:
            if rejects_file is not None:
                rejects_file.close()

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Accepted rows as contract records, in file order (per-turbine order = file order)."""
        for frame in self.iter_frames():
            yield from frame_records(frame)

    def convert(self, frame: pd.DataFrame, first_row: int = 1) -> tuple[list[dict[str, Any]], pd.DataFrame]:
        """Map one chunk: returns the accepted records and a frame of rejects (row, reason, detail, raw)."""
        accepted, rejects = self.map_chunk(frame, first_row)
        return list(frame_records(accepted)), rejects

    def finish(self) -> ImportReport:
        """Whole-file findings (gaps, daylight-saving changes); idempotent."""
        if not self.report.complete:
            transitions = pd.DatetimeIndex([], tz=UTC)
            if self._first_time is not None and self._last_time is not None:
                transitions = dst_transitions(
                    self.mapping.timestamp.timezone, self._first_time, self._last_time
                )
            self.report.dst_changes = len(transitions)
            self.report.gaps = self._timeline.gaps(transitions)
            self.report.complete = True
        return self.report

    # -- conversion ------------------------------------------------------------------------------
    def _id_column(self, frame: pd.DataFrame, spec: IdSpec, n: int) -> tuple[np.ndarray, np.ndarray]:
        if spec.constant is not None:
            return np.full(n, spec.prefix + spec.constant, dtype=object), np.zeros(n, dtype=bool)
        assert spec.column is not None
        codes, uniques = pd.factorize(frame[spec.column])  # ids repeat: strip each distinct one once
        stripped = [str(u).strip() for u in uniques]
        values = np.array([spec.prefix + t for t in stripped] + [spec.prefix], dtype=object)
        blank = np.array([t == "" for t in stripped] + [True], dtype=bool)
        return values[codes], blank[codes]

    def map_chunk(self, frame: pd.DataFrame, first_row: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Map one chunk: accepted rows as contract columns, and rejects (row, reason, detail, raw)."""
        frame = frame.reset_index(drop=True)
        n = len(frame)
        self.rows_read += n
        mapping = self.mapping
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)

        free = np.ones(n, dtype=bool)  # rows without a reason yet (the first reason wins)

        def reject(mask: np.ndarray, key: str, why: Any) -> None:
            """Reason ``key`` for the rows of ``mask`` still free; ``why`` is a detail text or a
            function of the row indices (details are built only for the rows that need them)."""
            hit = mask & free
            if hit.any():
                idx = np.flatnonzero(hit)
                reason[idx] = key
                detail[idx] = np.array(list(why(idx)), dtype=object) if callable(why) else why
                free[idx] = False

        # Identifiers first (the DST fold of naive local times is resolved per turbine).
        unknown_turbine = np.zeros(n, dtype=bool)
        site_override: np.ndarray | None = None
        if mapping.turbines is not None:
            assert mapping.turbine_id.column is not None
            table = mapping.turbines
            raw_vendor = frame[mapping.turbine_id.column]
            found, vendor_text, blank_t = _lookup(raw_vendor, {k: e.turbine_id for k, e in table.items()})
            unknown_turbine = pd.isna(found) & ~blank_t
            turbines = np.where(unknown_turbine | blank_t, "", found).astype(object)
            if any(e.site_id for e in table.values()):
                site_override, _, _ = _lookup(
                    raw_vendor, {k: e.site_id for k, e in table.items() if e.site_id}
                )
        else:
            turbines, blank_t = self._id_column(frame, mapping.turbine_id, n)
            vendor_text = turbines
        if mapping.site_id is not None:
            sites, blank_s = self._id_column(frame, mapping.site_id, n)
        else:
            sites, blank_s = np.full(n, "", dtype=object), np.zeros(n, dtype=bool)
        if site_override is not None:
            known = pd.notna(site_override)
            sites = np.where(known, site_override, sites)
            blank_s = blank_s & ~known

        # Timestamp: parse, localise naive times in the declared zone, convert to UTC.
        ts = mapping.timestamp
        raw_ts = frame[ts.column]
        blank_ts = _is_blank(raw_ts)
        reject(blank_ts, "missing timestamp", f"empty {ts.column!r}")
        times = self._parse_times(raw_ts, blank_ts)
        bad_parse = times.isna().to_numpy() & ~blank_ts
        reject(
            bad_parse,
            "unparseable timestamp",
            lambda idx: [f"{_short(v)} does not match {ts.format!r}" for v in raw_ts.iloc[idx].tolist()],
        )
        if times.dt.tz is None:
            times, nonexistent, ambiguous = self._localise(times, ts.timezone, turbines)
            valid = ~bad_parse & ~blank_ts
            for mask, key, what in (
                (nonexistent & valid, "nonexistent local time (DST gap)", "does not exist"),
                (ambiguous & valid, "ambiguous local time (DST fold)", "occurs twice"),
            ):
                reject(
                    mask,
                    key,
                    lambda idx, what=what: [
                        f"{_short(v)} {what} in {ts.timezone}" for v in raw_ts.iloc[idx].tolist()
                    ],
                )
        else:
            times = times.dt.tz_convert(UTC)

        # Event time inside what the scorer accepts: not before the contract's floor, not in the future.
        # (pandas comparisons keep the parsed resolution: year 9999 does not wrap around as nanoseconds)
        now = self.now or datetime.now(UTC)
        reject(
            (times < pd.Timestamp(MIN_EVENT_TIME)).to_numpy(dtype=bool),
            f"event time before {MIN_EVENT_TIME:%Y-%m-%d}",
            lambda idx: [f"{ts.column}={_short(v)}" for v in raw_ts.iloc[idx].tolist()],
        )
        reject(
            (times > pd.Timestamp(now + DEFAULT_MAX_FUTURE_SKEW)).to_numpy(dtype=bool),
            "event time in the future",
            lambda idx: [
                f"{ts.column}={_short(v)} is after {now:%Y-%m-%d %H:%M} UTC"
                for v in raw_ts.iloc[idx].tolist()
            ],
        )

        # Identifiers: what the contract accepts (IDENTIFIER_PATTERN), each failure with its own reason.
        reject(blank_t, "missing turbine id", f"empty {mapping.turbine_id.column!r}")
        reject(
            unknown_turbine,
            "unknown turbine id",
            lambda idx: [f"{_short(v)} is not in the mapping's turbines table" for v in vendor_text[idx]],
        )
        reject(_too_long(turbines), "turbine id too long", f"> {ID_MAX_LEN} characters")
        reject(_invalid_ids(turbines), "invalid turbine id", lambda idx: _id_details(turbines[idx]))
        site_column = mapping.site_id.column if mapping.site_id is not None else None
        reject(blank_s, "missing site id", f"empty {site_column!r}")
        reject(_too_long(sites), "site id too long", f"> {ID_MAX_LEN} characters")
        reject(_invalid_ids(sites), "invalid site id", lambda idx: _id_details(sites[idx]))

        status = self._status(frame, reject, n)
        signals = self._signals(frame, reject)

        # Duplicated (turbine, UTC time): the first row read wins; the rest are rejected (and reported).
        ok = free
        keep = np.flatnonzero(ok)
        if len(keep):
            kept_times = times.iloc[keep]
            stamps = _utc_ns(kept_times)
            dup = self._timeline.duplicates(turbines[keep], stamps)
            if dup.any():
                rows = keep[dup]
                hits = np.zeros(n, dtype=bool)
                hits[rows] = True
                reject(
                    hits,
                    DUPLICATE_REASON,
                    lambda idx: [
                        f"{t} already has a row at this UTC time ({_short(v)})"
                        for t, v in zip(turbines[idx], raw_ts.iloc[idx].tolist(), strict=True)
                    ],
                )
                self.report.duplicates.update(turbines[rows].tolist())
                self._count_dst_duplicates(stamps[dup])
                keep = np.flatnonzero(ok)
            if len(keep):
                lo, hi = times.iloc[keep].min(), times.iloc[keep].max()
                self._first_time = lo if self._first_time is None else min(self._first_time, lo)
                self._last_time = hi if self._last_time is None else max(self._last_time, hi)

        bad_idx = np.flatnonzero(~ok)
        for i in bad_idx:
            self._reject_one(str(reason[i]), f"row {first_row + i}: {detail[i]}")
        rejects = pd.DataFrame(
            {"row": bad_idx + first_row, "reason": reason[bad_idx], "detail": detail[bad_idx]}
        )
        for col in self._columns:
            raw_col = frame[col].iloc[bad_idx]
            rejects[col] = raw_col.astype(object).where(raw_col.notna(), "").to_numpy(dtype=object)

        self.accepted += len(keep)
        out: dict[str, Any] = {
            "turbine_id": turbines[keep],
            "site_id": sites[keep],
            "event_time": times.iloc[keep].dt.tz_convert(UTC).reset_index(drop=True),
        }
        for name in SIGNALS:
            if name in signals:
                out[name] = signals[name][keep]
        out["status_code"] = status[keep]
        accepted = pd.DataFrame(out)
        return accepted, rejects

    def _count_dst_duplicates(self, stamps: np.ndarray) -> None:
        zone = self.mapping.timestamp.timezone
        if zone == "UTC" or not len(stamps):
            return
        first, last = pd.Timestamp(int(stamps.min()), tz=UTC), pd.Timestamp(int(stamps.max()), tz=UTC)
        changes = (
            dst_transitions(zone, first - DST_NEIGHBOURHOOD, last + DST_NEIGHBOURHOOD).as_unit("ns").asi8
        )
        if not len(changes):
            return
        idx = np.searchsorted(changes, stamps).clip(0, len(changes) - 1)
        before = (idx - 1).clip(0, len(changes) - 1)
        near = DST_NEIGHBOURHOOD.value
        close = (np.abs(changes[idx] - stamps) <= near) | (np.abs(changes[before] - stamps) <= near)
        self.report.duplicates_at_dst += int(close.sum())

    def _status(self, frame: pd.DataFrame, reject: Any, n: int) -> np.ndarray:
        spec = self.mapping.status_code
        if spec is None:
            return np.zeros(n, dtype=np.int64)
        raw_status = frame[spec.column]
        blank = _is_blank(raw_status)
        if spec.lookup is not None:
            found, codes, _ = _lookup(raw_status, dict(spec.lookup))
            mapped = np.array([np.nan if v is None else v for v in found], dtype="float64")
            unknown = np.isnan(mapped) & ~blank
            if unknown.any():
                if spec.unknown == "reject":
                    reject(
                        unknown,
                        "unknown status code",
                        lambda idx: [
                            f"{spec.column}={_short(v)} is not in status_code.lookup" for v in codes[idx]
                        ],
                    )
                else:
                    for value, count in Counter(codes[unknown].tolist()).items():
                        key = _short(value)
                        if key in self.report.unknown_status or len(self.report.unknown_status) < MAX_LISTED:
                            self.report.unknown_status[key] += int(count)
                        else:
                            self.report.unknown_status["(others)"] += int(count)
            return np.where(np.isnan(mapped), spec.default, mapped).astype(np.int64)
        num = _to_number(raw_status, self.mapping.csv.decimal)
        values = num.to_numpy()
        bad = ~blank & (np.isnan(values) | (values != np.round(values)) | (values < 0) | (values > 999))
        reject(bad, "invalid status_code", f"{spec.column!r} not an integer in [0, 999]")
        return np.where(blank | bad, spec.default, np.nan_to_num(values)).astype(np.int64)

    def _signals(self, frame: pd.DataFrame, reject: Any) -> dict[str, np.ndarray]:
        """Signals: numeric, sentinels removed, converted, inside the contract's (and the mapping's) range."""
        decimal = self.mapping.csv.decimal
        out: dict[str, np.ndarray] = {}
        for signal in self.signals:
            name = signal.field
            scale, offset = self._scales[name]
            low, high = BOUNDS[name]
            if signal.range is not None:
                low, high = max(low, signal.range[0]), min(high, signal.range[1])
            values: list[np.ndarray] = []
            for source in signal.sources:
                raw = frame[source]
                cells = _read_cells(raw, decimal, signal.na_values)
                with np.errstate(invalid="ignore", over="ignore"):
                    converted = cells.numbers * scale + offset
                usable = ~cells.blank & ~cells.sentinel
                not_number = usable & ~np.isfinite(converted)
                with np.errstate(invalid="ignore"):
                    outside = usable & np.isfinite(converted) & ((converted < low) | (converted > high))
                n_sentinel = int(cells.sentinel.sum())
                if n_sentinel:
                    self.report.sentinels[name] += n_sentinel
                if signal.on_invalid == "null":
                    if not_number.any():
                        self.report.nulled[f"{name} (not a number)"] += int(not_number.sum())
                    if outside.any():
                        self.report.nulled[f"{name} (out of range)"] += int(outside.sum())
                else:
                    reject(
                        not_number,
                        f"not a number: {name}",
                        lambda idx, raw=raw, source=source: [
                            f"{source}={_short(t)}" for t in raw.iloc[idx].tolist()
                        ],
                    )
                    reject(
                        outside,
                        f"out of range: {name}",
                        lambda idx, raw=raw, source=source, conv=converted, low=low, high=high: [
                            f"{source}={_short(r)} -> {c:.6g}, allowed [{low:g}, {high:g}]"
                            for r, c in zip(raw.iloc[idx].tolist(), conv[idx], strict=True)
                        ],
                    )
                values.append(np.where(usable & ~not_number & ~outside, converted, np.nan))
            out[name] = _aggregate(values, signal.aggregate)
        return out

    def _parse_times(self, raw: pd.Series, blank: np.ndarray) -> pd.Series:
        fmt = self.mapping.timestamp.format
        if pd.api.types.is_datetime64_any_dtype(raw.dtype):
            return raw
        if fmt in ("epoch_s", "epoch_ms"):
            num = _to_number(raw, ".")
            return pd.to_datetime(num, unit="s" if fmt == "epoch_s" else "ms", utc=True, errors="coerce")
        text = raw.astype("string").str.strip()
        if fmt == "iso" or "%z" in fmt:
            has_offset = self._count_offsets(text, blank)
        else:  # a pattern without %z has no offset, whatever its last characters look like
            has_offset = np.zeros(len(text), dtype=bool)
        kwargs: dict[str, Any] = {"format": "ISO8601" if fmt == "iso" else fmt, "errors": "coerce"}
        if has_offset.all():  # every cell carries its offset (possibly several): straight to UTC
            return pd.to_datetime(text, utc=True, **kwargs)
        if not has_offset.any():
            try:
                return pd.to_datetime(text, **kwargs)
            except (ValueError, TypeError):  # a pattern with %z, or odd cells: read as UTC instants
                return pd.to_datetime(text, utc=True, **kwargs)
        # Some cells with an offset, some without: the naive ones are local times in the mapping's zone.
        aware = pd.to_datetime(text.where(has_offset), utc=True, **kwargs)
        naive = pd.to_datetime(text.where(~has_offset), **kwargs)
        if naive.dt.tz is None:
            localised, _, _ = self._localise(naive, self.mapping.timestamp.timezone, None)
            naive = localised
        return aware.where(has_offset, naive.dt.tz_convert(UTC))

    def _count_offsets(self, text: pd.Series, blank: np.ndarray) -> np.ndarray:
        """Count the UTC offsets written at the end of the timestamps; mask of cells that carry one."""
        tails = text.str[-6:]
        kinds: dict[Any, str] = {}
        for tail in tails[~blank].unique():
            match = _OFFSET.search(str(tail)) if tail is not pd.NA else None
            if match is None:
                kinds[tail] = "none"
            elif match.group(4):
                kinds[tail] = "+00:00"
            else:
                kinds[tail] = f"{match.group(1)}{match.group(2)}:{match.group(3)}"
        labels = tails.map(kinds)
        counts = labels[~blank].value_counts()
        has_any = any(k != "none" for k in counts.index)
        if has_any:
            for label, count in counts.items():
                self.report.offsets[str(label)] += int(count)
        return (labels.notna() & (labels != "none")).to_numpy(dtype=bool) & ~blank

    def _localise(
        self, times: pd.Series, zone: str, turbines: np.ndarray | None
    ) -> tuple[pd.Series, np.ndarray, np.ndarray]:
        """Attach ``zone`` to naive times; DST gaps and folds become NaT with their own reason.

        With ``timestamp.ambiguous: order`` a turbine's first row at an ambiguous local time is summer
        time and its second one winter time (what a logger writes through the autumn fold).
        """
        if zone == "UTC":
            none = np.zeros(len(times), dtype=bool)
            return times.dt.tz_localize(UTC), none, none
        n = len(times)
        not_nat = times.notna().to_numpy()
        strict = times.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        gaps = times.dt.tz_localize(zone, ambiguous=np.zeros(n, dtype=bool), nonexistent="NaT")
        nonexistent = gaps.isna().to_numpy() & not_nat
        ambiguous = strict.isna().to_numpy() & not_nat & ~nonexistent
        if ambiguous.any() and turbines is not None and self.mapping.timestamp.ambiguous == "order":
            rows = np.flatnonzero(ambiguous)
            naive_ns = times.iloc[rows].to_numpy().astype("datetime64[ns]").astype("int64")
            summer = np.zeros(len(rows), dtype=bool)
            for k, (tid, stamp) in enumerate(zip(turbines[rows].tolist(), naive_ns.tolist(), strict=True)):
                seen = self._fold_seen[(tid, stamp)]
                summer[k] = seen == 0
                self._fold_seen[(tid, stamp)] = seen + 1
            resolved = times.iloc[rows].dt.tz_localize(zone, ambiguous=summer, nonexistent="NaT")
            strict = strict.copy()
            strict.iloc[rows] = resolved.to_numpy()
            ambiguous = np.zeros(n, dtype=bool)
            self.report.folds_resolved += len(rows)
        return strict.dt.tz_convert(UTC), nonexistent, ambiguous

    def top_reasons(self, limit: int = 5) -> list[tuple[str, int]]:
        return self.rejected.most_common(limit)


def _aggregate(values: list[np.ndarray], how: str) -> np.ndarray:
    """Row-wise aggregate of several source columns, ignoring NaN (all NaN -> NaN)."""
    if len(values) == 1:
        return values[0]
    stack = np.vstack(values)
    finite = np.isfinite(stack)
    if how == "first":
        first = np.argmax(finite, axis=0)
        picked = stack[first, np.arange(stack.shape[1])]
        return np.where(finite.any(axis=0), picked, np.nan)
    if how == "max":
        return np.fmax.reduce(stack, axis=0)
    if how == "min":
        return np.fmin.reduce(stack, axis=0)
    count = finite.sum(axis=0)
    total = np.where(finite, stack, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return np.round(mean, 9)  # (7.1 + 7.3) / 2 is 7.2, not 7.199999999999999


def frame_records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Contract records (dicts, ``event_time`` as an aware datetime, NaN for no value) of a mapped frame."""
    if not len(frame):
        return
    cols: dict[str, list[Any]] = {}
    for name in frame.columns:
        if name == "event_time":
            cols[name] = list(frame[name].dt.to_pydatetime())
        else:
            cols[name] = frame[name].tolist()
    names = list(cols)
    for row in zip(*cols.values(), strict=True):
        yield dict(zip(names, row, strict=True))
