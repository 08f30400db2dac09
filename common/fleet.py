"""Fleet register: each turbine's metadata (site, make, rated power, rotor, position, fitted sensors).

Why a register: the cockpit otherwise knows a turbine only from its telemetry. A register file (YAML or
CSV, written by the operator or converted from a vendor export) says what each turbine is and which
sensors it actually has, so that a sensor that is not fitted is not counted as missing data and the
model that matches the turbine's sensors scores it.

Pure module (no database): :func:`read_register` parses and checks a file, reporting EVERY problem at
once with the file, the line (row) and the field; :func:`write_register` writes one back.
``common.fleet_store`` keeps a register in PostgreSQL.

File formats (docs/INTERFACES.md, "Fleet register"):

- YAML (``.yaml``/``.yml``): ``{"turbines": [{"turbine_id": ..., "site_id": ..., ...}, ...]}``.
- CSV (``.csv``, UTF-8, header row): one turbine per row, the same field names as columns; an empty cell
  is "not given"; ``fitted_sensors`` is ``;``-separated (``wind_speed_ms;power_kw;pitch_angle_deg``).

Bounds against hostile files: at most :data:`MAX_REGISTER_BYTES` read (a larger file is refused unread),
at most :data:`MAX_TURBINES` turbines, no NUL byte, valid UTF-8, YAML without anchors/aliases, at most
:data:`MAX_REPORTED_PROBLEMS` problems listed (the count of the rest is given).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.contracts import IDENTIFIER_PATTERN, SIGNALS

#: Largest register file read (bytes). A register of 100,000 turbines is about 15 MB of CSV; 32 MiB leaves
#: room for long model names while keeping a stray multi-gigabyte file from being loaded into memory.
MAX_REGISTER_BYTES = 32 * 1024 * 1024
#: Most turbines in one register (the simulator's own limit too).
MAX_TURBINES = 100_000
#: At most this many problems are listed in a :class:`RegisterError` (the total is always given).
MAX_REPORTED_PROBLEMS = 100
#: Longest manufacturer / model name (characters).
MAX_NAME_CHARS = 128
#: Commissioning dates accepted: from the first utility-scale wind farms to a planning horizon.
MIN_COMMISSIONING_DATE = date(1975, 1, 1)
MAX_COMMISSIONING_DATE = date(2100, 12, 31)

#: Fields of a turbine, in file (column) order.
FIELDS: tuple[str, ...] = (
    "turbine_id",
    "site_id",
    "manufacturer",
    "model",
    "rated_power_kw",
    "rotor_diameter_m",
    "hub_height_m",
    "latitude",
    "longitude",
    "commissioning_date",
    "fitted_sensors",
)
_NUMBER_FIELDS = frozenset({"rated_power_kw", "rotor_diameter_m", "hub_height_m", "latitude", "longitude"})
_REQUIRED = ("turbine_id", "site_id")
_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv"}
_NUMBER_RE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_SENSOR_SEPARATOR = ";"
_MAX_SENSOR_ITEMS = 4 * len(SIGNALS)  # a longer list is garbage, refused before looking at each item
_MAX_SHOWN = 60  # characters of an offending value quoted in a message


def _preview(value: Any) -> str:
    """A short, printable rendering of an offending value for messages (control characters escaped)."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


# ------------------------------------------------------------------------------------------ sensors
def known_sensors_text() -> str:
    return ", ".join(SIGNALS)


def sensor_names(values: Iterable[Any]) -> frozenset[str]:
    """The set of sensor names in ``values`` (each must be one of ``common.contracts.SIGNALS``).

    Raises ``ValueError`` naming every unknown entry (with the closest known name) and listing the known
    sensors. Repeats are merged. An empty set is refused: leave the field out when it is not declared.
    """
    items = [values] if isinstance(values, str | bytes) else list(values)
    if len(items) > _MAX_SENSOR_ITEMS:
        raise ValueError(f"{len(items)} sensor names given; there are only {len(SIGNALS)} sensors")
    bad: list[str] = []
    names: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            bad.append(f"{_preview(item)} (a {type(item).__name__}, not a name)")
        elif item not in SIGNALS:
            close = difflib.get_close_matches(item, SIGNALS, n=1, cutoff=0.6)
            bad.append(_preview(item) + (f" (did you mean {close[0]!r}?)" if close else ""))
        else:
            names.add(item)
    if bad:
        unique = list(dict.fromkeys(bad))
        raise ValueError(
            f"unknown sensor{'s' if len(unique) > 1 else ''} {', '.join(unique)}; "
            f"known sensors: {known_sensors_text()}"
        )
    if not names:
        raise ValueError(
            "no sensor listed; leave fitted_sensors out (or empty in a CSV) when not declared, "
            f"otherwise list the fitted ones among: {known_sensors_text()}"
        )
    return frozenset(names)


