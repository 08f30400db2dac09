"""Vendor-like export: layout, determinism, vendor artefacts, and ground truth that the data shows."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from producers.mapping import load_mapping
from producers.replay import FileReplay
from simulator.cli import app
from simulator.vendor_export import (
    GROUND_TRUTH_COLUMNS,
    KINDS,
    SCADA_COLUMNS,
    VendorExportError,
    export_start,
    local_labels,
    plan_faults,
    read_ground_truth,
    vendor_export,
)

pytestmark = pytest.mark.unit

RATED = 2250.0
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vendor")
    vendor_export(out, turbines=4, days=120, seed=7, start=date(2024, 1, 1))
    return out


@pytest.fixture(scope="module")
def scada(export: Path) -> pd.DataFrame:
    frame = pd.read_csv(export / "scada.csv", sep=";", dtype={"Rs_avg": str})
    frame["utc"] = pd.to_datetime(frame["Date_time"], utc=True, format="ISO8601")
    return frame


def test_layout_of_the_export(export: Path, scada: pd.DataFrame) -> None:
    assert sorted(p.name for p in export.iterdir()) == [
        "ground_truth.csv",
        "mapping.yaml",
        "metadata.csv",
        "scada.csv",
    ]
    assert list(scada.columns[:-1]) == list(SCADA_COLUMNS)
    assert sorted(scada["Wind_turbine_name"].unique()) == ["T01", "T02", "T03", "T04"]
    offsets = scada["Date_time"].str[-6:].value_counts()
    assert set(offsets.index) == {"+01:00", "+02:00"}  # winter and summer time in one file
    assert scada["Date_time"].iloc[0] == "2024-01-01T00:00:00+01:00"  # local midnight
    meta = pd.read_csv(export / "metadata.csv", sep=";")
    assert list(meta["Turbine"]) == ["T01", "T02", "T03", "T04"]
    assert (meta["Rated power (MW)"] == RATED / 1000).all()
    truth = pd.read_csv(export / "ground_truth.csv")
    assert tuple(truth.columns) == GROUND_TRUTH_COLUMNS


def test_vendor_artefacts_are_there(scada: pd.DataFrame) -> None:
    steps = 120 * 144
    assert len(scada) < 4 * steps  # hours of missing rows
    assert (scada["Ot_avg"] == -273.2).sum() > 0  # dead temperature probe
    assert (scada["Ws1_avg"] == 9999).sum() > 0  # missing anemometer reading
    assert (scada["P_avg"] < 0).sum() > 0  # stopped turbines draw auxiliary power
    assert scada["Rs_avg"].isna().sum() > 0  # "NaN" written for a missing rotor speed
    assert (scada["Ba_avg"] < -10).sum() + (scada["Ba_avg"] == 9999).sum() > 0
    assert ((scada["Ws_min"] <= scada["Ws_max"]) | (scada["Ws1_avg"] == 9999)).all()
    # the exporter's DST bug: on 2024-03-31 the rows before 02:00 carry +02:00, duplicating 6 UTC times
    dup = scada.duplicated(["Wind_turbine_name", "utc"], keep=False)
    per_turbine = scada[dup].groupby("Wind_turbine_name").size() // 2
    assert set(per_turbine.tolist()) <= {6} and len(per_turbine) >= 3  # unless an outage hid them
    assert (scada.loc[dup, "utc"].dt.strftime("%Y-%m-%d") == "2024-03-30").all()


def test_the_mapping_in_the_export_imports_it(export: Path, scada: pd.DataFrame) -> None:
    source = FileReplay(export / "scada.csv", load_mapping(export / "mapping.yaml"), now=NOW)
    rows = sum(len(f) for f in source.iter_frames())
    unique = len(scada.drop_duplicates(["Wind_turbine_name", "utc"]))
    assert rows == unique and set(source.rejected) == {"duplicate event time"}
    report = source.report
    assert report.mixed_offsets and report.duplicates_at_dst == sum(report.duplicates.values())
    assert report.sentinels["ambient_temp_c"] == (scada["Ot_avg"] == -273.2).sum()
    assert sum(g.at_dst for g in report.gaps.values()) == len(report.gaps)  # one 70-min gap each


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = vendor_export(tmp_path / "a", turbines=3, days=14, seed=3)
    b = vendor_export(tmp_path / "b", turbines=3, days=14, seed=3)
    c = vendor_export(tmp_path / "c", turbines=3, days=14, seed=4)
    for name in ("scada.csv", "metadata.csv", "mapping.yaml", "ground_truth.csv"):
        assert (a.directory / name).read_bytes() == (b.directory / name).read_bytes(), name
    assert (a.directory / "scada.csv").read_bytes() != (c.directory / "scada.csv").read_bytes()
    assert a.rows == b.rows < 3 * 14 * 144


# ------------------------------------------------------------------------------ ground truth
def test_fault_plan_has_every_kind_and_a_healthy_turbine() -> None:
    start = export_start(date(2024, 1, 1))
    for turbines in (2, 3, 4, 10):
        faults = plan_faults(turbines, 400, 7, start)
        assert {f.kind for f in faults} == set(KINDS)
        assert all(f.turbine_index != 0 for f in faults)
        for f in faults:
            assert start + timedelta(days=400 * 0.3) <= f.start < f.end <= start + timedelta(days=400)
            assert timedelta(days=1) <= f.end - f.start <= timedelta(days=21, hours=1)
        by_turbine: dict[int, list[tuple[datetime, datetime]]] = {}
        for f in faults:
            by_turbine.setdefault(f.turbine_index, []).append((f.start, f.end))
        for spans in by_turbine.values():
            spans.sort()
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    with pytest.raises(VendorExportError, match="at least 2"):
        plan_faults(1, 400, 7, start)
    with pytest.raises(VendorExportError, match="at least 7"):
        plan_faults(4, 3, 7, start)


def _window(scada: pd.DataFrame, truth: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The faulty turbine's rows (UTC index, its own mean wind ``ws``) and the fault window mask."""
    row = truth[truth["kind"] == kind].iloc[0]
    clean = scada.drop_duplicates(["Wind_turbine_name", "utc"])
    mine = clean[clean["Wind_turbine_name"] == row["vendor_turbine"]].set_index("utc").copy()
    ws1, ws2 = mine["Ws1_avg"].where(mine["Ws1_avg"] != 9999), mine["Ws2_avg"].where(mine["Ws2_avg"] != 9999)
    mine["ws"] = pd.concat([ws1, ws2], axis=1).mean(axis=1)
    mine["pitch"] = mine["Ba_avg"].where(mine["Ba_avg"].abs() < 100)
    inside = pd.Series((mine.index >= row["start"]) & (mine.index < row["end"]), index=mine.index)
    return mine, inside, row


