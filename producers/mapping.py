"""Column mapping of a SCADA export (CSV or Parquet) onto the telemetry contract.

Why a declarative YAML file: every operator exports different column names, units, time formats and
time zones; a reviewed mapping file replaces one-off conversion scripts. Mistakes in the file are
reported all at once (with the key path) before any row is read.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common import config_files
from common.contracts import IDENTIFIER_PATTERN, SIGNALS
from producers.units import UnitError, canonical_unit, conversion

TimestampFormat = str  # strftime pattern, or one of: iso, epoch_s, epoch_ms
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class MappingError(ValueError):
    """The mapping file is unreadable or inconsistent (with itself or with the data file)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    delimiter: str = Field(",", min_length=1, max_length=1)
    decimal: str = Field(".", min_length=1, max_length=1)
    encoding: str = "utf-8"
    skip_rows: int = Field(0, ge=0, description="lines to skip before the header (export banners)")


class TimestampSpec(_Strict):
    """Where the time is and how to read it; naive times are interpreted in ``timezone``."""

    column: str = Field(min_length=1)
    format: TimestampFormat = Field("iso", min_length=1)
    timezone: str = "UTC"

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


class StatusSpec(_Strict):
    column: str
    default: int = Field(0, ge=0, le=999, description="used when the cell is empty")


class ColumnSpec(_Strict):
    """One source column feeding one contract signal, with its unit (default: the contract's unit)."""

    field: str
    unit: str | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value not in SIGNALS:
            raise ValueError(f"unknown contract field {value!r}; expected one of {', '.join(SIGNALS)}")
        return value

    @model_validator(mode="after")
    def _unit_fits(self) -> ColumnSpec:
        try:
            conversion(self.field, self.unit)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        return self


class ReplayMapping(_Strict):
    """The whole mapping file (see ``producers/examples/scada_mapping.yaml``)."""

    format: Literal["csv", "parquet"] | None = None
    csv: CsvOptions = Field(default_factory=lambda: CsvOptions.model_validate({}))
    timestamp: TimestampSpec
    turbine_id: IdSpec
    site_id: IdSpec
    status_code: StatusSpec | None = None
    columns: dict[str, ColumnSpec] = Field(min_length=1, description="source column -> contract field")

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """``"Rotor speed": rotor_rpm`` is short for ``{field: rotor_rpm}``."""
        if isinstance(value, dict):
            return {k: ({"field": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _each_field_once(self) -> ReplayMapping:
        seen: dict[str, str] = {}
        for source, spec in self.columns.items():
            if spec.field in seen:
                raise ValueError(
                    f"field {spec.field} is mapped twice (columns {seen[spec.field]!r} and {source!r})"
                )
            seen[spec.field] = source
        return self

    def source_columns(self) -> list[str]:
        """Every column of the data file this mapping reads, in a stable order."""
        cols = [self.timestamp.column]
        for spec in (self.turbine_id, self.site_id):
            if spec.column:
                cols.append(spec.column)
        if self.status_code:
            cols.append(self.status_code.column)
        cols.extend(self.columns)
        return list(dict.fromkeys(cols))

    def check_columns(self, available: list[str], source: str) -> None:
        """Raise :class:`MappingError` naming every mapped column missing from the data file."""
        missing = [c for c in self.source_columns() if c not in available]
        if missing:
            raise MappingError(
                f"{source}: columns {missing} named in the mapping are not in the file "
                f"(it has: {', '.join(map(str, available))})"
            )

    def describe(self) -> list[str]:
        """Human-readable conversion lines (for ``replay --check`` and docs)."""
        lines = []
        for source, spec in self.columns.items():
            unit = spec.unit or canonical_unit(spec.field)
            lines.append(f"{source!r} [{unit}] -> {spec.field} [{canonical_unit(spec.field)}]")
        return lines


def format_mapping_error(exc: ValidationError, source: str) -> str:
    return config_files.format_validation_error(exc, source, "replay mapping")


def parse_mapping(data: Any, source: str = "mapping") -> ReplayMapping:
    return config_files.parse_config(data, ReplayMapping, MappingError, source, "replay mapping")


def load_mapping(path: str | Path) -> ReplayMapping:
    return parse_mapping(config_files.read_yaml(path, MappingError, "mapping"), str(path))
