"""Typed rows generate their column lists; the sink's statements and arrays follow them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from common.rows import (
    ALL_ROWS,
    ASSESSMENT_COLUMNS,
    TELEMETRY_AGG_SIGNALS,
    AggRow,
    HistoryRow,
    StateRow,
    TurbineSeenRow,
)

pytestmark = pytest.mark.unit

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_columns_types_and_values_follow_the_fields() -> None:
    assert TurbineSeenRow.COLUMNS == ("turbine_id", "site_id", "last_event_time")
    assert TurbineSeenRow.PG_TYPES == ("text", "text", "timestamptz")
    assert TurbineSeenRow("WT-1", "S", T).values() == ("WT-1", "S", T)
    for row in ALL_ROWS:
        assert row.TABLE and len(row.COLUMNS) == len(row.PG_TYPES) == len(set(row.COLUMNS))
    for row in (HistoryRow, StateRow):
        assert set(ASSESSMENT_COLUMNS) <= set(row.COLUMNS)
    assert set(TELEMETRY_AGG_SIGNALS) | {"bucket", "turbine_id", "samples"} == set(AggRow.COLUMNS)


def test_agg_row_from_means_in_signal_order() -> None:
    means = [float(i) for i in range(len(TELEMETRY_AGG_SIGNALS))]
    row = AggRow.of(T, "WT-1", 3, means)
    values = dict(zip(AggRow.COLUMNS, row.values(), strict=True))
    assert [values[s] for s in TELEMETRY_AGG_SIGNALS] == means
    assert (values["bucket"], values["turbine_id"], values["samples"]) == (T, "WT-1", 3)
    with pytest.raises(ValueError):
        AggRow.of(T, "WT-1", 3, means[:-1])


def test_sink_arrays_are_one_type_per_column() -> None:
    from scorer.sink import WRITES, column_arrays, copy_values

    rows = [AggRow.of(T, "WT-1", 1, [1, 2.5, None, 0, 0, 0, 0, 0, 0]), AggRow.of(T, "WT-2", 2, [1.5] * 9)]
    arrays = dict(zip(AggRow.COLUMNS, column_arrays(AggRow, rows), strict=True))
    assert arrays["wind_speed_ms"] == [1.0, 1.5] and all(type(v) is float for v in arrays["wind_speed_ms"])
    assert arrays["samples"] == [1, 2]
    hist = HistoryRow(
        time=T, turbine_id="WT-1", trigger="sweep", score=1, tier="low", probability=None, ttf_days=None,
        ttf_low_days=None, ttf_high_days=None, model_version="v", run_id=str(uuid.UUID(int=1)), reasons="[]",
        data_quality="{}", calibration_version=None,
    )  # fmt: skip
    (values,) = copy_values(HistoryRow, [hist])
    by_name = dict(zip(HistoryRow.COLUMNS, values, strict=True))
    assert str(by_name["run_id"]) == hist.run_id and type(by_name["score"]) is float
    assert by_name["reasons"].obj == "[]"  # JSON text sent as it is, not re-encoded as a string
    assert set(WRITES) == set(ALL_ROWS)
    for spec in WRITES.values():
        assert set(spec.key) <= set(spec.row.COLUMNS)
        assert spec.unnest_statement().count("%b") == len(spec.row.COLUMNS)
