"""Mapping features for real vendor exports: several source columns, statistics columns, sentinels,
``on_invalid: null``, status and turbine tables, UTC offsets / duplicates / gaps, metadata -> register,
``convert``; hostile cells never stop a file and every mapping mistake is reported with its key."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from common.contracts import STATUS_CURTAILED, STATUS_FAULT, STATUS_OK, TelemetryEvent, parse_telemetry
from common.fleet import read_register
from producers.convert import write_contract
from producers.mapping import MappingError, load_mapping, parse_mapping
from producers.metadata import build_register
from producers.replay import FileReplay
from producers.serialize import encode_record

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _mapping(**over: Any):  # type: ignore[no-untyped-def]
    data: dict[str, Any] = {
        "timestamp": {"column": "ts", "format": "iso", "timezone": "Europe/Paris"},
        "turbine_id": {"column": "turbine"},
        "site_id": {"constant": "SITE-A"},
        "fields": {"power_kw": {"source": "p"}},
    }
    data.update(over)
    return parse_mapping(data, "m.yaml")


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "x.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _frame(**columns: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def _records(path: Path, mapping: Any, **kw: Any) -> tuple[list[dict[str, Any]], FileReplay]:
    source = FileReplay(path, mapping, now=NOW, **kw)
    return list(source.iter_records()), source


def _isnan(value: Any) -> bool:
    return value is None or value != value


# ------------------------------------------------------------------------------ several sources
AGGREGATES = [
    ("mean", [11.0, 12.0, 14.0, None]),
    ("max", [12.0, 12.0, 14.0, None]),
    ("min", [10.0, 12.0, 14.0, None]),
    ("first", [10.0, 12.0, 14.0, None]),
]


@pytest.mark.parametrize(("aggregate", "expected"), AGGREGATES)
def test_several_source_columns_are_aggregated_over_valid_values(
    tmp_path: Path, aggregate: str, expected: list[float | None]
) -> None:
    frame = _frame(
        ts=[f"2024-01-01T00:{m}0:00+01:00" for m in range(4)],
        turbine=["T1"] * 4,
        a=["10", "9999", "", "9999"],
        b=["12", "12", "14", ""],
        p=["1"] * 4,
    )
    mapping = _mapping(
        fields={
            "wind_speed_ms": {"sources": ["a", "b"], "aggregate": aggregate, "na_values": [9999]},
            "power_kw": "p",
        }
    )
    records, source = _records(_csv(tmp_path, frame), mapping)
    got = [None if _isnan(r["wind_speed_ms"]) else r["wind_speed_ms"] for r in records]
    assert got == expected
    assert source.report.sentinels == {"wind_speed_ms": 2}
    assert "mean('a', 'b')" in mapping.describe()[0] or aggregate != "mean"


def test_statistics_columns_must_exist_and_are_not_published(tmp_path: Path) -> None:
    mapping = _mapping(
        fields={
            "wind_speed_ms": {"source": "ws", "stats": {"min": "ws_min", "max": "ws_max", "std": "ws_sd"}}
        }
    )
    frame = _frame(
        ts=["2024-01-01T00:00:00Z"], turbine=["T1"], ws=["8"], ws_min=["6"], ws_max=["9"], ws_sd=["1"]
    )
    [record], source = _records(_csv(tmp_path, frame), mapping)
    assert record["wind_speed_ms"] == 8.0
    assert not any(k.startswith("ws") for k in record)
    assert source.report.stats_columns == ["ws_min", "ws_max", "ws_sd"]
    assert any("not in the contract" in line for line in mapping.describe())
    with pytest.raises(MappingError, match=r"\['ws_sd'\] named in the mapping are not in the file"):
        FileReplay(_csv(tmp_path, frame.drop(columns=["ws_sd"]), "y.csv"), mapping)


def test_columns_and_fields_together_and_each_field_once() -> None:
    mapping = _mapping(columns={"W": "wind_speed_ms"}, fields={"power_kw": {"sources": ["p1", "p2"]}})
    assert mapping.mapped_fields() == ["wind_speed_ms", "power_kw"]
    assert mapping.source_columns() == ["ts", "turbine", "p1", "p2", "W"] or set(
        mapping.source_columns()
    ) == {
        "ts",
        "turbine",
        "W",
        "p1",
        "p2",
    }
    with pytest.raises(MappingError, match="power_kw is mapped twice"):
        _mapping(columns={"P": "power_kw"}, fields={"power_kw": "p"})


# ------------------------------------------------------------------------------ sentinels, on_invalid
def test_sentinels_numeric_and_text_per_column_and_global(tmp_path: Path) -> None:
    frame = _frame(
        ts=[f"2024-01-01T00:{m}0:00Z" for m in range(5)],
        turbine=["T1"] * 5,
        t=["-273.2", "-273.20", "12.5", "---", "n/a "],
        p=["9999", "100", "---", "200", "300"],
    )
    mapping = _mapping(
        na_values=[9999, "---"],
        fields={"ambient_temp_c": {"source": "t", "na_values": [-273.2, "N/A"]}, "power_kw": "p"},
    )
    records, source = _records(_csv(tmp_path, frame), mapping)
    assert len(records) == 5 and not source.rejected
    assert [None if _isnan(r["ambient_temp_c"]) else r["ambient_temp_c"] for r in records] == [
        None,
        None,
        12.5,
        None,
        None,
    ]
    assert [None if _isnan(r["power_kw"]) else r["power_kw"] for r in records] == [None, 100, None, 200, 300]
    # "n/a " (with its space) is not pandas' own NA spelling: the mapping's "N/A" catches it
    assert source.report.sentinels == {"ambient_temp_c": 4, "power_kw": 2}


def test_text_sentinels_in_a_parquet_string_column(tmp_path: Path) -> None:
    frame = _frame(ts=pd.to_datetime(["2024-01-01T00:00Z"] * 3, utc=True), turbine=["T1", "T2", "T3"])
    frame["p"] = ["NaN", "12", "---"]
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    records, source = _records(
        path, _mapping(fields={"power_kw": {"source": "p", "na_values": ["nan", "---"]}})
    )
    assert [r["turbine_id"] for r in records] == ["T1", "T2", "T3"]
    assert source.report.sentinels == {"power_kw": 2}


def test_on_invalid_null_keeps_the_row_and_counts_per_field(tmp_path: Path) -> None:
    frame = _frame(
        ts=[f"2024-01-01T00:{m}0:00Z" for m in range(3)],
        turbine=["T1"] * 3,
        pitch=["-45", "abc", "3"],
        p=["100", "200", "300"],
        ws=["7", "8", "-1"],
    )
    mapping = _mapping(
        fields={
            "pitch_angle_deg": {"source": "pitch", "on_invalid": "null"},
            "power_kw": "p",
            "wind_speed_ms": "ws",
        }
    )
    records, source = _records(_csv(tmp_path, frame), mapping)
    assert [r["power_kw"] for r in records] == [100, 200]  # the bad wind speed still rejects its row
    assert _isnan(records[0]["pitch_angle_deg"]) and _isnan(records[1]["pitch_angle_deg"])
    assert source.report.nulled == {"pitch_angle_deg (out of range)": 1, "pitch_angle_deg (not a number)": 1}
    assert source.rejected == {"out of range: wind_speed_ms": 1}
    lines = "\n".join(source.report.lines())
    assert "pitch_angle_deg (out of range) 1" in lines
    _, value = encode_record(records[0])  # a nulled value is a null on the wire
    assert parse_telemetry(value, now=NOW).pitch_angle_deg is None


def test_mapping_wide_on_invalid_and_a_tighter_plausible_range(tmp_path: Path) -> None:
    frame = _frame(
        ts=["2024-01-01T00:00Z", "2024-01-01T00:10Z"], turbine=["T1"] * 2, t=["65", "20"], p=["1", "2"]
    )
    fields = {"ambient_temp_c": {"source": "t", "range": [-40, 50]}, "power_kw": "p"}
    records, source = _records(_csv(tmp_path, frame), _mapping(on_invalid="null", fields=fields))
    assert len(records) == 2 and _isnan(records[0]["ambient_temp_c"])
    assert source.report.nulled == {"ambient_temp_c (out of range)": 1}
    records, source = _records(_csv(tmp_path, frame, "y.csv"), _mapping(fields=fields))
    assert len(records) == 1 and source.rejected == {"out of range: ambient_temp_c": 1}
    assert "allowed [-40, 50]" in source.examples["out of range: ambient_temp_c"][0]


def test_unquoted_yaml_null_means_the_null_policy() -> None:
    """``on_invalid: null`` without quotes is YAML's null; it must not fall back to ``reject``."""
    import yaml

    text = """
timestamp: {column: ts}
turbine_id: {column: turbine}
site_id: {constant: SITE-A}
fields:
  power_kw: {source: p, on_invalid: null}
  wind_speed_ms: {source: w}
"""
    mapping = parse_mapping(yaml.safe_load(text))
    assert [(s.field, s.on_invalid) for s in mapping.signal_sources()] == [
        ("wind_speed_ms", "reject"),
        ("power_kw", "null"),
    ]
    top = parse_mapping(yaml.safe_load(text + "on_invalid: null\n"))
    assert {s.on_invalid for s in top.signal_sources()} == {"null"}


