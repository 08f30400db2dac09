"""File replay: vectorised mapping, reject reasons (never fatal), rejects file, CSV and Parquet."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from common.contracts import TelemetryEvent, parse_telemetry
from producers.mapping import MappingError, load_mapping, parse_mapping
from producers.replay import FileReplay
from producers.serialize import encode_record

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "producers" / "examples"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _mapping(**over: object):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {
        "timestamp": {"column": "ts", "format": "iso"},
        "turbine_id": {"column": "turbine"},
        "site_id": {"constant": "SITE-A"},
        "status_code": {"column": "status"},
        "columns": {
            "ws": {"field": "wind_speed_ms", "unit": "km/h"},
            "p": {"field": "power_kw", "unit": "W"},
        },
    }
    data.update(over)
    return parse_mapping(data)


def _write(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_export_maps_with_five_reasons(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    source = FileReplay(
        EXAMPLES / "scada_export.csv", load_mapping(EXAMPLES / "scada_mapping.yaml"), rejects_path=rejects
    )
    records = list(source.iter_records())
    assert (source.rows_read, source.accepted, len(records)) == (77, 72, 72)
    assert source.rejected == {
        "nonexistent local time (DST gap)": 1,
        "unparseable timestamp": 1,
        "out of range: power_kw": 1,
        "missing turbine id": 1,
        "not a number: wind_speed_ms": 1,
    }
    first = records[0]
    assert first["turbine_id"] == "WT-001" and first["site_id"] == "SITE-NORDWIND"
    assert first["event_time"] == datetime(2024, 3, 30, 21, 0, tzinfo=UTC)  # 22:00 CET
    assert first["wind_speed_ms"] == pytest.approx(28.1 / 3.6)
    assert first["power_kw"] == pytest.approx(340.331)
    assert first["ambient_temp_c"] == pytest.approx((42.7 - 32) * 5 / 9)
    # after the DST change: 01:50 CET is 00:50 UTC (still winter time: the switch is at 02:00)
    assert records[-1]["event_time"] == datetime(2024, 3, 31, 0, 50, tzinfo=UTC)
    for record in records:  # everything accepted is valid under the contract
        _, value = encode_record(record)
        assert parse_telemetry(value, now=NOW).turbine_id.startswith("WT-00")
    with rejects.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["reason"] for r in rows] == [
        "nonexistent local time (DST gap)",
        "unparseable timestamp",
        "out of range: power_kw",
        "missing turbine id",
        "not a number: wind_speed_ms",
    ]
    assert rows[0]["row"] == "31" and rows[0]["Date/Time"] == "31/03/2024 02:30"
    assert rows[3]["Asset"] == ""


def test_empty_cells_are_dropouts_not_rejects(tmp_path: Path) -> None:
    path = _write(tmp_path, "ts,turbine,status,ws,p\n2024-01-01T00:00:00Z,WT-1,,,\n")
    source = FileReplay(path, _mapping())
    [record] = list(source.iter_records())
    assert record["wind_speed_ms"] != record["wind_speed_ms"]  # NaN -> null on the wire
    _, value = encode_record(record)
    event = TelemetryEvent.model_validate_json(value)
    assert event.wind_speed_ms is None and event.power_kw is None and event.status_code == 0


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("not-a-time,WT-1,0,10,1000", "unparseable timestamp"),
        (",WT-1,0,10,1000", "missing timestamp"),
        ("2024-01-01T00:00:00Z,,0,10,1000", "missing turbine id"),
        (f"2024-01-01T00:00:00Z,{'W' * 65},0,10,1000", "turbine id too long"),
        ("2024-01-01T00:00:00Z,WT-1,0,-5,1000", "out of range: wind_speed_ms"),
        ("2024-01-01T00:00:00Z,WT-1,0,10,-300000", "out of range: power_kw"),
        ("2024-01-01T00:00:00Z,WT-1,0,fast,1000", "not a number: wind_speed_ms"),
        ("2024-01-01T00:00:00Z,WT-1,0,inf,1000", "not a number: wind_speed_ms"),
        ("2024-01-01T00:00:00Z,WT-1,1.5,10,1000", "invalid status_code"),
        ("2024-01-01T00:00:00Z,WT-1,1000,10,1000", "invalid status_code"),
    ],
)
def test_reject_reasons(tmp_path: Path, row: str, reason: str) -> None:
    good = "2024-01-01T00:10:00Z,WT-1,0,10,1000"
    path = _write(tmp_path, f"ts,turbine,status,ws,p\n{good}\n{row}\n{good.replace('WT-1', 'WT-2')}\n")
    source = FileReplay(path, _mapping())
    records = list(source.iter_records())
    assert [r["turbine_id"] for r in records] == ["WT-1", "WT-2"]
    assert dict(source.rejected) == {reason: 1}
    assert source.examples[reason][0].startswith("row 2:")


def test_first_reason_wins_and_top_reasons_are_counted(tmp_path: Path) -> None:
    rows = ["bad,WT-1,0,10,1000"] * 3 + ["2024-01-01T00:00:00Z,,0,-1,1000"] * 2
    path = _write(tmp_path, "ts,turbine,status,ws,p\n" + "\n".join(rows) + "\n")
    source = FileReplay(path, _mapping(), chunk_rows=2)  # reasons accumulate across chunks
    assert list(source.iter_records()) == []
    assert source.top_reasons() == [("unparseable timestamp", 3), ("missing turbine id", 2)]


def test_malformed_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    text = (
        "ts,turbine,status,ws,p\n2024-01-01T00:00:00Z,WT-1,0,10,1000\n"
        "2024-01-01T00:10:00Z,WT-1,0,10,1000,9,9\n"
    )
    source = FileReplay(_write(tmp_path, text), _mapping())
    assert len(list(source.iter_records())) == 1
    assert source.rejected == {"malformed line (wrong number of fields)": 1}


def test_strftime_timezone_decimal_comma_and_dst_fold(tmp_path: Path) -> None:
    mapping = _mapping(
        csv={"delimiter": ";", "decimal": ","},
        timestamp={"column": "ts", "format": "%d.%m.%Y %H:%M", "timezone": "Europe/Berlin"},
        turbine_id={"column": "turbine", "prefix": "WT-"},
        columns={"t": {"field": "ambient_temp_c", "unit": "degF"}},
        status_code=None,
    )
    text = "ts;turbine;t\n01.07.2024 12:00;007;68,0\n27.10.2024 02:30;007;50\n27.10.2024 03:30;007;50\n"
    source = FileReplay(_write(tmp_path, text), mapping)
    records = list(source.iter_records())
    assert records[0]["event_time"] == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)  # CEST = UTC+2
    assert records[0]["turbine_id"] == "WT-007"
    assert records[0]["ambient_temp_c"] == pytest.approx(20.0)
    assert records[1]["event_time"] == datetime(2024, 10, 27, 2, 30, tzinfo=UTC)  # CET again
    assert source.rejected == {"ambiguous local time (DST fold)": 1}


def test_epoch_and_iso_offsets(tmp_path: Path) -> None:
    mapping = _mapping(timestamp={"column": "ts", "format": "epoch_ms"})
    path = _write(tmp_path, "ts,turbine,status,ws,p\n1704067200000,WT-1,0,36,1000\n")
    [record] = list(FileReplay(path, mapping).iter_records())
    assert record["event_time"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert record["wind_speed_ms"] == pytest.approx(10.0)
    iso = _write(tmp_path, "ts,turbine,status,ws,p\n2024-01-01T02:00:00+02:00,WT-1,0,36,1000\n", "iso.csv")
    [record] = list(FileReplay(iso, _mapping()).iter_records())
    assert record["event_time"] == datetime(2024, 1, 1, tzinfo=UTC)


def test_parquet_with_native_types(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-01 01:00", "2024-01-01 01:10"]),  # naive, local
            "turbine": ["WT-1", "WT-2"],
            "status": [0, 20],
            "ws": [36.0, 400.0],
            "p": [1_000_000.0, 0.0],
        }
    )
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    mapping = _mapping(timestamp={"column": "ts", "timezone": "Europe/Paris"})
    source = FileReplay(path, mapping)
    [record] = list(source.iter_records())
    assert record["event_time"] == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert record["power_kw"] == pytest.approx(1000.0)
    assert source.rejected == {"out of range: wind_speed_ms": 1}


def test_missing_file_or_columns_fail_before_reading(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="no such file"):
        FileReplay(tmp_path / "nope.csv", _mapping())
    path = _write(tmp_path, "ts,turbine,ws\n")
    with pytest.raises(MappingError, match=r"\['status', 'p'\]"):
        FileReplay(path, _mapping())
    weird = _write(tmp_path, "x", "data.xlsx")
    with pytest.raises(MappingError, match="format"):
        FileReplay(weird, _mapping())


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2024-01-01T00:00:00Z,WT 1,0,10,1000", "invalid turbine id"),
        ("2024-01-01T00:00:00Z,-WT1,0,10,1000", "invalid turbine id"),
        ("2024-01-01T00:00:00Z,WT\u00e91,0,10,1000", "invalid turbine id"),
        ("2024-01-01T00:00:00Z,WT\x071,0,10,1000", "invalid turbine id"),
        ("1999-12-31T23:50:00Z,WT-1,0,10,1000", "event time before 2000-01-01"),
        ("1970-01-01T00:00:00Z,WT-1,0,10,1000", "event time before 2000-01-01"),
        ("2031-01-01T00:00:00Z,WT-1,0,10,1000", "event time in the future"),
        ("9999-12-31T00:00:00Z,WT-1,0,10,1000", "event time in the future"),
    ],
)
def test_rows_the_contract_would_refuse_are_rejected_with_their_reason(
    tmp_path: Path, row: str, reason: str
) -> None:
    good = "2024-01-01T00:10:00Z,WT-1,0,10,1000"
    path = _write(tmp_path, f"ts,turbine,status,ws,p\n{good}\n{row}\n{good.replace('WT-1', 'WT-2')}\n")
    rejects = tmp_path / "rejects.csv"
    source = FileReplay(path, _mapping(), rejects_path=rejects, now=NOW)
    records = list(source.iter_records())
    assert [r["turbine_id"] for r in records] == ["WT-1", "WT-2"]
    assert dict(source.rejected) == {reason: 1}
    assert source.examples[reason][0].startswith("row 2:")
    [_, rejected] = list(csv.reader(rejects.open(encoding="utf-8")))
    assert rejected[:2] == ["2", reason]


def test_old_history_is_accepted_and_scores_in_event_time(tmp_path: Path) -> None:
    row = "2003-06-01T12:00:00Z,WT-1,0,10,1000"
    source = FileReplay(_write(tmp_path, f"ts,turbine,status,ws,p\n{row}\n"), _mapping(), now=NOW)
    [record] = list(source.iter_records())
    _, value = encode_record(record)
    assert parse_telemetry(value, now=NOW).event_time == datetime(2003, 6, 1, 12, tzinfo=UTC)


def test_nul_and_control_characters_in_parquet_ids_are_rejected(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-01T00:00:00Z"] * 4, utc=True),
            "turbine": ["WT-1", "WT\x00-2", "WT-3\n", "WT-4"],
            "site": ["S-1", "S-1", "S-1", "S\x1b1"],
            "status": [0, 0, 0, 0],
            "ws": [10.0] * 4,
            "p": [1000.0] * 4,
        }
    )
    path = tmp_path / "ids.parquet"
    frame.to_parquet(path)
    source = FileReplay(path, _mapping(site_id={"column": "site"}), now=NOW)
    records = list(source.iter_records())
    # "WT-3\n" is stripped like every id cell; the NUL and ESC characters are refused
    assert [r["turbine_id"] for r in records] == ["WT-1", "WT-3"]
    assert dict(source.rejected) == {"invalid turbine id": 1, "invalid site id": 1}
    assert "\\x00" in source.examples["invalid turbine id"][0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"constant": "SITE NORD"}, "not a valid identifier"),
        ({"constant": "SITE\x00"}, "not a valid identifier"),
        ({"column": "site", "prefix": "-"}, "cannot start a valid identifier"),
    ],
)
def test_mapping_refuses_constant_ids_and_prefixes_the_contract_refuses(
    spec: dict[str, str], message: str
) -> None:
    with pytest.raises(MappingError, match=message):
        _mapping(site_id=spec)
