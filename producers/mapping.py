"""Column mapping of a SCADA export (CSV or Parquet) onto the telemetry contract.

Why a declarative YAML file: every operator exports different column names, units, time formats and
time zones; a reviewed mapping file replaces one-off conversion scripts. Mistakes in the file are
reported all at once (with the key path) before any row is read.

Two ways to map signals (both may be used in one file; each contract field once):

* ``columns``: source column -> contract field (the original form);
* ``fields``: contract field -> one source column or several with an aggregate (``mean``, ``max``,
  ``min``, ``first``), plus the signal's min/max/std columns (acknowledged, not published: the contract
  has no field for them).

Per signal: ``unit``, ``na_values`` (sentinels such as ``-273.2``, ``9999``, ``"---"`` read as "no
value"), ``range`` (plausible range inside the contract's) and ``on_invalid`` (``reject`` the row, the
default, or ``null`` the value and keep the row). Optional tables: ``turbines`` (vendor id -> cockpit
turbine id and site), ``status_code.lookup`` (vendor status/alarm code -> contract status code) and
``metadata`` (the vendor's turbine metadata file -> a fleet register, ``python -m producers register``).
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common import config_files
from common import contracts as _contracts
from common.contracts import IDENTIFIER_PATTERN, SIGNALS, TelemetryEvent
from producers.units import UnitError, canonical_unit, conversion

TimestampFormat = str  # strftime pattern, or one of: iso, epoch_s, epoch_ms
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)

#: Contract status codes by name (``common.contracts.STATUS_*`` without the prefix): OK, CURTAILED...
STATUS_CODES: dict[str, int] = {
    name.removeprefix("STATUS_"): value
    for name, value in vars(_contracts).items()
    if name.startswith("STATUS_") and isinstance(value, int)
}

Aggregate = Literal["mean", "max", "min", "first"]
OnInvalid = Literal["reject", "null"]
NaValue = float | str
#: Longest mapping table (turbines, status codes, sentinels): a mapping is reviewed by a person.
MAX_TABLE_ITEMS = 10_000

#: Turbine register fields a metadata file can fill (``common.fleet.TurbineSpec`` minus ids and sensors).
METADATA_FIELDS: tuple[str, ...] = (
    "manufacturer",
    "model",
    "rated_power_kw",
    "rotor_diameter_m",
    "hub_height_m",
    "latitude",
    "longitude",
    "commissioning_date",
)
_METADATA_NUMBERS = frozenset({"rated_power_kw", "rotor_diameter_m", "hub_height_m", "latitude", "longitude"})


class MappingError(ValueError):
    """The mapping file is unreadable or inconsistent (with itself or with the data file)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,30}(?:\.0*)?")


def code_key(value: Any) -> str:
    """How a vendor turbine id or status code is matched against the mapping's tables: stripped text,
    and a whole number written any way (``7``, ``07``, ``7.0``, YAML's unquoted ``07``) as its digits."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a code (quote it in YAML)")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value) == int(float(value)):
        return str(int(float(value)))
    text = str(value).strip()
    if _WHOLE_NUMBER.fullmatch(text):
        return str(int(text.split(".")[0]))
    return text


class CsvOptions(_Strict):
    delimiter: str = Field(",", min_length=1, max_length=1)
    decimal: str = Field(".", min_length=1, max_length=1)
    encoding: str = "utf-8"
    skip_rows: int = Field(0, ge=0, description="lines to skip before the header (export banners)")


class TimestampSpec(_Strict):
    """Where the time is and how to read it; naive times are interpreted in ``timezone``.

    ``ambiguous``: what to do with a naive local time that occurs twice (the autumn DST fold):
    ``reject`` (default) or ``order`` (a turbine's first such row is summer time, the second winter
    time: the order in which a logger writes them).
    """

    column: str = Field(min_length=1)
    format: TimestampFormat = Field("iso", min_length=1)
    timezone: str = "UTC"
    ambiguous: Literal["reject", "order"] = "reject"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
            ) from None
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("iso", "epoch_s", "epoch_ms") and "%" not in value:
            raise ValueError(
                "format must be 'iso', 'epoch_s', 'epoch_ms' or a strftime pattern like %Y-%m-%d %H:%M"
            )
        return value


class IdSpec(_Strict):
    """An identifier from a column (optionally prefixed) or a constant for the whole file."""

    column: str | None = None
    constant: str | None = Field(None, min_length=1, max_length=64)
    prefix: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> IdSpec:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' or 'constant'")
        if self.constant is not None and not _IDENTIFIER.fullmatch(self.prefix + self.constant):
            raise ValueError(
                f"{self.prefix + self.constant!r} is not a valid identifier for the telemetry contract "
                f"({IDENTIFIER_PATTERN}: a letter or digit, then up to 63 of letters, digits and ._:/-)"
            )
        if self.prefix and not _IDENTIFIER.fullmatch(self.prefix + "0"):
            raise ValueError(f"prefix {self.prefix!r} cannot start a valid identifier ({IDENTIFIER_PATTERN})")
        return self


def _check_identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{value[:80]!r} is not a valid identifier for the telemetry contract ({IDENTIFIER_PATTERN})"
        )
    return value


class TurbineEntry(_Strict):
    """One row of the ``turbines`` table: the cockpit's id (and site) for a vendor turbine id."""

    turbine_id: str
    site_id: str | None = None

    @field_validator("turbine_id", "site_id")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        return value if value is None else _check_identifier(value)