# ------------------------------------------------------------------------------ lookups
def test_status_lookup_by_name_and_number_unknown_to_default_counted(tmp_path: Path) -> None:
    frame = _frame(
        ts=[f"2024-01-01T00:{m}0:00Z" for m in range(5)],
        turbine=["T1"] * 5,
        st=["Run", "1001", "1001.0", "Derated", "weird\x00code"],
        p=["1"] * 5,
    )
    status = {"column": "st", "lookup": {"Run": "OK", 1001: "FAULT", "Derated": 10}, "default": "OK"}
    records, source = _records(_csv(tmp_path, frame), _mapping(status_code=status))
    assert [r["status_code"] for r in records] == [STATUS_OK, STATUS_FAULT, STATUS_FAULT, STATUS_CURTAILED, 0]
    assert source.report.unknown_status == {"'weird\\x00code'": 1}
    records, source = _records(
        _csv(tmp_path, frame, "y.csv"), _mapping(status_code={**status, "unknown": "reject"})
    )
    assert len(records) == 4 and source.rejected == {"unknown status code": 1}


def test_turbine_table_gives_ids_and_sites_unknown_vendor_ids_rejected(tmp_path: Path) -> None:
    frame = _frame(
        ts=["2024-01-01T00:00Z"] * 4,
        turbine=["T01", " T02 ", "T99", "X" * 10_000],
        p=["1", "2", "3", "4"],
    )
    mapping = _mapping(
        site_id=None,
        turbines={
            "T01": {"turbine_id": "V-WT-001", "site_id": "V-SITE"},
            "T02": {"turbine_id": "V-WT-002", "site_id": "V-SITE"},
        },
    )
    records, source = _records(_csv(tmp_path, frame), mapping)
    assert [(r["turbine_id"], r["site_id"]) for r in records] == [
        ("V-WT-001", "V-SITE"),
        ("V-WT-002", "V-SITE"),
    ]
    assert source.rejected == {"unknown turbine id": 2}
    assert all(len(e) < 200 for e in source.examples["unknown turbine id"])  # huge ids are cut in details


