"""Maintenance interventions as training and backtest labels (issue 12, point 6).

One format: the operator failure log that ``python -m models train --failure-log`` already reads
(:data:`models.train.FAILURE_LOG_COLUMNS`, parsed by :func:`models.train.read_failure_log`). An
intervention done with finding ``failure_confirmed`` is one failure: ``failure_time`` = ``repair_time`` =
its ``done_at`` (the log gives no earlier failure time; the training rules add the onset and the post-repair
wash-out). ``no_fault_found`` and ``preventive_replacement`` are not failures and are left out; planned
interventions too.

``cockpit intervention list --as-failure-log > failures.csv`` writes this file from the API.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from models.train import FAILURE_LOG_COLUMNS

FAILURE_FINDING = "failure_confirmed"


def _utc_text(value: Any) -> str:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValueError(f"done_at {value!r} is not a time with a UTC offset")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def failure_log_rows(interventions: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Failure-log rows (FAILURE_LOG_COLUMNS) of the confirmed failures, by turbine then time."""
    rows = []
    for item in interventions:
        if item.get("kind") != "done" or item.get("finding") != FAILURE_FINDING:
            continue
        when = _utc_text(item["done_at"])
        rows.append(
            {
                "turbine_id": str(item["turbine_id"]),
                "component": str(item["component"]),
                "failure_time": when,
                "repair_time": when,
            }
        )
    rows.sort(key=lambda r: (r["turbine_id"], r["failure_time"]))
    # Two confirmed failures of one turbine at the same time are one failure (the log refuses repeats).
    unique: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        unique.setdefault((row["turbine_id"], row["failure_time"]), row)
    return list(unique.values())


def write_failure_log(rows: Iterable[Mapping[str, str]], out: TextIO) -> int:
    """Write the header and ``rows`` as CSV; returns the number of rows written."""
    writer = csv.DictWriter(out, fieldnames=list(FAILURE_LOG_COLUMNS), lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({c: row[c] for c in FAILURE_LOG_COLUMNS})
        n += 1
    return n
