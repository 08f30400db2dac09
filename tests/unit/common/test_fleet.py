"""Fleet register files: parsing (YAML, CSV), errors naming file/line/field, hostile input, round trips."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import fleet
from common.contracts import SIGNALS
from common.fleet import (
    FleetRegister,
    RegisterError,
    TurbineSpec,
    format_sensor_list,
    parse_register_csv,
    parse_register_yaml,
    parse_sensor_list,
    read_register,
    sensor_names,
    write_register,
)

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"

FULL_YAML = """\
turbines:
  - turbine_id: WT-001
    site_id: SITE-A
    manufacturer: Vestas
    model: V90-2.0 MW
    rated_power_kw: 2000
    rotor_diameter_m: 90
    hub_height_m: 80.5
    latitude: 52.1
    longitude: -4.3
    commissioning_date: 2012-05-01
    fitted_sensors: [wind_speed_ms, power_kw, pitch_angle_deg]
  - turbine_id: WT-002
    site_id: SITE-A
"""

FULL_CSV = """\
turbine_id,site_id,manufacturer,model,rated_power_kw,rotor_diameter_m,hub_height_m,latitude,longitude,commissioning_date,fitted_sensors
WT-001,SITE-A,Vestas,V90-2.0 MW,2000,90,80.5,52.1,-4.3,2012-05-01,wind_speed_ms; power_kw;pitch_angle_deg
WT-002,SITE-A,,,,,,,,,
"""


def _problems(exc: pytest.ExceptionInfo[RegisterError]) -> list[str]:
    return [p.render(exc.value.fmt) for p in exc.value.problems]


# ------------------------------------------------------------------------------------------ parsing
def test_yaml_and_csv_give_the_same_register() -> None:
    from_yaml = parse_register_yaml(FULL_YAML)
    from_csv = parse_register_csv(FULL_CSV)
    assert from_yaml == from_csv
    spec = from_yaml.get("WT-001")
    assert spec is not None
    assert spec.rated_power_kw == 2000.0
    assert spec.commissioning_date == date(2012, 5, 1)
    assert spec.fitted_sensors == frozenset({"wind_speed_ms", "power_kw", "pitch_angle_deg"})
    bare = from_yaml.get("WT-002")
    assert bare is not None and bare.fitted_sensors is None and bare.rated_power_kw is None
    assert from_yaml.get("WT-999") is None
    assert len(from_yaml) == 2


def test_read_register_dispatches_on_suffix(tmp_path: Path) -> None:
    (tmp_path / "f.yml").write_text(FULL_YAML)
    (tmp_path / "f.CSV").write_text(FULL_CSV)
    assert read_register(tmp_path / "f.yml") == read_register(tmp_path / "f.CSV")
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(
        RegisterError, match=r"f\.json: unknown register format; use a \.yaml, \.yml or \.csv"
    ):
        read_register(tmp_path / "f.json")


def test_csv_tolerates_bom_crlf_comments_blank_lines_and_column_subset() -> None:
    text = "\ufeffsite_id,turbine_id\r\n# our fleet\r\n\r\nS1,T1\r\n  S1 , T2 \r\n"
    register = parse_register_csv(text)
    assert sorted(register.turbines) == ["T1", "T2"]
    assert register.turbines["T2"].site_id == "S1"


def test_quoted_yaml_date_and_scientific_numbers_are_accepted() -> None:
    register = parse_register_yaml(
        "turbines:\n- {turbine_id: A, site_id: S, commissioning_date: '2015-02-03', rated_power_kw: 2.3e3}"
    )
    assert register.turbines["A"].commissioning_date == date(2015, 2, 3)
    assert register.turbines["A"].rated_power_kw == 2300.0


def test_sensor_helpers() -> None:
    assert parse_sensor_list("") is None
    assert parse_sensor_list("  ") is None
    assert parse_sensor_list("power_kw;wind_speed_ms;power_kw;") == {"power_kw", "wind_speed_ms"}
    assert format_sensor_list({"power_kw", "wind_speed_ms"}) == "wind_speed_ms;power_kw"  # contract order
    assert format_sensor_list(None) == ""
    assert sensor_names(SIGNALS) == frozenset(SIGNALS)
    with pytest.raises(ValueError, match="no sensor listed"):
        sensor_names([])


# ------------------------------------------------------------------------------------------ errors
def test_every_yaml_error_is_reported_at_once_with_line_item_and_field(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "turbines:\n"
        "  - turbine_id: WT-1\n"  # line 2
        "    site_id: S\n"
        "  - turbine_id: WT-2\n"  # line 4
        "    site_id: S\n"
        "    rated_power_kw: -5\n"
        "    latitude: 95\n"
        "    colour: red\n"
        "  - turbine_id: WT-1\n"  # line 9
        "    site_id: S\n"
        "  - turbine_id: 'bad id'\n"  # line 11
        "    site_id: S\n"
        "    commissioning_date: 1900-01-01\n"
        "    rated_power_kw: yes\n"
        "  - 5\n"
    )
    with pytest.raises(RegisterError) as info:
        read_register(path)
    text = str(info.value)
    assert text.startswith(f"{path}: invalid fleet register (8 problem(s)):")
    problems = _problems(info)
    assert (
        "line 4, turbines[1], turbine WT-2: rated_power_kw: Input should be greater than 0 (got -5)"
        in problems
    )
    assert any(p.startswith("line 4, turbines[1], turbine WT-2: latitude:") for p in problems)
    assert any(p.startswith("line 4, turbines[1], turbine WT-2: colour: unknown field") for p in problems)
    assert "line 9, turbines[2]: turbine_id: turbine 'WT-1' given twice (first on line 2)" in problems
    assert any(p.startswith("line 11, turbines[3]: turbine_id: not a valid identifier") for p in problems)
    assert any("commissioning_date: date 1900-01-01 out of range" in p for p in problems)
    assert any("rated_power_kw: expected a number, got a boolean" in p for p in problems)
    assert any(p.startswith("turbines[4]: expected a mapping") for p in problems)


def test_every_csv_error_is_reported_with_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(
        "turbine_id,site_id,rated_power_kw,commissioning_date,fitted_sensors\n"
        "WT-1,S,2000,2012-01-01,wind_speed_ms\n"
        "WT-2,S,2000,2012-13-01,\n"  # line 3
        "WT-3,S,2000;5,,gearbox_temp;power_kw\n"  # line 4
        "WT-1,S,,,\n"  # line 5
        "WT-4,S\n"  # line 6
        "WT-5,S,nan,,\n"  # line 7
    )
    with pytest.raises(RegisterError) as info:
        read_register(path)
    problems = _problems(info)
    assert str(path) in str(info.value)
    assert any(p.startswith("line 3, turbine WT-2: commissioning_date: invalid date") for p in problems)
    assert any(p.startswith("line 4, turbine WT-3: rated_power_kw: expected a number") for p in problems)
    sensor = next(p for p in problems if "fitted_sensors" in p)
    assert sensor.startswith("line 4, turbine WT-3: fitted_sensors: unknown sensor 'gearbox_temp'")
    assert "did you mean 'gearbox_oil_temp_c'?" in sensor
    assert "known sensors: " + ", ".join(SIGNALS) in sensor  # the known names, all of them
    assert "line 5: turbine_id: turbine 'WT-1' given twice (first on line 2)" in problems
    assert "line 6: 2 cells, the header has 5" in problems
    assert any(p.startswith("line 7, turbine WT-5: rated_power_kw: expected a number") for p in problems)
    assert len(problems) == 6


def test_csv_header_problems_stop_before_the_rows() -> None:
    with pytest.raises(RegisterError) as info:
        parse_register_csv("turbine,site_id,site_id,power\nA,S,S,1\n", "f.csv")
    problems = _problems(info)
    assert any(
        "unknown column(s) 'turbine', 'power'; columns are: turbine_id, site_id" in p for p in problems
    )
    assert "line 1: site_id: column given twice" in problems
    assert "line 1: missing required column(s): turbine_id" in problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty file"),
        ("- a\n- b\n", "expected a mapping with a 'turbines' list, got list"),
        ("turbines: 5\n", "turbines: expected a list of turbines, got int"),
        ("turbines: []\nversion: 2\n", "unknown key; only 'turbines'"),
        ("turbines: [\n", "not valid YAML"),
        ("a: &x {turbine_id: A, site_id: S}\nturbines: [*x, *x]\n", "anchors and aliases"),
        (
            "turbines:\n- {turbine_id: A, site_id: S, fitted_sensors: power_kw}\n",
            "expected a list of sensor names",
        ),
        ("turbines:\n- {turbine_id: A, site_id: S, fitted_sensors: []}\n", "no sensor listed"),
        ("turbines:\n- {turbine_id: A, site_id: S, fitted_sensors: [1]}\n", "1 (a int, not a name)"),
        ("turbines:\n- {turbine_id: 7, site_id: S}\n", "turbine_id: Input should be a valid string"),
        (
            "turbines:\n- {turbine_id: A, site_id: S, commissioning_date: 2015-01-01 10:00:00}\n",
            "without a time",
        ),
        ("turbines:\n- {turbine_id: A, site_id: S, commissioning_date: '15.01.2015'}\n", "YYYY-MM-DD"),
        ("turbines:\n- {turbine_id: A, site_id: S, commissioning_date: 9999-12-31}\n", "out of range"),
        (
            "turbines:\n- {turbine_id: A, site_id: S, rated_power_kw: .inf}\n",
            "rated_power_kw: Input should be",
        ),
        ("turbines:\n- {turbine_id: A, site_id: S, rated_power_kw: 1" + "0" * 400 + "}\n", "rated_power_kw"),
        ("turbines:\n- {turbine_id: A, site_id: S, rated_power_kw: '2 kW'}\n", "expected a number"),
        ("turbines:\n- {turbine_id: A, site_id: S, longitude: 181}\n", "longitude"),
        ("turbines:\n- {turbine_id: A, site_id: S, model: ''}\n", "model: String should have at least 1"),
        ('turbines:\n- {turbine_id: A, site_id: S, model: "x\\u200by"}\n', "invisible character"),
        ("turbines:\n- {turbine_id: A, site_id: S, model: ' V90'}\n", "white space"),
        ("turbines:\n- {turbine_id: A, site_id: S, model: '" + "x" * 200 + "'}\n", "at most 128"),
        ("turbines:\n- {turbine_id: 'A\\0', site_id: S}\n", "not a valid identifier"),
        ("turbines:\n- {turbine_id: A, site_id: S}\n- x\x01\n", "control character U+0001"),
        ("turbines:\n- {1: A}\n", "field names must be text"),
    ],
)
def test_hostile_yaml_gets_a_clear_error(text: str, expected: str) -> None:
    with pytest.raises(RegisterError, match=r"^fleet\.yaml: ") as info:
        parse_register_yaml(text, "fleet.yaml")
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\x01\x02", "line 1: NUL byte at offset 0"),
        (b"turbine_id,site_id\nA,S\nB\x00,S\n", "line 3: NUL byte"),
        (b"turbine_id,site_id\nA,S\n\xff\xfe,S\n", "line 3: not UTF-8 text"),
        (b"turbine_id,site_id\nA\x07,S\n", "not a valid identifier"),
        (b'turbine_id,site_id,model\nA,S,"x\ty"\n', "control or invisible character"),
        (b'turbine_id,site_id\n"A,S\n', "not valid CSV"),
        (b"turbine_id,site_id\nA,S,x\n", "3 cells, the header has 2"),
        (b"", "empty file"),
        (b"# only a comment\n", "empty file"),
        (b"turbine_id,site_id,latitude\nA,S,1e999\n", "number out of range"),
        (b'turbine_id,site_id,latitude\nA,S,"52,1"\n', "decimal point"),
        (b"turbine_id;site_id\nA;S\n", "columns must be separated by ',' (this file seems to use ';'"),
    ],
)
def test_hostile_csv_gets_a_clear_error(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "fleet.csv"
    path.write_bytes(data)
    with pytest.raises(RegisterError, match=f"^{path}") as info:
        read_register(path)
    assert expected in str(info.value)


def test_huge_cells_and_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text("turbine_id,site_id,model\nA,S," + "x" * 200_000 + "\n")
    with pytest.raises(RegisterError, match="not valid CSV: field larger than field limit"):
        read_register(path)
    monkeypatch.setattr(fleet, "MAX_REGISTER_BYTES", 1024)
    path.write_text("turbine_id,site_id\n" + "A,S\n" * 1000)
    with pytest.raises(RegisterError, match=r"fleet\.csv: file larger than 0 MiB"):
        read_register(path)


def test_missing_file_and_directory_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(RegisterError, match=r"nope\.yaml: cannot read: No such file"):
        read_register(tmp_path / "nope.yaml")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(RegisterError, match=r"dir\.csv: is a directory"):
        read_register(tmp_path / "dir.csv")


def test_too_many_turbines_and_too_many_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "MAX_TURBINES", 3)
    rows = "".join(f"T{i},S\n" for i in range(5))
    with pytest.raises(RegisterError, match="more than 3 turbines"):
        parse_register_csv("turbine_id,site_id\n" + rows)
    bad = "".join(f"T{i},S,-1\n" for i in range(fleet.MAX_REPORTED_PROBLEMS + 20))
    monkeypatch.setattr(fleet, "MAX_TURBINES", 100_000)
    with pytest.raises(RegisterError) as info:
        parse_register_csv("turbine_id,site_id,rated_power_kw\n" + bad)
    assert f"({fleet.MAX_REPORTED_PROBLEMS + 20} problem(s))" in str(info.value)
    assert "... and 20 more problem(s) not listed" in str(info.value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(["csv", "yaml"]))
def test_arbitrary_bytes_give_a_register_or_a_register_error(data: bytes, fmt: str) -> None:
    try:
        text = fleet.decode_register_bytes(data, "x")
        if fmt == "csv":
            parse_register_csv(text, "x")
        else:
            parse_register_yaml(text, "x")
    except RegisterError as exc:
        assert str(exc).startswith("x")


# ------------------------------------------------------------------------------------------ models
def test_register_from_specs_refuses_duplicates() -> None:
    a = TurbineSpec(turbine_id="A", site_id="S")
    with pytest.raises(RegisterError, match="turbine 'A' given twice"):
        FleetRegister.from_specs([a, a])
    with pytest.raises(ValueError, match="holds turbine"):
        FleetRegister(turbines={"B": a})
    assert FleetRegister.from_specs([a]).get("A") == a


def test_spec_is_strict_and_frozen() -> None:
    with pytest.raises(ValueError):
        TurbineSpec(turbine_id="A", site_id="S", rated_power_kw=True)
    spec = TurbineSpec(turbine_id="A", site_id="S", fitted_sensors=["power_kw"])  # type: ignore[arg-type]
    assert spec.fitted_sensors == frozenset({"power_kw"})
    with pytest.raises(ValueError):
        spec.site_id = "T"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ round trip
@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_write_then_read_gives_the_same_register(tmp_path: Path, suffix: str) -> None:
    register = parse_register_yaml(
        FULL_YAML + "  - {turbine_id: 'x:1/2', site_id: S, model: 'a, \"b\": c'}\n"
    )
    path = tmp_path / f"sub/fleet{suffix}"
    write_register(register, path)
    assert read_register(path) == register
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_shared_values_are_written_without_yaml_aliases(tmp_path: Path) -> None:
    """Turbines sharing one date object (a whole site commissioned together) must not become &id001/*id001:
    the reader refuses aliases."""
    day = date(2020, 8, 18)
    sensors = frozenset(SIGNALS)
    register = FleetRegister.from_specs(
        TurbineSpec(turbine_id=f"WT-{i}", site_id="S", commissioning_date=day, fitted_sensors=sensors)
        for i in range(3)
    )
    write_register(register, tmp_path / "f.yaml")
    text = (tmp_path / "f.yaml").read_text()
    assert "&" not in text and "*" not in text
    assert read_register(tmp_path / "f.yaml") == register
    assert text.count("\n") == 1 + 3 * 4  # one line per field: the sensor list is not wrapped


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.builds(
            TurbineSpec,
            turbine_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}\Z"),
            site_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,10}\Z"),
            manufacturer=st.none() | st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 ,;:'\"#-]{0,30}[A-Za-z0-9]\Z"),
            rated_power_kw=st.none() | st.floats(min_value=0.001, max_value=20_000),
            latitude=st.none() | st.floats(min_value=-90, max_value=90),
            commissioning_date=st.none() | st.dates(date(1975, 1, 1), date(2100, 12, 31)),
            fitted_sensors=st.none() | st.frozensets(st.sampled_from(SIGNALS), min_size=1),
        ),
        max_size=5,
        unique_by=lambda s: s.turbine_id,
    )
)
def test_round_trip_property(specs: list[TurbineSpec]) -> None:
    register = FleetRegister.from_specs(specs)
    assert parse_register_csv(fleet.register_to_csv(register)) == register
    assert parse_register_yaml(fleet.register_to_yaml(register)) == register


@pytest.mark.parametrize("name", ["fleet_register.yaml", "fleet_register.csv"])
def test_documented_examples_are_valid(name: str) -> None:
    register = read_register(EXAMPLES / name)
    assert len(register) >= 3
    assert any(spec.fitted_sensors is not None for spec in register.turbines.values())
    assert any(spec.fitted_sensors is None for spec in register.turbines.values())


def test_documented_examples_agree() -> None:
    assert read_register(EXAMPLES / "fleet_register.yaml") == read_register(EXAMPLES / "fleet_register.csv")


# ------------------------------------------------------------------------------------------ simulator
def test_simulator_fleet_register_matches_the_simulated_fleet(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from simulator.cli import app
    from simulator.config import FleetConfig
    from simulator.fleet import Fleet
    from simulator.register import fleet_register

    config = FleetConfig(n_turbines=25, turbines_per_site=10, seed=3)
    register = fleet_register(config)
    simulated = Fleet(config).turbines
    assert sorted(register.turbines) == config.turbine_ids
    for turbine in simulated:
        spec = register.get(turbine.turbine_id)
        assert spec is not None
        assert (spec.site_id, spec.rated_power_kw, spec.commissioning_date) == (
            turbine.site_id,
            turbine.rated_power_kw,
            turbine.commissioned_on,
        )
        assert spec.fitted_sensors == frozenset(SIGNALS)
        assert spec.rotor_diameter_m == 2 * config.turbine.rotor_radius_m
        assert spec.latitude is None and spec.hub_height_m is None  # not modelled: not invented

    out = tmp_path / "sim.csv"
    result = CliRunner().invoke(app, ["register", "--out", str(out), "--turbines", "25", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert read_register(out) == fleet_register(FleetConfig(n_turbines=25, seed=3))
    bad = CliRunner().invoke(app, ["register", "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2
    assert "unknown register format" in bad.output