def test_turbine_table_site_falls_back_to_site_id_and_numeric_vendor_ids(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"ts": pd.to_datetime(["2024-01-01T00:00Z"] * 2, utc=True), "turbine": [1.0, 2.0], "p": [1.0, 2.0]}
    )
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    mapping = _mapping(turbines={1: "WT-1", "2": {"turbine_id": "WT-2", "site_id": "S-2"}})
    records, _ = _records(path, mapping)
    assert [(r["turbine_id"], r["site_id"]) for r in records] == [("WT-1", "SITE-A"), ("WT-2", "S-2")]


def test_vendor_ids_written_as_numbers_match_however_they_are_written(tmp_path: Path) -> None:
    import yaml

    table = yaml.safe_load("turbines: {01: WT-1, '02': WT-2, 3: WT-3}")["turbines"]  # YAML reads 01 as 1
    times = [f"2024-01-01T00:{m}0Z" for m in range(5)]
    frame = _frame(ts=times, turbine=["01", "2", "3.0", "003", "9" * 5000], p=["1"] * 5)
    records, source = _records(_csv(tmp_path, frame), _mapping(turbines=table))
    assert [r["turbine_id"] for r in records] == ["WT-1", "WT-2", "WT-3", "WT-3"]
    assert source.rejected == {"unknown turbine id": 1}  # a 5000-digit id is text, not a number