def parse_sensor_list(text: str) -> frozenset[str] | None:
    """A CSV cell ``"wind_speed_ms; power_kw"`` -> the set; an empty cell -> ``None`` (not declared)."""
    if not text.strip():
        return None
    parts = [p.strip() for p in text.split(_SENSOR_SEPARATOR)]
    return sensor_names(p for p in parts if p)


def format_sensor_list(sensors: Collection[str] | None) -> str:
    """The CSV cell for a set of sensors, in contract order (``""`` when not declared)."""
    if sensors is None:
        return ""
    return _SENSOR_SEPARATOR.join(ordered_sensors(sensors))


def ordered_sensors(sensors: Collection[str]) -> list[str]:
    """Sensor names in contract (``SIGNALS``) order."""
    chosen = set(sensors)
    return [s for s in SIGNALS if s in chosen]


# ------------------------------------------------------------------------------------------ models
def _no_control(value: str) -> str:
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in "\u2028\u2029":
            raise ValueError(f"contains a control or invisible character {ch!r}; use printable text")
    if value != value.strip():
        raise ValueError("starts or ends with white space")
    return value


class TurbineSpec(BaseModel):
    """One turbine of the register. Only ``turbine_id`` and ``site_id`` are required.

    ``fitted_sensors``: the contract signals (``common.contracts.SIGNALS``) this turbine measures;
    ``None`` means "not declared" and is read as "all sensors fitted" (today's behaviour).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    turbine_id: str = Field(pattern=IDENTIFIER_PATTERN, examples=["WT-007"])
    site_id: str = Field(pattern=IDENTIFIER_PATTERN, examples=["SITE-A"])
    manufacturer: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    model: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)
    rated_power_kw: float | None = Field(default=None, gt=0, le=20_000, description="kW")
    rotor_diameter_m: float | None = Field(default=None, gt=0, le=400, description="m")
    hub_height_m: float | None = Field(default=None, gt=0, le=400, description="m above ground")
    latitude: float | None = Field(default=None, ge=-90, le=90, description="WGS 84 degrees north")
    longitude: float | None = Field(default=None, ge=-180, le=180, description="WGS 84 degrees east")
    commissioning_date: date | None = None
    fitted_sensors: frozenset[str] | None = None

    @field_validator("manufacturer", "model")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return None if value is None else _no_control(value)

    @field_validator(
        "rated_power_kw", "rotor_diameter_m", "hub_height_m", "latitude", "longitude", mode="before"
    )
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool):  # a YAML `yes` is not a number (strict mode says so too, less clearly)
            raise ValueError(f"expected a number, got a boolean {_preview(value)}")
        if isinstance(value, str):  # PyYAML reads 2.3e3 (no exponent sign) as text: accept numeric text
            return _number_text(value)
        return value

    @field_validator("commissioning_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            raise ValueError(f"expected a date (YYYY-MM-DD) without a time, got {value.isoformat()}")
        if isinstance(value, str):
            if not _DATE_RE.match(value):
                raise ValueError(f"expected a date as YYYY-MM-DD, got {_preview(value)}")
            try:
                value = date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"invalid date {_preview(value)}: {exc}") from None
        if isinstance(value, date) and not MIN_COMMISSIONING_DATE <= value <= MAX_COMMISSIONING_DATE:
            raise ValueError(
                f"date {value.isoformat()} out of range {MIN_COMMISSIONING_DATE.isoformat()}"
                f"..{MAX_COMMISSIONING_DATE.isoformat()}"
            )
        return value

    @field_validator("fitted_sensors", mode="before")
    @classmethod
    def _sensors(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            raise ValueError(
                f"expected a list of sensor names, got the text {_preview(value)} "
                "(in YAML write [wind_speed_ms, power_kw]; in CSV separate with ';')"
            )
        if not isinstance(value, list | tuple | set | frozenset):
            raise ValueError(f"expected a list of sensor names, got {type(value).__name__}")
        return sensor_names(value)

    def to_record(self) -> dict[str, Any]:
        """Plain values for a file: None fields left out, sensors as a list in contract order."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = ordered_sensors(value) if name == "fitted_sensors" else value
        return out