def _power_ratio(mine: pd.DataFrame, inside: pd.Series) -> float:
    """Median power in the window / outside it, per 1 m/s bin of the turbine's own wind (5-10 m/s)."""
    ratios = []
    for low in range(5, 10):
        in_bin = (mine["ws"] >= low) & (mine["ws"] < low + 1)
        if (in_bin & inside).sum() >= 10 and (in_bin & ~inside).sum() >= 10:
            ratios.append(
                mine.loc[in_bin & inside, "P_avg"].median() / mine.loc[in_bin & ~inside, "P_avg"].median()
            )
    assert len(ratios) >= 3, "too few wind bins with data on both sides"
    return float(np.median(ratios))


def test_ground_truth_windows_are_in_the_data(export: Path, scada: pd.DataFrame) -> None:
    truth = read_ground_truth(export / "ground_truth.csv")
    assert sorted(truth["kind"]) == sorted(KINDS)
    assert "V-WT-001" not in set(truth["turbine"])
    assert (truth["start"] >= scada["utc"].min()).all() and (truth["end"] <= scada["utc"].max()).all()


def test_derating_caps_power_and_shows_a_deficit(export: Path, scada: pd.DataFrame) -> None:
    truth = read_ground_truth(export / "ground_truth.csv")
    mine, inside, row = _window(scada, truth, "derating")
    cap = row["magnitude"] * RATED
    assert mine.loc[inside, "P_avg"].max() <= cap + 0.01
    windy = (mine["ws"] > 12) & (mine["ws"] < 24)  # rated wind: the power curve is at rated power
    assert (inside & windy).sum() > 10 and (~inside & windy).sum() > 10
    assert mine.loc[~inside & windy, "P_avg"].median() > 0.95 * RATED  # not capped outside the window
    deficit = RATED - mine.loc[inside & windy, "P_avg"].median()
    assert deficit == pytest.approx(RATED - cap, rel=0.05)
    shed = mine.loc[inside & windy, "pitch"].median() - mine.loc[~inside & windy, "pitch"].median()
    assert shed > 1.0  # the controller sheds the power by pitching


