"""Labelled history export for model training: telemetry Parquet plus ground truth next to it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from simulator.config import FleetConfig
from simulator.fleet import Fleet


@dataclass(frozen=True)
class ExportResult:
    """Where the files went and how long it took."""

    telemetry: Path
    failures: Path
    sensor_faults: Path
    ground_truth_json: Path
    rows: int
    seconds: float


def sidecar_paths(out: Path) -> tuple[Path, Path, Path]:
    """Ground-truth files live next to the telemetry: ``<stem>.failures.parquet`` etc."""
    stem = out.with_suffix("")
    return (
        stem.with_name(stem.name + ".failures.parquet"),
        stem.with_name(stem.name + ".sensor_faults.parquet"),
        stem.with_name(stem.name + ".ground_truth.json"),
    )


def export_history(
    config: FleetConfig,
    out: str | Path,
    *,
    compression: str = "zstd",
    on_progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Stream the whole configured horizon to Parquet chunk by chunk (bounded memory).

    ``on_progress`` receives the number of rows written after each chunk.
    """
    started = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(config)
    tmp = out.with_name(out.name + ".partial")
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for table in fleet.iter_tables():
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression=compression)
            writer.write_table(table)
            rows += table.num_rows
            if on_progress is not None:
                on_progress(table.num_rows)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(out)

    truth = fleet.ground_truth()
    failures_path, faults_path, json_path = sidecar_paths(out)
    pq.write_table(pa.Table.from_pandas(truth.failures, preserve_index=False), failures_path)
    pq.write_table(pa.Table.from_pandas(truth.sensor_faults, preserve_index=False), faults_path)
    doc = {
        "telemetry": out.name,
        "rows": rows,
        "config": config.model_dump(mode="json"),
        "turbines": [
            {
                "turbine_id": t.turbine_id,
                "site_id": t.site_id,
                "rated_power_kw": t.rated_power_kw,
                "commissioned_on": t.commissioned_on.isoformat(),
            }
            for t in fleet.turbines
        ],
        "failures": json.loads(truth.failures.to_json(orient="records", date_format="iso")),
        "sensor_faults": json.loads(truth.sensor_faults.to_json(orient="records", date_format="iso")),
    }
    json_path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return ExportResult(out, failures_path, faults_path, json_path, rows, time.perf_counter() - started)