def _status_value(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a status code")
    if isinstance(value, int):
        if not 0 <= value <= 999:
            raise ValueError(f"status code {value} outside [0, 999]")
        return value
    if isinstance(value, str):
        key = value.strip().upper().removeprefix("STATUS_")
        if key in STATUS_CODES:
            return STATUS_CODES[key]
    raise ValueError(
        f"{str(value)[:80]!r} is not a contract status: give a number in [0, 999] or one of "
        + ", ".join(f"{k} ({v})" for k, v in STATUS_CODES.items())
    )


class StatusSpec(_Strict):
    """The status column: contract codes as numbers, or vendor codes/texts through ``lookup``.

    ``unknown`` (with ``lookup``): a vendor code missing from the table becomes ``default`` (counted in
    the import report, the default) or rejects the row (``reject``).
    """

    column: str
    default: int = Field(0, ge=0, le=999, description="used when the cell is empty")
    lookup: dict[str, int] | None = Field(None, max_length=MAX_TABLE_ITEMS)
    unknown: Literal["default", "reject"] = "default"

    @field_validator("default", mode="before")
    @classmethod
    def _default_by_name(cls, value: Any) -> Any:
        return _status_value(value) if isinstance(value, str) else value

    @field_validator("lookup", mode="before")
    @classmethod
    def _table(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, int] = {}
        problems = []
        for key, code in value.items():
            try:
                out[code_key(key)] = _status_value(code)
            except ValueError as exc:
                problems.append(f"{key!r}: {exc}")
        if problems:
            raise ValueError("; ".join(problems[:10]))
        return out


def _yaml_null_is_null(data: Any) -> Any:
    """``on_invalid: null`` unquoted is YAML's null: the user means the ``null`` policy, not "default"."""
    if isinstance(data, dict) and "on_invalid" in data and data["on_invalid"] is None:
        return {**data, "on_invalid": "null"}
    return data


class _ValueOptions(_Strict):
    """How one signal's cells are read: unit, sentinels, plausible range, what to do with a bad value."""

    @model_validator(mode="before")
    @classmethod
    def _null_policy(cls, data: Any) -> Any:
        return _yaml_null_is_null(data)

    unit: str | None = None
    na_values: list[NaValue] = Field(default_factory=list, max_length=MAX_TABLE_ITEMS)
    range: tuple[float, float] | None = Field(
        None, description="plausible [min, max] in the contract's unit, inside the contract's bounds"
    )
    on_invalid: OnInvalid | None = Field(None, description="default: the mapping's on_invalid")
    stats: dict[Literal["min", "max", "std"], str] = Field(
        default_factory=dict, description="columns of the signal's min/max/std (not published)"
    )

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"range minimum {value[0]} must be below its maximum {value[1]}")
        return value

    def _check_unit(self, field: str) -> None:
        try:
            conversion(field, self.unit)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        if self.range is not None:
            low, high = contract_bounds()[field]
            if self.range[1] < low or self.range[0] > high:
                raise ValueError(
                    f"range [{self.range[0]:g}, {self.range[1]:g}] lies outside the contract's "
                    f"[{low:g}, {high:g}] for {field}: every value would be refused"
                )


