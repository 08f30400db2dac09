"""What a SCADA export looks like beyond single rows: UTC offsets, duplicated times, gaps, daylight-saving
changes, sentinels and nulled values, with counts (the "import report" of ``replay`` and ``convert``).

Why apart from the row mapping: these are whole-file findings (a gap is only known once both sides of it
are read), gathered while :class:`producers.replay.FileReplay` reads and completed at the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd

#: A duplicate or gap this close to a daylight-saving change is attributed to it in the report.
DST_NEIGHBOURHOOD = pd.Timedelta(hours=3)
#: At most this many distinct values (unknown status codes, UTC offsets) are listed in the report.
MAX_LISTED = 20
DUPLICATE_REASON = "duplicate event time"


def dst_transitions(zone: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
    """UTC instants where ``zone`` changes its UTC offset between ``first`` and ``last`` (hour grid)."""
    if zone == "UTC" or pd.isna(first) or pd.isna(last):
        return pd.DatetimeIndex([], tz=UTC).as_unit("ns")
    grid = pd.date_range(
        first.floor("h") - pd.Timedelta(hours=1), last.ceil("h") + pd.Timedelta(hours=1), freq="h"
    )
    grid = grid.as_unit("ns")
    local = grid.tz_convert(zone)
    offsets = local.tz_localize(None).asi8 - grid.tz_localize(None).asi8
    return grid[np.flatnonzero(np.diff(offsets) != 0) + 1]


@dataclass
class TurbineGaps:
    """Gaps in one turbine's time series (steps missing between consecutive readings)."""

    period_s: float
    gaps: int = 0
    missing_steps: int = 0
    longest_s: float = 0.0
    at_dst: int = 0


@dataclass
class ImportReport:
    """What the file looks like beyond single rows: warnings with counts (never fatal).

    * ``offsets``: UTC offsets written in the timestamps (rows per offset); more than one = mixed;
    * ``duplicates``: rows whose (turbine, UTC time) was already read, per turbine (rejected as
      ``duplicate event time``), ``duplicates_at_dst`` of them near a daylight-saving change;
    * ``folds_resolved``: naive local times of the autumn fold placed by ``timestamp.ambiguous: order``;
    * ``gaps``: per turbine, missing steps against its usual period (computed at the end of the file);
    * ``sentinels`` / ``nulled``: per field, values read as "no value" / bad values nulled (row kept);
    * ``unknown_status``: vendor status codes missing from the lookup table.
    """

    zone: str = "UTC"
    offsets: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    duplicates_at_dst: int = 0
    gaps: dict[str, TurbineGaps] = field(default_factory=dict)
    sentinels: Counter[str] = field(default_factory=Counter)
    nulled: Counter[str] = field(default_factory=Counter)
    unknown_status: Counter[str] = field(default_factory=Counter)
    stats_columns: list[str] = field(default_factory=list)
    folds_resolved: int = 0
    dst_changes: int = 0
    complete: bool = False

    @property
    def mixed_offsets(self) -> bool:
        return len([k for k in self.offsets if k != "none"]) > 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.zone,
            "utc_offsets": dict(self.offsets.most_common(MAX_LISTED)),
            "mixed_offsets": self.mixed_offsets,
            "duplicates": sum(self.duplicates.values()),
            "duplicates_per_turbine": dict(self.duplicates.most_common(MAX_LISTED)),
            "duplicates_at_dst_change": self.duplicates_at_dst,
            "dst_fold_rows_resolved_by_order": self.folds_resolved,
            "gaps": sum(g.gaps for g in self.gaps.values()),
            "gaps_at_dst_change": sum(g.at_dst for g in self.gaps.values()),
            "missing_steps": sum(g.missing_steps for g in self.gaps.values()),
            "gaps_per_turbine": {
                t: {
                    "gaps": g.gaps,
                    "missing_steps": g.missing_steps,
                    "longest_h": round(g.longest_s / 3600, 2),
                }
                for t, g in list(self.gaps.items())[:MAX_LISTED]
                if g.gaps
            },
            "sentinel_values": dict(self.sentinels),
            "nulled_values": dict(self.nulled),
            "unknown_status_codes": dict(self.unknown_status.most_common(MAX_LISTED)),
            "statistics_columns_not_published": self.stats_columns,
        }

    def lines(self) -> list[str]:
        """Plain-language warnings with counts, for the end of ``replay``/``convert``."""
        out: list[str] = []
        if self.offsets:
            listed = ", ".join(f"{k} ({v:,} rows)" for k, v in self.offsets.most_common(MAX_LISTED))
            note = " - mixed offsets: each row converted to UTC with its own" if self.mixed_offsets else ""
            out.append(f"UTC offsets in the timestamps: {listed}{note}")
        dup = sum(self.duplicates.values())
        if dup:
            per = ", ".join(f"{t} {n:,}" for t, n in self.duplicates.most_common(8))
            out.append(
                f"duplicate (turbine, UTC time): {dup:,} rows rejected as {DUPLICATE_REASON!r} ({per}); "
                f"{self.duplicates_at_dst:,} of them within {DST_NEIGHBOURHOOD.components.hours} h of a "
                f"daylight-saving change in {self.zone}"
            )
        if self.folds_resolved:
            out.append(
                f"local times written twice in the autumn fold ({self.zone}): {self.folds_resolved:,} rows "
                "placed by order (first = summer time, second = winter time)"
            )
        gapped = {t: g for t, g in self.gaps.items() if g.gaps}
        if gapped:
            total = sum(g.gaps for g in gapped.values())
            at_dst = sum(g.at_dst for g in gapped.values())
            out.append(
                f"gaps: {total:,} in {len(gapped)} turbine(s), {at_dst:,} of them at a daylight-saving change"
            )
            for tid, g in list(gapped.items())[:MAX_LISTED]:
                out.append(
                    f"  {tid}: {g.gaps:,} gaps, {g.missing_steps:,} missing {g.period_s / 60:g}-min steps "
                    f"({g.missing_steps * g.period_s / 3600:,.1f} h), longest {g.longest_s / 3600:,.1f} h"
                )
        if self.sentinels:
            listed = ", ".join(f"{k} {v:,}" for k, v in self.sentinels.items())
            out.append(f"sentinel values read as no value: {listed}")
        if self.nulled:
            listed = ", ".join(f"{k} {v:,}" for k, v in self.nulled.items())
            out.append(f"bad values nulled, row kept (on_invalid: null): {listed}")
        if self.unknown_status:
            listed = ", ".join(f"{k} {v:,}" for k, v in self.unknown_status.most_common(8))
            out.append(f"status codes not in status_code.lookup (default used): {listed}")
        if self.stats_columns:
            out.append(
                f"statistics columns not published (no contract field): {', '.join(self.stats_columns)}"
            )
        return out