# ------------------------------------------------------------------------------ time: offsets, DST
def test_mixed_offsets_duplicates_and_gaps_are_reported_with_counts(tmp_path: Path) -> None:
    # the exporter's DST bug: on 2024-03-31 every row carries the day's final offset (+02:00)
    times = [f"2024-03-30T{h:02d}:{m}0:00+01:00" for h in range(22, 24) for m in range(6)]
    times += [f"2024-03-31T{h:02d}:{m}0:00+02:00" for h in (0, 1, 3, 4) for m in range(6)]
    frame = _frame(
        ts=times * 2, turbine=["T1"] * len(times) + ["T2"] * len(times), p=["5"] * (2 * len(times))
    )
    records, source = _records(_csv(tmp_path, frame), _mapping(), chunk_rows=7)  # across chunks too
    report = source.report
    assert report.complete
    assert report.offsets == {"+01:00": 24, "+02:00": 48} and report.mixed_offsets
    # 00:00-00:50 (+02:00) = 22:00-22:50 UTC, already read from the day before
    assert report.duplicates == {"T1": 6, "T2": 6} and report.duplicates_at_dst == 12
    assert source.rejected == {"duplicate event time": 12}
    # 01:50+02:00 = 23:50 UTC, then 03:00+02:00 = 01:00 UTC: a 70-minute gap per turbine, at the change
    assert {t: (g.gaps, g.missing_steps, g.at_dst) for t, g in report.gaps.items()} == {
        "T1": (1, 6, 1),
        "T2": (1, 6, 1),
    }
    assert len(records) == 2 * (len(times) - 6)
    keys = [(r["turbine_id"], r["event_time"]) for r in records]
    assert len(set(keys)) == len(keys)
    text = "\n".join(report.lines())
    assert "mixed offsets" in text and "12 rows rejected" in text
    assert "T1: 1 gaps, 6 missing 10-min steps" in text


def test_naive_local_times_in_the_autumn_fold_resolved_by_order(tmp_path: Path) -> None:
    local = [
        "27/10/2024 01:50",
        "27/10/2024 02:00",
        "27/10/2024 02:10",
        "27/10/2024 02:00",
        "27/10/2024 02:10",
    ]
    local += ["27/10/2024 03:00"]
    frame = _frame(ts=local, turbine=["T1"] * len(local), p=["1"] * len(local))
    ts = {"column": "ts", "format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"}
    records, source = _records(_csv(tmp_path, frame), _mapping(timestamp={**ts, "ambiguous": "order"}))
    assert [r["event_time"].strftime("%H:%M") for r in records] == [
        "23:50",
        "00:00",
        "00:10",
        "01:00",
        "01:10",
        "02:00",
    ]
    assert not source.rejected
    assert source.report.folds_resolved == 4
    assert "4 rows placed by order" in "\n".join(source.report.lines())
    _, source = _records(_csv(tmp_path, frame, "y.csv"), _mapping(timestamp=ts))
    assert source.rejected == {"ambiguous local time (DST fold)": 4}


def test_offsets_on_some_rows_only_naive_rows_are_local_times(tmp_path: Path) -> None:
    frame = _frame(
        ts=["2024-07-01T12:00:00+02:00", "2024-07-01T12:10:00"], turbine=["T1", "T1"], p=["1", "2"]
    )
    records, source = _records(_csv(tmp_path, frame), _mapping())
    assert [r["event_time"] for r in records] == [
        datetime(2024, 7, 1, 10, 0, tzinfo=UTC),
        datetime(2024, 7, 1, 10, 10, tzinfo=UTC),
    ]
    assert source.report.offsets == {"+02:00": 1, "none": 1}


# ------------------------------------------------------------------------------ hostile cells
@pytest.mark.parametrize(
    ("cell_column", "value", "reason"),
    [
        ("ts", "2024-01-01T00:00:00\x00Z", "unparseable timestamp"),
        ("ts", "9" * 100_000, "unparseable timestamp"),
        ("ts", "1970-01-01T00:00:00Z", "event time before 2000-01-01"),
        ("ts", "2999-01-01T00:00:00Z", "event time in the future"),
        ("turbine", "T\x1b1", "invalid turbine id"),
        ("turbine", "T" * 100, "turbine id too long"),
        ("p", "1\x002", "not a number: power_kw"),
        ("p", "x" * 1_000_000, "not a number: power_kw"),
        ("p", "1e400", "not a number: power_kw"),
        ("ws", "\u202e7", "not a number: wind_speed_ms"),
    ],
)
def test_hostile_cells_reject_only_their_row_with_a_short_detail(
    tmp_path: Path, cell_column: str, value: str, reason: str
) -> None:
    rows = {
        "ts": ["2024-01-01T00:00:00Z"] * 3,
        "turbine": ["T1", "T2", "T3"],
        "p": ["1"] * 3,
        "ws": ["5"] * 3,
    }
    rows[cell_column][1] = value
    path = tmp_path / "x.parquet"  # Parquet keeps NUL and control characters intact
    pd.DataFrame(rows).to_parquet(path)
    mapping = _mapping(fields={"power_kw": "p", "wind_speed_ms": "ws"})
    records, source = _records(path, mapping)
    assert [r["turbine_id"] for r in records] == ["T1", "T3"]
    assert source.rejected == {reason: 1}
    assert len(source.examples[reason][0]) < 300