@functools.cache
def contract_bounds() -> dict[str, tuple[float, float]]:
    """``field -> (min, max)`` read from the contract itself, so the two can never disagree."""
    bounds: dict[str, tuple[float, float]] = {}
    for name in SIGNALS:
        low, high = -math.inf, math.inf
        for item in TelemetryEvent.model_fields[name].metadata:
            low = getattr(item, "ge", low)
            high = getattr(item, "le", high)
        bounds[name] = (float(low), float(high))
    return bounds


def _known_field(value: str) -> str:
    if value not in SIGNALS:
        raise ValueError(f"unknown contract field {value!r}; expected one of {', '.join(SIGNALS)}")
    return value


class ColumnSpec(_ValueOptions):
    """One source column feeding one contract signal, with its unit (default: the contract's unit)."""

    field: str

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        return _known_field(value)

    @model_validator(mode="after")
    def _unit_fits(self) -> ColumnSpec:
        self._check_unit(self.field)
        return self


class FieldSpec(_ValueOptions):
    """A contract field fed by one source column (``source``) or several (``sources`` + ``aggregate``).

    ``aggregate`` over the valid values of a row (sentinels, blanks and, with ``on_invalid: null``,
    bad values are skipped): ``mean``, ``max``, ``min`` or ``first`` (the first valid one in list order).
    """

    field: str  # the key under ``fields`` (filled in by the mapping)
    source: str | None = None
    sources: list[str] | None = Field(None, min_length=1, max_length=64)
    aggregate: Aggregate = "mean"

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        return _known_field(value)

    @model_validator(mode="after")
    def _one_form(self) -> FieldSpec:
        if (self.source is None) == (self.sources is None):
            raise ValueError("give exactly one of 'source' (one column) or 'sources' (a list of columns)")
        if self.sources is not None and len(set(self.sources)) != len(self.sources):
            raise ValueError("a column is listed twice in 'sources'")
        self._check_unit(self.field)
        return self


class MetadataColumn(_Strict):
    """Where one register field comes from in the metadata file (a column or a constant)."""

    column: str | None = None
    constant: str | float | None = None
    unit: str | None = Field(None, description="rated_power_kw only: W, kW or MW")
    format: str | None = Field(None, description="commissioning_date only: strftime pattern; default ISO")

    @model_validator(mode="after")
    def _one_source(self) -> MetadataColumn:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of 'column' or 'constant'")
        if self.format is not None and "%" not in self.format:
            raise ValueError("format must be a strftime pattern like %d/%m/%Y")
        return self