class FleetRegister(BaseModel):
    """The turbines of a fleet by id. Build with :meth:`from_specs` (refuses duplicate ids)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turbines: dict[str, TurbineSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys_are_ids(self) -> FleetRegister:
        for key, spec in self.turbines.items():
            if key != spec.turbine_id:
                raise ValueError(f"turbines[{key!r}] holds turbine {spec.turbine_id!r}")
        if len(self.turbines) > MAX_TURBINES:
            raise ValueError(f"{len(self.turbines)} turbines; at most {MAX_TURBINES} per register")
        return self

    @classmethod
    def from_specs(cls, specs: Iterable[TurbineSpec], source: str = "<register>") -> FleetRegister:
        """A register of ``specs``; :class:`RegisterError` naming each repeated turbine id."""
        turbines: dict[str, TurbineSpec] = {}
        problems: list[RegisterProblem] = []
        for index, spec in enumerate(specs):
            if spec.turbine_id in turbines:
                problems.append(
                    RegisterProblem(None, index, "turbine_id", f"turbine {spec.turbine_id!r} given twice")
                )
            turbines[spec.turbine_id] = spec
        if problems:
            raise RegisterError(source, problems)
        if len(turbines) > MAX_TURBINES:
            raise RegisterError(
                source,
                [RegisterProblem(None, None, None, f"{len(turbines)} turbines; at most {MAX_TURBINES}")],
            )
        return cls(turbines=turbines)

    def get(self, turbine_id: str) -> TurbineSpec | None:
        return self.turbines.get(turbine_id)

    def __len__(self) -> int:
        return len(self.turbines)

    def specs(self) -> list[TurbineSpec]:
        """Turbines ordered by id."""
        return [self.turbines[k] for k in sorted(self.turbines)]


# ------------------------------------------------------------------------------------------ errors
@dataclass(frozen=True)
class RegisterProblem:
    """One problem: where (line in the file, item index in a YAML list), which field, what."""

    line: int | None
    item: int | None
    field: str | None
    message: str
    turbine_id: str | None = None

    def render(self, fmt: str) -> str:
        where: list[str] = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.item is not None:
            where.append(f"turbines[{self.item}]" if fmt == "yaml" else f"row {self.item + 1}")
        if self.turbine_id is not None:
            where.append(f"turbine {self.turbine_id}")
        head = ", ".join(where)
        field = self.field or ""
        if head and field:
            return f"{head}: {field}: {self.message}"
        return f"{head or field}: {self.message}" if (head or field) else self.message


class RegisterError(ValueError):
    """A register file (or set of records) is unreadable or invalid; the message lists every problem
    with the file, the line (row) and the field. ``problems`` holds them as data."""

    def __init__(self, source: str, problems: Sequence[RegisterProblem], fmt: str = "yaml") -> None:
        self.source = source
        self.problems = list(problems)
        self.fmt = fmt
        super().__init__(self._text())

    def _text(self) -> str:
        shown = self.problems[:MAX_REPORTED_PROBLEMS]
        if len(self.problems) == 1 and self.problems[0].line is None and self.problems[0].item is None:
            return f"{self.source}: {self.problems[0].render(self.fmt)}"
        lines = [f"{self.source}: invalid fleet register ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p.render(self.fmt)}" for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"  ... and {len(self.problems) - len(shown)} more problem(s) not listed")
        return "\n".join(lines)


def _pydantic_problems(
    exc: ValidationError, line: int | None, item: int | None, turbine_id: str | None
) -> list[RegisterProblem]:
    out: list[RegisterProblem] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or None
        if err["type"] == "extra_forbidden":
            msg = f"unknown field (not allowed); fields are: {', '.join(FIELDS)}"
        elif err["type"] == "missing":
            msg = "required, missing"
        elif err["type"] == "string_pattern_mismatch":
            msg = (
                "not a valid identifier: an ASCII letter or digit, then up to 63 letters, digits or ._:/- "
                f"(no space or control character) (got {_preview(err.get('input'))})"
            )
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error",):
                msg += f" (got {_preview(err['input'])})"
        out.append(RegisterProblem(line, item, loc, msg, turbine_id))
    return out


def _turbine_label(record: Mapping[str, Any]) -> str | None:
    value = record.get("turbine_id")
    if isinstance(value, str) and re.fullmatch(IDENTIFIER_PATTERN, value):
        return value
    return None


def _build(
    records: Iterable[tuple[int | None, int | None, Mapping[str, Any]]],
    source: str,
    fmt: str,
    problems: list[RegisterProblem],
) -> FleetRegister:
    """Validate (line, item, record) triples into a register, collecting every problem."""
    turbines: dict[str, TurbineSpec] = {}
    first_seen: dict[str, int | None] = {}
    count = 0
    for line, item, record in records:
        count += 1
        if count > MAX_TURBINES:
            problems.append(RegisterProblem(line, item, None, f"more than {MAX_TURBINES} turbines"))
            break
        label = _turbine_label(record)
        try:
            spec = TurbineSpec.model_validate(record)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, line, item, label))
            continue
        if spec.turbine_id in turbines:
            where = first_seen[spec.turbine_id]
            problems.append(
                RegisterProblem(
                    line,
                    item,
                    "turbine_id",
                    f"turbine {spec.turbine_id!r} given twice"
                    + (f" (first on line {where})" if where is not None else ""),
                )
            )
            continue
        turbines[spec.turbine_id] = spec
        first_seen[spec.turbine_id] = line
    if problems:
        raise RegisterError(source, problems, fmt)
    return FleetRegister(turbines=turbines)


# ------------------------------------------------------------------------------------------ YAML
class _RegisterYamlLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML that records each mapping's line and refuses anchors/aliases.

    Why no aliases: a register never needs them, and aliases let a small file expand into a huge one.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.mapping_lines: dict[int, int] = {}
        self._seen_nodes: set[int] = set()

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if id(node) in self._seen_nodes:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "anchors and aliases (&name / *name) are not supported in a register",
                node.start_mark,
            )
        self._seen_nodes.add(id(node))
        return super().construct_object(node, deep=deep)


def _construct_map(loader: _RegisterYamlLoader, node: yaml.MappingNode) -> Any:
    data: dict[Any, Any] = {}
    loader.mapping_lines[id(data)] = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


_RegisterYamlLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def parse_register_yaml(text: str, source: str = "<yaml>") -> FleetRegister:
    """A register from YAML text ``{"turbines": [...]}``; :class:`RegisterError` listing every problem."""
    text = text.removeprefix("\ufeff")
    loader = _RegisterYamlLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError):  # a control character: only a position is given
            line = text.count("\n", 0, exc.position) + 1
            code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "?")
            exc = yaml.YAMLError(f"control character U+{code:04X} is not allowed")
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegisterError(
            source, [RegisterProblem(line, None, None, f"not valid YAML: {problem}")]
        ) from None
    finally:
        loader.dispose()
    return parse_register_data(data, source, lines=loader.mapping_lines)


def parse_register_data(
    data: Any, source: str = "<register>", *, lines: Mapping[int, int] | None = None
) -> FleetRegister:
    """A register from parsed data ``{"turbines": [ {...}, ... ]}`` (YAML or JSON shape)."""
    lines = lines or {}
    if data is None:
        raise RegisterError(
            source, [RegisterProblem(None, None, None, "empty file; expected turbines: [...]")]
        )
    if not isinstance(data, dict):
        raise RegisterError(
            source,
            [
                RegisterProblem(
                    1, None, None, f"expected a mapping with a 'turbines' list, got {type(data).__name__}"
                )
            ],
        )
    problems: list[RegisterProblem] = []
    top_line = lines.get(id(data))
    extra = sorted(str(k) for k in data if k != "turbines")
    if extra:
        problems.append(
            RegisterProblem(
                top_line, None, ", ".join(_preview(k) for k in extra[:5]), "unknown key; only 'turbines'"
            )
        )
    items = data.get("turbines")
    if not isinstance(items, list):
        got = "nothing" if items is None else type(items).__name__
        problems.append(
            RegisterProblem(top_line, None, "turbines", f"expected a list of turbines, got {got}")
        )
        raise RegisterError(source, problems)
    if len(items) > MAX_TURBINES:
        problems.append(
            RegisterProblem(top_line, None, "turbines", f"{len(items)} turbines; at most {MAX_TURBINES}")
        )
        raise RegisterError(source, problems)

    def records() -> Iterable[tuple[int | None, int | None, Mapping[str, Any]]]:
        for index, item in enumerate(items):
            line = lines.get(id(item))
            if not isinstance(item, dict):
                problems.append(
                    RegisterProblem(
                        line, index, None, f"expected a mapping of fields, got {type(item).__name__}"
                    )
                )
                continue
            bad_keys = [k for k in item if not isinstance(k, str)]
            if bad_keys:
                problems.append(
                    RegisterProblem(line, index, None, f"field names must be text: {_preview(bad_keys[0])}")
                )
                continue
            yield line, index, item

    return _build(records(), source, "yaml", problems)


# ------------------------------------------------------------------------------------------ CSV
def _number_text(text: str) -> float:
    text = text.strip()
    if not _NUMBER_RE.match(text):
        raise ValueError(f"expected a number (decimal point '.'), got {_preview(text)}")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {_preview(text)}")
    return value


def _csv_value(name: str, text: str) -> Any:
    """Typed value of one CSV cell (raises ValueError with a readable message); '' -> None."""
    text = text.strip()
    if text == "":
        return None
    if name in _NUMBER_FIELDS:
        return _number_text(text)
    if name == "fitted_sensors":
        return parse_sensor_list(text)
    return text  # identifiers, names and dates are checked by the model


def parse_register_csv(text: str, source: str = "<csv>") -> FleetRegister:
    """A register from CSV text (header row with the field names); :class:`RegisterError` listing every
    problem. Blank lines and lines starting with ``#`` are skipped."""
    text = text.removeprefix("\ufeff")
    problems: list[RegisterProblem] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    columns: list[str] = []

    def rows() -> Iterable[tuple[int | None, int | None, Mapping[str, Any]]]:
        nonlocal header, columns
        index = -1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                problems.append(RegisterProblem(reader.line_num, None, None, f"not valid CSV: {exc}"))
                return
            line = reader.line_num
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = [c.strip() for c in row]
                columns = header
                unknown = [c for c in header if c not in FIELDS]
                if len(header) == 1 and (sep := next((c for c in ";\t|" if c in header[0]), None)):
                    problems.append(
                        RegisterProblem(
                            line,
                            None,
                            None,
                            f"the header is one column {_preview(header[0])}: columns must be separated "
                            f"by ',' (this file seems to use {sep!r}; ';' only separates fitted sensors)",
                        )
                    )
                    return
                if unknown:
                    problems.append(
                        RegisterProblem(
                            line,
                            None,
                            None,
                            f"unknown column(s) {', '.join(_preview(c) for c in unknown[:10])}; "
                            f"columns are: {', '.join(FIELDS)}",
                        )
                    )
                seen: set[str] = set()
                for c in header:
                    if c in seen:
                        problems.append(RegisterProblem(line, None, c, "column given twice"))
                    seen.add(c)
                missing = [c for c in _REQUIRED if c not in header]
                if missing:
                    problems.append(
                        RegisterProblem(line, None, None, f"missing required column(s): {', '.join(missing)}")
                    )
                if problems:
                    return
                continue
            index += 1
            if len(row) != len(columns):
                problems.append(
                    RegisterProblem(line, None, None, f"{len(row)} cells, the header has {len(columns)}")
                )
                continue
            record: dict[str, Any] = {}
            ok = True
            label_cell = row[columns.index("turbine_id")].strip()
            label = label_cell if re.fullmatch(IDENTIFIER_PATTERN, label_cell) else None
            for name, cell in zip(columns, row, strict=True):
                try:
                    value = _csv_value(name, cell)
                except ValueError as exc:
                    problems.append(RegisterProblem(line, None, name, str(exc), label))
                    ok = False
                    continue
                if value is not None:
                    record[name] = value
            if ok:
                yield line, None, record

    register = _build(rows(), source, "csv", problems)
    if header is None and not problems:
        raise RegisterError(
            source, [RegisterProblem(None, None, None, "empty file; expected a header row")], "csv"
        )
    return register


