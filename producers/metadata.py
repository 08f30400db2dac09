"""A vendor's turbine metadata file -> a fleet register (``python -m producers register``).

Why here: the mapping that reads a vendor's SCADA export already knows how its turbine ids become the
cockpit's (the ``turbines`` table or ``turbine_id.prefix``) and which signals the export carries; the
metadata section of the same mapping says which column of the metadata file holds each register field.
The result is a :class:`common.fleet.FleetRegister`, written with :func:`common.fleet.write_register`
and imported with ``python -m common fleet import``.

Every problem of the file is reported at once (row, column, what is wrong), like mapping errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from common.fleet import MAX_REGISTER_BYTES, MAX_TURBINES, FleetRegister, TurbineSpec
from producers.mapping import METADATA_FIELDS, MappingError, MetadataColumn, ReplayMapping, code_key
from producers.units import conversion

MAX_PROBLEMS = 50
_NUMBERS = frozenset({"rated_power_kw", "rotor_diameter_m", "hub_height_m", "latitude", "longitude"})


@dataclass
class MetadataImport:
    """The register built from the metadata file, and what is worth knowing about it."""

    register: FleetRegister
    source: Path
    rows: int
    warnings: list[str] = field(default_factory=list)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read(path: Path, mapping: ReplayMapping) -> pd.DataFrame:
    spec = mapping.metadata
    assert spec is not None
    if not path.is_file():
        raise MappingError(f"{path}: no such metadata file (mapping key metadata.file)")
    if path.stat().st_size > MAX_REGISTER_BYTES:
        raise MappingError(
            f"{path}: metadata file larger than {MAX_REGISTER_BYTES // (1024 * 1024)} MiB "
            "(one row per turbine is far smaller: is this the right file?)"
        )
    fmt = spec.format or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path).astype(object)
        else:
            opts = spec.csv
            frame = pd.read_csv(
                path,
                sep=opts.delimiter,
                dtype=str,
                encoding=opts.encoding,
                encoding_errors="replace",
                skiprows=opts.skip_rows,
                keep_default_na=False,
                na_values=[""],
                on_bad_lines="error",
            )
    except Exception as exc:  # any parser error: one clear message naming the file
        raise MappingError(f"{path}: cannot read the metadata file: {exc}") from None
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) > MAX_TURBINES:
        raise MappingError(f"{path}: {len(frame)} rows; a register holds at most {MAX_TURBINES} turbines")
    return frame


def _cell(frame: pd.DataFrame, index: int, column: str) -> str | None:
    value = frame[column].iat[index]
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _value(name: str, spec: MetadataColumn, text: str, decimal: str) -> Any:
    """Typed value of one metadata cell; ``ValueError`` with a readable message."""
    if name in _NUMBERS:
        try:
            number = float(text.replace(decimal, ".") if decimal != "." else text)
        except ValueError:
            raise ValueError(f"{_short(text)} is not a number") from None
        if name == "rated_power_kw" and spec.unit is not None:
            scale, offset = conversion("power_kw", spec.unit)
            number = number * scale + offset
        return number
    if name == "commissioning_date":
        try:
            if spec.format is not None:
                return datetime.strptime(text, spec.format).date()
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{_short(text)} is not a date ({spec.format or 'YYYY-MM-DD'})") from None
    return text


def build_register(
    mapping: ReplayMapping, mapping_path: str | Path | None, metadata_path: str | Path | None = None
) -> MetadataImport:
    """Read the mapping's metadata file and return the fleet register it describes.

    Raises :class:`MappingError` listing every problem (missing columns; per row: unknown vendor id,
    bad number or date, invalid id...). Turbines of the ``turbines`` table absent from the file, and
    rows of vendor turbines the table does not know, are warnings.
    """
    spec = mapping.metadata
    if spec is None:
        raise MappingError(
            f"{mapping_path or 'mapping'}: no 'metadata' section: add one that names the vendor's "
            "metadata file and its columns (docs/producers.md, 'Turbine metadata')"
        )
    path = Path(metadata_path) if metadata_path is not None else mapping.metadata_path(mapping_path)
    assert path is not None
    frame = _read(path, mapping)
    needed = [spec.turbine, *([spec.site] if spec.site else [])]
    needed += [c.column for c in spec.columns.values() if c.column is not None]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise MappingError(
            f"{path}: columns {missing} named in the mapping's metadata section are not in the file "
            f"(it has: {', '.join(frame.columns)})"
        )
    table = mapping.turbines
    site_constant = None
    if mapping.site_id is not None and mapping.site_id.constant is not None:
        site_constant = mapping.site_id.prefix + mapping.site_id.constant
    if (
        spec.site is None
        and site_constant is None
        and (table is None or any(not e.site_id for e in table.values()))
    ):
        raise MappingError(
            f"{path}: cannot tell each turbine's site: give metadata.site (a column of the metadata file), "
            "a site_id for every entry of 'turbines', or site_id.constant"
        )
    sensors = list(spec.fitted_sensors) if spec.fitted_sensors is not None else mapping.mapped_fields()
    first_line = spec.csv.skip_rows + 2  # header on the line after the skipped ones; data after it
    problems: list[str] = []
    warnings: list[str] = []
    specs: list[TurbineSpec] = []
    seen: dict[str, int] = {}
    for index in range(len(frame)):
        where = f"line {first_line + index}" if (spec.format or "csv") == "csv" else f"row {index + 1}"
        vendor = _cell(frame, index, spec.turbine)
        if vendor is None:
            problems.append(f"{where}: {spec.turbine}: empty turbine id")
            continue
        label = f"{where} ({_short(vendor)})"
        entry = None
        if table is not None:
            entry = table.get(code_key(vendor))
            if entry is None:
                warnings.append(f"{label}: vendor turbine not in the mapping's turbines table; skipped")
                continue
            turbine_id = entry.turbine_id
        else:
            turbine_id = mapping.turbine_id.prefix + vendor
        if spec.site is not None:
            site = _cell(frame, index, spec.site)
        elif entry is not None and entry.site_id:
            site = entry.site_id
        else:
            site = site_constant
        record: dict[str, Any] = {"turbine_id": turbine_id, "site_id": site, "fitted_sensors": sensors}
        for name in METADATA_FIELDS:
            column = spec.columns.get(name)
            if column is None:
                continue
            if column.constant is not None:
                text: str | None = str(column.constant).strip() or None
            else:
                assert column.column is not None
                text = _cell(frame, index, column.column)
            if text is None:
                continue
            try:
                record[name] = _value(name, column, text, spec.csv.decimal)
            except ValueError as exc:
                problems.append(f"{label}: {column.column or name}: {exc}")
        try:
            turbine = TurbineSpec.model_validate(record)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in err["loc"]) or "<row>"
                problems.append(f"{label}: {loc}: {err['msg']}")
            continue
        if turbine.turbine_id in seen:
            problems.append(
                f"{label}: turbine {turbine.turbine_id!r} already given "
                f"on line/row {seen[turbine.turbine_id]}"
            )
            continue
        seen[turbine.turbine_id] = first_line + index
        specs.append(turbine)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise MappingError(
            f"{path}: invalid metadata ({len(problems)} problem(s)):\n"
            + "\n".join(f"  - {p}" for p in shown)
            + more
        )
    if not specs:
        raise MappingError(f"{path}: no turbine in the metadata file")
    if table is not None:
        absent = sorted({e.turbine_id for e in table.values()} - {s.turbine_id for s in specs})
        if absent:
            warnings.append(f"turbines of the mapping without metadata: {', '.join(absent[:20])}")
    register = FleetRegister.from_specs(specs, str(path))
    return MetadataImport(register=register, source=path, rows=len(frame), warnings=warnings)