def test_pitch_fault_raises_pitch_and_cuts_power_above_cut_in(export: Path, scada: pd.DataFrame) -> None:
    truth = read_ground_truth(export / "ground_truth.csv")
    mine, inside, row = _window(scada, truth, "pitch_fault")
    partial = (mine["ws"] > 5) & (mine["ws"] < 10)
    shift = mine.loc[inside & partial, "pitch"].median() - mine.loc[~inside & partial, "pitch"].median()
    assert shift == pytest.approx(row["magnitude"], abs=1.0)
    assert _power_ratio(mine, inside) == pytest.approx(1 - 0.03 * row["magnitude"], abs=0.03)


def test_yaw_misalignment_offsets_the_nacelle_and_scales_power_by_cos3(
    export: Path, scada: pd.DataFrame
) -> None:
    truth = read_ground_truth(export / "ground_truth.csv")
    mine, inside, row = _window(scada, truth, "yaw_misalignment")
    offset = ((mine["Ya_avg"] - mine["Wa_avg"] + 180) % 360) - 180
    shift = offset[inside].median() - offset[~inside].median()
    assert shift == pytest.approx(row["magnitude"], abs=2.0)
    expected = np.cos(np.radians(row["magnitude"])) ** 3
    assert _power_ratio(mine, inside) == pytest.approx(expected, abs=0.03)


def test_healthy_turbine_keeps_its_power_curve(export: Path, scada: pd.DataFrame) -> None:
    truth = read_ground_truth(export / "ground_truth.csv")
    fake = truth.iloc[[0]].assign(vendor_turbine="T01", kind="none")
    mine, inside, _ = _window(scada, fake, "none")
    assert _power_ratio(mine, inside) == pytest.approx(1.0, abs=0.03)


def test_local_labels_carry_the_offset_of_the_end_of_the_day() -> None:
    times = np.array(
        ["2024-01-15T11:00", "2024-03-30T23:00", "2024-03-31T01:00", "2024-10-26T23:30", "2024-10-27T02:00"],
        dtype="datetime64[s]",
    )
    assert local_labels(times).tolist() == [
        "2024-01-15T12:00:00+01:00",
        "2024-03-31T00:00:00+02:00",  # really +01:00: the exporter's bug
        "2024-03-31T03:00:00+02:00",
        "2024-10-27T01:30:00+01:00",  # really +02:00
        "2024-10-27T03:00:00+01:00",
    ]


def test_cli_vendor_export_and_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["vendor-export", "--turbines", "2", "--days", "8", "--out", str(tmp_path), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "scada.csv").exists() and len(read_ground_truth(tmp_path / "ground_truth.csv")) == 3
    assert runner.invoke(app, ["vendor-export", "--turbines", "1", "--out", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["vendor-export", "--days", "2", "--out", str(tmp_path)]).exit_code == 2
