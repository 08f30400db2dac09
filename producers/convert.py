"""Contract files from a SCADA export (``python -m producers convert``): Parquet or CSV, no Kafka.

Why columnar: :meth:`producers.replay.FileReplay.iter_frames` already yields each mapped chunk as
contract columns; writing them as Arrow batches keeps per-row Python out of the path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from producers.mapping import MappingError
from producers.replay import FileReplay


@dataclass(frozen=True)
class ConvertResult:
    """What ``convert`` wrote."""

    path: Path
    rows: int
    seconds: float


def contract_schema(fields: list[str]) -> Any:
    """Arrow schema of a contract file: ids, UTC event time, the mapped signals, status code."""
    import pyarrow as pa

    return pa.schema(
        [
            ("turbine_id", pa.string()),
            ("site_id", pa.string()),
            ("event_time", pa.timestamp("us", tz="UTC")),
            *[(name, pa.float64()) for name in fields],
            ("status_code", pa.int32()),
        ]
    )


def _arrow_table(frame: pd.DataFrame, schema: Any, csv_times: bool) -> Any:
    import pyarrow as pa

    arrays = []
    for item in schema:
        column = frame[item.name]
        if item.name == "event_time":
            array = pa.array(column.dt.tz_convert(UTC).astype("datetime64[us, UTC]"), type=item.type)
            if csv_times:
                text = np.datetime_as_string(column.dt.tz_convert(None).to_numpy().astype("datetime64[s]"))
                array = pa.array(np.char.add(text, "Z").astype(object), type=pa.string())
        elif pa.types.is_floating(item.type):
            array = pa.array(column.to_numpy(dtype="float64"), type=item.type, from_pandas=True)
        elif pa.types.is_integer(item.type):
            array = pa.array(column.to_numpy(dtype="int64"), type=pa.int64()).cast(item.type)
        else:
            array = pa.array(column.to_numpy(dtype=object), type=item.type)
        arrays.append(array)
    names = [item.name for item in schema]
    return pa.Table.from_arrays(arrays, names=names)


def write_contract(source: FileReplay, out: str | Path, *, on_chunk: Any = None) -> ConvertResult:
    """Write every accepted row of ``source`` as contract rows to ``out`` (``.parquet`` or ``.csv``).

    Columnar all the way (no per-row Python): each mapped chunk becomes one Arrow record batch. The file
    is written under a temporary name and renamed at the end, so a failed run leaves no half file.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise MappingError(f"{out}: output must end in .parquet or .csv")
    schema = contract_schema(source.mapping.mapped_fields())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    rows = 0
    writer: Any = None
    try:
        for frame in source.iter_frames():
            if suffix == ".csv":
                table = _arrow_table(frame, schema, csv_times=True)
                if writer is None:
                    writer = pacsv.CSVWriter(str(tmp), table.schema)
            else:
                table = _arrow_table(frame, schema, csv_times=False)
                if writer is None:
                    writer = pq.ParquetWriter(str(tmp), schema, compression="zstd")
            if table.num_rows:
                writer.write_table(table)
            rows += table.num_rows
            if on_chunk is not None:
                on_chunk(rows)
        if writer is None:  # nothing read at all: still a valid, empty file
            empty = _arrow_table(pd.DataFrame({f.name: [] for f in schema}), schema, suffix == ".csv")
            if suffix == ".csv":
                writer = pacsv.CSVWriter(str(tmp), empty.schema)
            else:
                writer = pq.ParquetWriter(str(tmp), schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(out)
    return ConvertResult(out, rows, time.perf_counter() - started)