def test_wrong_types_in_parquet_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-01T00:00Z", "2024-01-01T00:10Z"], utc=True),
            "turbine": [7, 8],  # integers where text is expected
            "p": [True, False],  # booleans where numbers are expected
        }
    )
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    records, source = _records(path, _mapping(turbine_id={"column": "turbine", "prefix": "WT-"}))
    assert records == [] and source.rejected == {"not a number: power_kw": 2}
    assert source.examples["not a number: power_kw"][0] == "row 1: p=True"
    frame["p"] = [1.5, 2.5]  # with numbers, the integer ids make valid contract ids
    frame.to_parquet(path)
    records, source = _records(path, _mapping(turbine_id={"column": "turbine", "prefix": "WT-"}))
    assert [r["turbine_id"] for r in records] == ["WT-7", "WT-8"]
    for record in records:
        TelemetryEvent(**{**record, "event_id": "x"})


def test_nul_control_characters_and_bad_bytes_in_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(
        b"ts,turbine,st,p\n"
        b"2024-01-01T00:00:00Z,T1,Run,1\n"
        b"2024-01-01T00:10:00Z,T\x001,Run,2\n"
        b"2024-01-01T00:20:00Z,T1,R\x1bun,3\n"
        b"2024-01-01T00:30:00Z,T1,Run,4\xff\xfe\n"
        b"2024-01-01T00:40:00\x07Z,T1,Run,5\n"
        b"2024-01-01T00:50:00Z,T1,Run,6\n"
    )
    mapping = _mapping(status_code={"column": "st", "lookup": {"Run": "OK"}, "unknown": "reject"})
    records, source = _records(path, mapping)
    assert [r["power_kw"] for r in records] == [1.0, 6.0]
    assert sum(source.rejected.values()) == 4 and source.rows_read == 6
    assert source.rejected["not a number: power_kw"] == 1 and source.rejected["unknown status code"] == 1