class Timeline:
    """Per turbine, the UTC times already read (sorted blocks): duplicates now, gaps at the end."""

    def __init__(self) -> None:
        self.blocks: dict[str, list[np.ndarray]] = {}

    def duplicates(self, turbines: np.ndarray, times_ns: np.ndarray) -> np.ndarray:
        """Mask of rows whose (turbine, time) was already read (earlier in the file or this chunk)."""
        dup = np.zeros(len(times_ns), dtype=bool)
        if not len(times_ns):
            return dup
        codes, names = pd.factorize(turbines)
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(names)))])
        for k, name in enumerate(names):
            rows = order[bounds[k] : bounds[k + 1]]
            values = times_ns[rows]
            mine = pd.Series(values).duplicated().to_numpy().copy()
            lo, hi = values.min(), values.max()
            for block in self.blocks.get(name, ()):
                if block[-1] < lo or block[0] > hi:
                    continue
                pos = np.searchsorted(block, values).clip(0, len(block) - 1)
                mine |= block[pos] == values
            dup[rows] = mine
            fresh = np.unique(values[~mine])
            if len(fresh):
                self.blocks.setdefault(name, []).append(fresh)
        return dup

    def gaps(self, transitions: pd.DatetimeIndex) -> dict[str, TurbineGaps]:
        out: dict[str, TurbineGaps] = {}
        changes = transitions.as_unit("ns").asi8 if len(transitions) else np.empty(0, dtype=np.int64)
        near = DST_NEIGHBOURHOOD.value
        for name, blocks in self.blocks.items():
            times = np.unique(np.concatenate(blocks))
            if len(times) < 3:
                continue
            diffs = np.diff(times)
            steps, counts = np.unique(diffs, return_counts=True)
            period = int(steps[np.argmax(counts)])
            report = TurbineGaps(period_s=period / 1e9)
            big = np.flatnonzero(diffs > period * 1.5)
            if len(big):
                report.gaps = len(big)
                report.missing_steps = int(np.sum(np.round(diffs[big] / period) - 1))
                report.longest_s = float(diffs[big].max()) / 1e9
                if len(changes):
                    starts, ends = times[big] - near, times[big + 1] + near
                    idx = np.searchsorted(changes, starts)
                    hit = (idx < len(changes)) & (changes[idx.clip(0, len(changes) - 1)] <= ends)
                    report.at_dst = int(hit.sum())
            out[str(name)] = report
        return out