# ------------------------------------------------------------------------------------------ files
def _read_bounded(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_REGISTER_BYTES + 1)
    except IsADirectoryError:
        raise RegisterError(
            str(path), [RegisterProblem(None, None, None, "is a directory, not a file")]
        ) from None
    except OSError as exc:
        raise RegisterError(
            str(path), [RegisterProblem(None, None, None, f"cannot read: {exc.strerror or exc}")]
        ) from None
    if len(data) > MAX_REGISTER_BYTES:
        raise RegisterError(
            str(path),
            [
                RegisterProblem(
                    None,
                    None,
                    None,
                    f"file larger than {MAX_REGISTER_BYTES // (1024 * 1024)} MiB; a register of "
                    f"{MAX_TURBINES:,} turbines is far smaller (is this the right file?)",
                )
            ],
        )
    return data


def decode_register_bytes(data: bytes, source: str) -> str:
    """UTF-8 text of a register (a leading BOM is dropped); :class:`RegisterError` at the first NUL or
    undecodable byte, naming its line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise RegisterError(
            source,
            [
                RegisterProblem(
                    line, None, None, f"NUL byte at offset {nul}: not a text file (UTF-8 expected)"
                )
            ],
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RegisterError(
            source, [RegisterProblem(line, None, None, f"not UTF-8 text (byte offset {exc.start})")]
        ) from None


def register_format(path: Path) -> str:
    """``"yaml"`` or ``"csv"`` from the file name; :class:`RegisterError` for anything else."""
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise RegisterError(
            str(path),
            [RegisterProblem(None, None, None, "unknown register format; use a .yaml, .yml or .csv file")],
        )
    return fmt


def read_register(path: Path | str) -> FleetRegister:
    """Read and check a register file (``.yaml``/``.yml`` or ``.csv``).

    Raises :class:`RegisterError` listing every problem (file, line/row, field), or a single one for an
    unreadable, oversized (> :data:`MAX_REGISTER_BYTES`), binary or non-UTF-8 file.
    """
    path = Path(path)
    fmt = register_format(path)
    text = decode_register_bytes(_read_bounded(path), str(path))
    if fmt == "csv":
        return parse_register_csv(text, str(path))
    return parse_register_yaml(text, str(path))


class _FlowList(list[str]):
    """A list written on one line (``[wind_speed_ms, power_kw]``): one turbine stays readable."""


class _RegisterDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # never &id001/*id001 for shared values (a date object): the reader refuses aliases


_RegisterDumper.add_representer(
    _FlowList, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def register_to_yaml(register: FleetRegister) -> str:
    records = []
    for spec in register.specs():
        record = spec.to_record()
        if "fitted_sensors" in record:
            record["fitted_sensors"] = _FlowList(record["fitted_sensors"])
        records.append(record)
    return yaml.dump(
        {"turbines": records}, Dumper=_RegisterDumper, sort_keys=False, allow_unicode=True, width=1000
    )


def register_to_csv(register: FleetRegister) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for spec in register.specs():
        row: list[str] = []
        for name in FIELDS:
            value = getattr(spec, name)
            if value is None:
                row.append("")
            elif name == "fitted_sensors":
                row.append(format_sensor_list(value))
            elif isinstance(value, float):
                row.append(repr(value))
            elif isinstance(value, date):
                row.append(value.isoformat())
            else:
                row.append(str(value))
        writer.writerow(row)
    return out.getvalue()


def write_register(register: FleetRegister, path: Path | str) -> None:
    """Write ``register`` to ``path``: YAML for ``.yaml``/``.yml``, CSV for ``.csv`` (atomic replace).

    What :func:`read_register` reads back gives an equal register.
    """
    path = Path(path)
    fmt = register_format(path)
    text = register_to_csv(register) if fmt == "csv" else register_to_yaml(register)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = [
    "FIELDS",
    "MAX_REGISTER_BYTES",
    "MAX_TURBINES",
    "FleetRegister",
    "RegisterError",
    "RegisterProblem",
    "TurbineSpec",
    "format_sensor_list",
    "ordered_sensors",
    "parse_register_csv",
    "parse_register_data",
    "parse_register_yaml",
    "parse_sensor_list",
    "read_register",
    "register_to_csv",
    "register_to_yaml",
    "sensor_names",
    "write_register",
]