# ------------------------------------------------------------------------------ mapping mistakes
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fields": {"power_w": {"source": "p"}}}, "fields.power_w.field"),
        ({"fields": {"power_kw": {"source": "p", "sources": ["a", "b"]}}}, "exactly one of 'source'"),
        (
            {"fields": {"power_kw": {"sources": ["a", "b"], "aggregate": "median"}}},
            "fields.power_kw.aggregate",
        ),
        ({"fields": {"power_kw": {"sources": ["a", "a"]}}}, "listed twice"),
        ({"fields": {"power_kw": {"source": "p", "unit": "degF"}}}, "temperature unit but power_kw"),
        ({"fields": {"power_kw": {"source": "p", "on_invalid": "drop"}}}, "fields.power_kw.on_invalid"),
        ({"fields": {"power_kw": {"source": "p", "range": [5, 1]}}}, "must be below its maximum"),
        (
            {"fields": {"power_kw": {"source": "p", "range": [30000, 40000]}}},
            "outside the contract's [-200, 20000]",
        ),
        ({"fields": {"power_kw": {"source": "p", "stats": {"median": "x"}}}}, "fields.power_kw.stats.median"),
        ({"status_code": {"column": "s", "lookup": {"Run": "RUNNING"}}}, "not a contract status"),
        ({"status_code": {"column": "s", "lookup": {"Run": 1000}}}, "outside [0, 999]"),
        ({"turbines": {"T1": "bad id"}}, "turbines.T1.turbine_id"),
        ({"turbines": {"T1": "WT-1", "T2": "WT-1"}}, "both map to 'WT-1'"),
        ({"turbines": {"T1": "WT-1"}, "turbine_id": {"column": "t", "prefix": "X-"}}, "turbine_id.prefix"),
        ({"turbines": {"T1": "WT-1"}, "site_id": None}, "site_id: required"),
        ({"site_id": None}, "site_id: required"),
        ({"columns": {}, "fields": {}}, "map at least one signal"),
        (
            {"metadata": {"file": "m.csv", "turbine": "T", "columns": {"colour": "C"}}},
            "unknown register field",
        ),
        (
            {
                "metadata": {
                    "file": "m.csv",
                    "turbine": "T",
                    "columns": {"model": {"column": "M", "unit": "kW"}},
                }
            },
            "only for rated_power_kw",
        ),
        ({"timestamp": {"column": "ts", "ambiguous": "guess"}}, "timestamp.ambiguous"),
    ],
)
def test_mapping_mistakes_name_their_key(change: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {
        "timestamp": {"column": "ts"},
        "turbine_id": {"column": "turbine"},
        "site_id": {"constant": "SITE-A"},
        "fields": {"power_kw": "p"},
    }
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(MappingError) as err:
        parse_mapping(data, "m.yaml")
    assert "m.yaml: invalid replay mapping" in str(err.value)
    assert message in str(err.value)


def test_every_new_mistake_is_reported_at_once() -> None:
    data = {
        "timestamp": {"column": "ts"},
        "turbine_id": {"column": "turbine"},
        "site_id": {"constant": "SITE-A"},
        "fields": {"nope": "x", "power_kw": {"source": "p", "aggregate": "median"}},
        "status_code": {"column": "s", "lookup": {"a": "NOPE"}},
    }
    with pytest.raises(MappingError, match=r"\(3 problem\(s\)\)"):
        parse_mapping(data)


# ------------------------------------------------------------------------------ convert
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_convert_writes_contract_rows_like_the_replay(tmp_path: Path, suffix: str) -> None:
    frame = _frame(
        ts=[f"2024-01-01T00:{m}0:00+01:00" for m in range(4)],
        turbine=["T1", "T1", "T2", "T2"],
        p=["1", "9999", "3", "bad"],
        ws=["5", "6", "", "8"],
    )
    mapping = _mapping(na_values=[9999], fields={"power_kw": "p", "wind_speed_ms": "ws"})
    path = _csv(tmp_path, frame)
    out = tmp_path / f"contract{suffix}"
    result = write_contract(FileReplay(path, mapping, now=NOW), out)
    assert result.rows == 3 and out.exists() and not out.with_name(out.name + ".partial").exists()
    got = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(got.columns) == [
        "turbine_id",
        "site_id",
        "event_time",
        "wind_speed_ms",
        "power_kw",
        "status_code",
    ]
    times = pd.to_datetime(got["event_time"], utc=True)
    assert times.tolist() == [pd.Timestamp(f"2023-12-31T23:{m}0:00Z") for m in range(3)]
    assert got["power_kw"].isna().tolist() == [False, True, False]
    assert got["wind_speed_ms"].isna().tolist() == [False, False, True]
    records = list(FileReplay(path, mapping, now=NOW).iter_records())
    assert [r["turbine_id"] for r in records] == got["turbine_id"].tolist()


def test_convert_of_a_file_with_no_good_row_writes_an_empty_contract_file(tmp_path: Path) -> None:
    path = _csv(tmp_path, _frame(ts=["bad"], turbine=["T1"], p=["1"]))
    out = tmp_path / "c.parquet"
    assert write_contract(FileReplay(path, _mapping(), now=NOW), out).rows == 0
    assert len(pd.read_parquet(out)) == 0
    with pytest.raises(MappingError, match=r"\.parquet or \.csv"):
        write_contract(FileReplay(path, _mapping(), now=NOW), tmp_path / "c.xlsx")


# ------------------------------------------------------------------------------ metadata -> register
METADATA = (
    "Turbine;Model;Rated (MW);Rotor (m);Lat;Lon;Commissioned\n"
    "T01;WM-2;2.25;90;47.1;1.5;15/11/2014\n"
    "T02;WM-2;2,25;90;47.2;1.6;16/11/2014\n"
)


def _meta_mapping(tmp_path: Path, text: str = METADATA, **meta: Any) -> tuple[Any, Path]:
    (tmp_path / "meta.csv").write_text(text, encoding="utf-8")
    section = {
        "file": "meta.csv",
        "csv": {"delimiter": ";", "decimal": ","},
        "turbine": "Turbine",
        "columns": {
            "model": "Model",
            "manufacturer": {"constant": "Windmaster"},
            "rated_power_kw": {"column": "Rated (MW)", "unit": "MW"},
            "rotor_diameter_m": "Rotor (m)",
            "latitude": "Lat",
            "longitude": "Lon",
            "commissioning_date": {"column": "Commissioned", "format": "%d/%m/%Y"},
        },
        **meta,
    }
    mapping = _mapping(
        site_id=None,
        turbines={"T01": {"turbine_id": "V-1", "site_id": "S"}, "T02": {"turbine_id": "V-2", "site_id": "S"}},
        fields={"power_kw": "p", "wind_speed_ms": "ws"},
        metadata=section,
    )
    return mapping, tmp_path / "m.yaml"


def test_metadata_file_becomes_a_fleet_register(tmp_path: Path) -> None:
    mapping, mapping_path = _meta_mapping(tmp_path)
    result = build_register(mapping, mapping_path)
    assert result.warnings == [] and result.rows == 2
    one = result.register.get("V-1")
    assert one is not None and one.site_id == "S" and one.manufacturer == "Windmaster"
    assert one.rated_power_kw == pytest.approx(2250.0) and one.rotor_diameter_m == 90.0
    assert one.commissioning_date == date(2014, 11, 15)
    assert one.fitted_sensors == frozenset({"power_kw", "wind_speed_ms"})  # what the mapping maps
    two = result.register.get("V-2")
    assert two is not None and two.rated_power_kw == pytest.approx(2250.0)  # decimal comma


def test_metadata_problems_are_listed_together(tmp_path: Path) -> None:
    text = METADATA + "T03;WM-2;x;90;47;1;2014-01-01\nT01;WM-2;2;-5;95;1;31/02/2014\n;a;1;1;1;1;01/01/2014\n"
    mapping, mapping_path = _meta_mapping(tmp_path, text)
    with pytest.raises(MappingError) as err:
        build_register(mapping, mapping_path)
    message = str(err.value)
    assert "invalid metadata" in message
    assert "(4 problem(s))" in message
    assert "line 5 ('T01'): Commissioned: '31/02/2014' is not a date (%d/%m/%Y)" in message
    assert "line 5 ('T01'): rotor_diameter_m: Input should be greater than 0" in message
    assert "line 5 ('T01'): latitude: Input should be less than or equal to 90" in message
    assert "line 6: Turbine: empty turbine id" in message
    assert "T03" not in message  # not in the turbines table: a warning, not an error


def test_metadata_missing_file_columns_and_section(tmp_path: Path) -> None:
    mapping, mapping_path = _meta_mapping(tmp_path)
    with pytest.raises(MappingError, match="no such metadata file"):
        build_register(mapping, mapping_path, tmp_path / "nope.csv")
    (tmp_path / "other.csv").write_text("Turbine;Model\nT01;x\n", encoding="utf-8")
    with pytest.raises(MappingError, match="not in the file"):
        build_register(mapping, mapping_path, tmp_path / "other.csv")
    with pytest.raises(MappingError, match="no 'metadata' section"):
        build_register(_mapping(), None)


def test_register_command_writes_a_register_the_fleet_reader_accepts(tmp_path: Path) -> None:
    mapping, _ = _meta_mapping(tmp_path)
    mapping_path = tmp_path / "m.yaml"
    import yaml

    mapping_path.write_text(
        yaml.safe_dump(mapping.model_dump(mode="json", exclude_none=True)), encoding="utf-8"
    )
    out = tmp_path / "fleet.yaml"
    result = _cli("producers", "register", "--mapping", str(mapping_path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 2 turbine(s)" in result.stdout
    assert sorted(read_register(out).turbines) == ["V-1", "V-2"]
    bad = _cli("producers", "register", "--mapping", str(mapping_path), "--out", str(tmp_path / "f.txt"))
    assert bad.returncode == 2


def test_convert_command_refuses_bad_outputs_and_mappings(tmp_path: Path) -> None:
    examples = ROOT / "producers" / "examples"
    data = tmp_path / "export.csv"
    data.write_bytes((examples / "vendor_export.csv").read_bytes())
    mapping = str(examples / "vendor_mapping.yaml")
    same = _cli("producers", "convert", "--mapping", mapping, "--input", str(data), "--out", str(data))
    assert same.returncode == 2 and "is the input file" in same.stderr
    assert data.read_bytes() == (examples / "vendor_export.csv").read_bytes()
    odd = _cli(
        "producers", "convert", "--mapping", mapping, "--input", str(data), "--out", str(tmp_path / "c.xlsx")
    )
    assert odd.returncode == 2 and ".parquet or .csv" in odd.stderr
    broken = tmp_path / "m.yaml"
    broken.write_text("timestamp: {column: ts}\nfields: {power_w: P}\n", encoding="utf-8")
    bad = _cli(
        "producers",
        "convert",
        "--mapping",
        str(broken),
        "--input",
        str(data),
        "--out",
        str(tmp_path / "c.csv"),
    )
    assert bad.returncode == 2
    assert "fields.power_w.field" in bad.stderr and "turbine_id: Field required" in bad.stderr


def test_example_vendor_mapping_converts_and_registers(tmp_path: Path) -> None:
    """The documented example: every new key at work on a small vendor file."""
    examples = ROOT / "producers" / "examples"
    mapping = load_mapping(examples / "vendor_mapping.yaml")
    source = FileReplay(examples / "vendor_export.csv", mapping, now=NOW)
    out = tmp_path / "c.parquet"
    assert write_contract(source, out).rows == 8
    got = pd.read_parquet(out)
    assert source.rejected == {"duplicate event time": 2, "unknown turbine id": 1}
    assert got["wind_speed_ms"].iloc[0] == 7.2  # mean of both anemometers
    assert got["wind_speed_ms"].iloc[2] == 7.4  # 9999 on the second one: the first alone
    assert got["ambient_temp_c"].isna().sum() == 2 and got["pitch_angle_deg"].isna().sum() == 1
    assert got["status_code"].tolist() == [0, 0, 0, 0, STATUS_CURTAILED, 0, 0, 40]
    assert source.report.unknown_status == {"'E-1042'": 1}
    assert sum(g.at_dst for g in source.report.gaps.values()) == 2
    register = build_register(mapping, examples / "vendor_mapping.yaml").register
    assert sorted(register.turbines) == ["EX-WT-01", "EX-WT-02"]
    spec = register.get("EX-WT-01")
    assert spec is not None and spec.rated_power_kw == pytest.approx(2250.0) and spec.latitude == 47.41021


# ------------------------------------------------------------------------------ end to end (subprocess)
def _cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COCKPIT_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env["COLUMNS"] = "400"  # usage errors in one line
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def test_vendor_export_converts_to_the_rows_expected(tmp_path: Path) -> None:
    """4 turbines x 30 days across the spring DST change: the exact rows, ids, UTC times and nulls."""
    export = tmp_path / "export"
    made = _cli(
        "simulator",
        "vendor-export",
        "--turbines",
        "4",
        "--days",
        "30",
        "--start",
        "2024-03-15",
        "--out",
        str(export),
        "-q",
    )
    assert made.returncode == 0, made.stderr
    out = tmp_path / "contract.parquet"
    mapping, scada = str(export / "mapping.yaml"), str(export / "scada.csv")
    done = _cli("producers", "convert", "--mapping", mapping, "--input", scada, "--out", str(out))
    assert done.returncode == 0, done.stderr
    got = pd.read_parquet(out)

    # What the rows must be, computed independently from the raw file.
    raw = pd.read_csv(export / "scada.csv", sep=";", dtype=str)
    utc = pd.to_datetime(raw["Date_time"], utc=True, format="ISO8601")
    ids = raw["Wind_turbine_name"].map(lambda v: f"V-WT-{int(v[1:]):03d}")
    expected = pd.DataFrame({"turbine_id": ids, "event_time": utc}).drop_duplicates(keep="first")
    assert len(got) == len(expected) < len(raw)  # DST duplicates dropped
    assert got[["turbine_id", "event_time"]].reset_index(drop=True).equals(expected.reset_index(drop=True))
    assert sorted(got["turbine_id"].unique()) == ["V-WT-001", "V-WT-002", "V-WT-003", "V-WT-004"]
    assert (got["site_id"] == "V-SITE-A").all() and (got["status_code"] == 0).all()
    assert list(got.columns)[3:-1] == [
        "wind_speed_ms",
        "wind_direction_deg",
        "ambient_temp_c",
        "power_kw",
        "rotor_rpm",
        "pitch_angle_deg",
        "nacelle_direction_deg",
    ]
    assert (got["power_kw"] < 0).any()  # stopped turbines' auxiliary consumption survives
    assert got["ambient_temp_c"].min() > -60  # -273.2 read as no value
    dead_probe = (raw["Ot_avg"].astype(float) == -273.2).sum()
    assert got["ambient_temp_c"].isna().sum() >= dead_probe > 0
    assert got["wind_speed_ms"].max() < 80  # 9999 of one anemometer never leaks into the mean
    assert "duplicate event time" in done.stdout and "mixed offsets" in done.stdout
    assert '"message":"import report"' in done.stderr
    truth = pd.read_csv(export / "ground_truth.csv")
    assert set(truth["turbine"]) <= set(got["turbine_id"])
    assert np.isfinite(got["wind_speed_ms"].dropna()).all()