class MetadataSpec(_Strict):
    """The vendor's turbine metadata file, one row per turbine (``python -m producers register``).

    ``turbine`` is the vendor id column, translated like the telemetry's (``turbines`` table or
    ``turbine_id.prefix``); the site comes from ``site`` (a column), else the ``turbines`` table, else
    ``site_id.constant``. ``fitted_sensors`` default: the contract fields this mapping maps.
    """

    file: str = Field(min_length=1, description="path; relative paths are relative to the mapping file")
    format: Literal["csv", "parquet"] | None = None
    csv: CsvOptions = Field(default_factory=lambda: CsvOptions.model_validate({}))
    turbine: str = Field(min_length=1, description="column of the vendor turbine id")
    site: str | None = Field(None, description="column of the site id (optional)")
    columns: dict[str, MetadataColumn] = Field(default_factory=dict)
    fitted_sensors: list[str] | None = None

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"column": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @field_validator("columns")
    @classmethod
    def _known(cls, value: dict[str, MetadataColumn]) -> dict[str, MetadataColumn]:
        problems = []
        for name, spec in value.items():
            if name not in METADATA_FIELDS:
                problems.append(
                    f"unknown register field {name!r}; expected one of {', '.join(METADATA_FIELDS)}"
                )
                continue
            if spec.unit is not None:
                if name != "rated_power_kw":
                    problems.append(f"{name}: 'unit' is only for rated_power_kw")
                else:
                    try:
                        conversion("power_kw", spec.unit)
                    except UnitError as exc:
                        problems.append(f"{name}: {exc}")
            if spec.format is not None and name != "commissioning_date":
                problems.append(f"{name}: 'format' is only for commissioning_date")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("fitted_sensors")
    @classmethod
    def _sensors(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for name in value:
                _known_field(name)
        return value


@dataclass(frozen=True)
class SignalSource:
    """A contract field and how to read it, whichever form (``columns`` or ``fields``) declared it."""

    field: str
    sources: tuple[str, ...]
    aggregate: str
    unit: str | None
    na_values: tuple[NaValue, ...]
    range: tuple[float, float] | None
    on_invalid: str
    stats: dict[str, str]


class ReplayMapping(_Strict):
    """The whole mapping file (see ``producers/examples/scada_mapping.yaml`` and docs/producers.md)."""

    format: Literal["csv", "parquet"] | None = None
    csv: CsvOptions = Field(default_factory=lambda: CsvOptions.model_validate({}))
    timestamp: TimestampSpec
    turbine_id: IdSpec
    site_id: IdSpec | None = None
    turbines: dict[str, TurbineEntry] | None = Field(
        None, max_length=MAX_TABLE_ITEMS, description="vendor turbine id -> cockpit id (and site)"
    )
    status_code: StatusSpec | None = None
    na_values: list[NaValue] = Field(
        default_factory=list, max_length=MAX_TABLE_ITEMS, description="sentinels of every signal column"
    )
    on_invalid: OnInvalid = "reject"
    columns: dict[str, ColumnSpec] = Field(
        default_factory=dict, description="source column -> contract field"
    )
    fields: dict[str, FieldSpec] = Field(default_factory=dict, description="contract field -> source(s)")
    metadata: MetadataSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_policy(cls, data: Any) -> Any:
        return _yaml_null_is_null(data)

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``"Rotor speed": rotor_rpm`` is short for ``{field: rotor_rpm}``."""
        if isinstance(value, dict):
            return {k: ({"field": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @field_validator("fields", mode="before")
    @classmethod
    def _field_names(cls, value: Any) -> Any:
        """``wind_speed_ms: "Ws_avg"`` is short for ``{source: Ws_avg}``; the key is the field."""
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                spec = {"source": v} if isinstance(v, str) else v
                out[k] = {**spec, "field": k} if isinstance(spec, dict) else spec
            return out
        return value

    @field_validator("turbines", mode="before")
    @classmethod
    def _turbine_table(cls, value: Any) -> Any:
        """``T01: WT-101`` is short for ``T01: {turbine_id: WT-101}``; keys are read as text."""
        if isinstance(value, dict):
            return {code_key(k): ({"turbine_id": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ReplayMapping:
        problems: list[str] = []
        if not self.columns and not self.fields:
            problems.append("columns/fields: map at least one signal (under 'columns' or 'fields')")
        seen: dict[str, str] = {}
        for source, spec in self.columns.items():
            if spec.field in seen:
                problems.append(
                    f"field {spec.field} is mapped twice (columns {seen[spec.field]!r} and {source!r})"
                )
            seen[spec.field] = source
        for name in self.fields:
            if name in seen:
                problems.append(f"field {name} is mapped twice (columns {seen[name]!r} and fields.{name})")
            seen[name] = f"fields.{name}"
        if self.turbines is not None:
            if self.turbine_id.column is None:
                problems.append("turbines: a turbine table needs turbine_id.column (the vendor id column)")
            if self.turbine_id.prefix:
                problems.append(
                    "turbine_id.prefix: not used with a 'turbines' table (give the full ids there)"
                )
            owners: dict[str, str] = {}
            for vendor, entry in self.turbines.items():
                if entry.turbine_id in owners:
                    problems.append(
                        f"turbines: {owners[entry.turbine_id]!r} and {vendor!r} "
                        f"both map to {entry.turbine_id!r}"
                    )
                owners[entry.turbine_id] = vendor
        if self.site_id is None:
            missing = [] if self.turbines is None else [k for k, e in self.turbines.items() if not e.site_id]
            if self.turbines is None or missing:
                problems.append(
                    "site_id: required (column or constant) unless every entry of 'turbines' has a site_id"
                    + (f" (missing for {', '.join(map(repr, missing[:5]))})" if self.turbines else "")
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- views -------------------------------------------------------------------------------------
    def signal_sources(self) -> list[SignalSource]:
        """Every mapped signal in contract order, ``columns`` and ``fields`` alike."""
        out: dict[str, SignalSource] = {}
        for source, spec in self.columns.items():
            out[spec.field] = self._source(spec.field, (source,), "first", spec)
        for name, fspec in self.fields.items():
            cols = tuple(fspec.sources) if fspec.sources is not None else (str(fspec.source),)
            out[name] = self._source(name, cols, fspec.aggregate, fspec)
        return [out[name] for name in SIGNALS if name in out]

    def _source(self, field: str, cols: tuple[str, ...], aggregate: str, spec: _ValueOptions) -> SignalSource:
        return SignalSource(
            field=field,
            sources=cols,
            aggregate=aggregate,
            unit=spec.unit,
            na_values=tuple(dict.fromkeys([*self.na_values, *spec.na_values])),
            range=spec.range,
            on_invalid=spec.on_invalid or self.on_invalid,
            stats={str(k): v for k, v in spec.stats.items()},
        )

    def mapped_fields(self) -> list[str]:
        """Contract fields this mapping fills, in contract order."""
        return [s.field for s in self.signal_sources()]

    def source_columns(self) -> list[str]:
        """Every column of the data file this mapping reads, in a stable order."""
        cols = [self.timestamp.column]
        for spec in (self.turbine_id, self.site_id):
            if spec is not None and spec.column:
                cols.append(spec.column)
        if self.status_code:
            cols.append(self.status_code.column)
        for signal in self.signal_sources():
            cols.extend(signal.sources)
        return list(dict.fromkeys(cols))

    def stats_columns(self) -> list[str]:
        """Declared min/max/std columns (checked to exist, never published)."""
        return list(dict.fromkeys(c for s in self.signal_sources() for c in s.stats.values()))

    def check_columns(self, available: list[str], source: str) -> None:
        """Raise :class:`MappingError` naming every mapped column missing from the data file."""
        missing = [c for c in [*self.source_columns(), *self.stats_columns()] if c not in available]
        if missing:
            raise MappingError(
                f"{source}: columns {missing} named in the mapping are not in the file "
                f"(it has: {', '.join(map(str, available))})"
            )

    def describe(self) -> list[str]:
        """Human-readable conversion lines (for ``replay --check`` and docs)."""
        lines = []
        for signal in self.signal_sources():
            unit = signal.unit or canonical_unit(signal.field)
            if len(signal.sources) == 1:
                src = repr(signal.sources[0])
            else:
                src = f"{signal.aggregate}({', '.join(map(repr, signal.sources))})"
            extra = []
            if signal.na_values:
                extra.append("sentinels " + ", ".join(map(repr, signal.na_values[:6])))
            if signal.range:
                extra.append(f"range [{signal.range[0]:g}, {signal.range[1]:g}]")
            if signal.on_invalid == "null":
                extra.append("bad value -> null (row kept)")
            tail = f"  ({'; '.join(extra)})" if extra else ""
            lines.append(f"{src} [{unit}] -> {signal.field} [{canonical_unit(signal.field)}]{tail}")
            if signal.stats:
                names = ", ".join(f"{k} {v!r}" for k, v in signal.stats.items())
                lines.append(f"  {names}: {signal.field} statistics, not in the contract (not published)")
        if self.turbines is not None:
            lines.append(f"turbine ids: {len(self.turbines)} vendor ids through the 'turbines' table")
        if self.status_code is not None and self.status_code.lookup is not None:
            lines.append(
                f"status codes: {len(self.status_code.lookup)} vendor codes through status_code.lookup "
                f"(unknown -> {self.status_code.unknown})"
            )
        return lines

    def metadata_path(self, mapping_path: str | Path | None) -> Path | None:
        """The metadata file, relative paths taken from the mapping file's folder."""
        if self.metadata is None:
            return None
        path = Path(self.metadata.file)
        if not path.is_absolute() and mapping_path is not None:
            path = Path(mapping_path).resolve().parent / path
        return path


def format_mapping_error(exc: ValidationError, source: str) -> str:
    return config_files.format_validation_error(exc, source, "replay mapping")


def parse_mapping(data: Any, source: str = "mapping") -> ReplayMapping:
    return config_files.parse_config(data, ReplayMapping, MappingError, source, "replay mapping")


def load_mapping(path: str | Path) -> ReplayMapping:
    return parse_mapping(config_files.read_yaml(path, MappingError, "mapping"), str(path))
