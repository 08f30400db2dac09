"""The fleet register in PostgreSQL: columns of ``turbines`` (migration 0005).

Import semantics: each turbine of the register gets exactly what the register says (a field the register
leaves out is cleared); turbines of the database that the register does not list are left as they are
(their history stays). A turbine listed before it ever sent data gets a row at once: it appears in the
fleet as never scored. Unchanged rows are not written (``register_updated_at`` keeps the last change).

Why one staged statement: a register can hold 100,000 turbines; it is copied into a temporary table and
merged with one ``INSERT ... ON CONFLICT`` inside one transaction, so an import is all or nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from pydantic import ValidationError

from common.fleet import FleetRegister, TurbineSpec, ordered_sensors
from common.logging import event

log = logging.getLogger(__name__)

#: (TurbineSpec field, turbines column, PostgreSQL type), in copy order.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("turbine_id", "turbine_id", "text"),
    ("site_id", "site_id", "text"),
    ("manufacturer", "manufacturer", "text"),
    ("model", "model", "text"),
    ("rated_power_kw", "rated_power_kw", "float8"),
    ("rotor_diameter_m", "rotor_diameter_m", "float8"),
    ("hub_height_m", "hub_height_m", "float8"),
    ("latitude", "latitude", "float8"),
    ("longitude", "longitude", "float8"),
    ("commissioning_date", "commissioned_on", "date"),
    ("fitted_sensors", "fitted_sensors", "text[]"),
)
_STAGE = "_fleet_register_stage"
_DB_COLS = [c for _, c, _ in _COLUMNS]
_DATA_COLS = [c for c in _DB_COLS if c != "turbine_id"]
_COL_LIST = ", ".join(_DB_COLS)


def _differs(left: str, right: str) -> str:
    """SQL: the register columns of ``left`` differ from those of ``right`` (NULL-safe)."""
    cols = ", ".join(f"{left}.{c}" for c in _DATA_COLS)
    other = ", ".join(f"{right}.{c}" for c in _DATA_COLS)
    return f"(({cols}) IS DISTINCT FROM ({other}))"


class RegisterSchemaMissing(RuntimeError):
    """The database lacks the register columns (migration 0005 not applied); the message says what to run."""


def _row(spec: TurbineSpec) -> list[Any]:
    values: list[Any] = []
    for field, _, _ in _COLUMNS:
        value = getattr(spec, field)
        values.append(ordered_sensors(value) if field == "fitted_sensors" and value is not None else value)
    return values


def upsert_register(
    conn: psycopg.Connection, register: FleetRegister, *, dry_run: bool = False
) -> dict[str, int]:
    """Merge ``register`` into ``turbines`` in one transaction (committed unless ``dry_run``).

    Returns counts: ``inserted`` (new turbines), ``updated`` (metadata changed, or first time in a
    register), ``unchanged``, and ``site_changed`` (of the updated ones, turbines whose site differs from
    the one the database had). With ``dry_run`` the counts say what an import would do; nothing is kept.
    """
    try:
        with conn.transaction(force_rollback=dry_run):
            conn.execute(f"CREATE TEMP TABLE {_STAGE} (LIKE turbines INCLUDING DEFAULTS) ON COMMIT DROP")
            with conn.cursor() as cur, cur.copy(f"COPY {_STAGE} ({_COL_LIST}) FROM STDIN") as copy:
                copy.set_types([t for _, _, t in _COLUMNS])
                for spec in register.specs():
                    copy.write_row(_row(spec))
            row = conn.execute(
                f"""SELECT count(*) FILTER (WHERE t.turbine_id IS NULL),
                           count(*) FILTER (WHERE t.turbine_id IS NOT NULL
                                            AND ({_differs("s", "t")} OR t.register_updated_at IS NULL)),
                           count(*) FILTER (WHERE t.site_id <> s.site_id)
                    FROM {_STAGE} s LEFT JOIN turbines t ON t.turbine_id = s.turbine_id"""
            ).fetchone()
            assert row is not None
            inserted, updated, site_changed = (int(v) for v in row)
            if not dry_run:
                updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _DATA_COLS)
                conn.execute(
                    f"""INSERT INTO turbines ({_COL_LIST}, register_updated_at)
                        SELECT {_COL_LIST}, now() FROM {_STAGE} ORDER BY turbine_id
                        ON CONFLICT (turbine_id) DO UPDATE SET {updates}, register_updated_at = now()
                        WHERE {_differs("turbines", "EXCLUDED")} OR turbines.register_updated_at IS NULL"""
                )
    except psycopg.errors.UndefinedColumn as exc:
        raise RegisterSchemaMissing(
            f"the database has no fleet register columns ({exc.diag.message_primary}); "
            "apply the migrations first: python -m common migrate"
        ) from None
    counts = {
        "inserted": inserted,
        "updated": updated,
        "unchanged": len(register) - inserted - updated,
        "site_changed": site_changed,
    }
    if not dry_run:
        event(log, "fleet register imported", turbines=len(register), **counts)
    return counts


def load_register(conn: psycopg.Connection, *, declared_sensors_only: bool = False) -> FleetRegister:
    """Every turbine of the database as a register (ordered by id); ``declared_sensors_only``: only the
    turbines whose fitted sensors are declared (all the scorer's routing reads: a turbine without them
    is routed as one not in the register; each worker holds the register and re-reads it every
    minute, and one validated spec per turbine of a large fleet cost ~1 KB of worker memory each).

    A turbine known only from telemetry has its id and site and ``fitted_sensors`` None (not declared).
    A stored value the register model refuses (written by hand or by an older version) is dropped from
    that turbine with a warning rather than hiding the turbine.
    """
    where = " WHERE fitted_sensors IS NOT NULL" if declared_sensors_only else ""
    try:
        rows = conn.execute(f"SELECT {_COL_LIST} FROM turbines{where} ORDER BY turbine_id").fetchall()
    except psycopg.errors.UndefinedColumn as exc:
        raise RegisterSchemaMissing(
            f"the database has no fleet register columns ({exc.diag.message_primary}); "
            "apply the migrations first: python -m common migrate"
        ) from None
    specs: dict[str, TurbineSpec] = {}
    for row in rows:
        record = {
            field: value for (field, _, _), value in zip(_COLUMNS, row, strict=True) if value is not None
        }
        specs[record["turbine_id"]] = _spec_or_partial(record)
    return FleetRegister(turbines=specs)


def _spec_or_partial(record: dict[str, Any]) -> TurbineSpec:
    try:
        return TurbineSpec.model_validate(record)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        event(
            log,
            "fleet register: stored values refused, left out",
            level=logging.WARNING,
            turbine_id=record.get("turbine_id"),
            fields=sorted(bad),
        )
        kept = {k: v for k, v in record.items() if k not in bad or k in ("turbine_id", "site_id")}
        return TurbineSpec.model_construct(**kept) if bad & {"turbine_id", "site_id"} else TurbineSpec(**kept)


__all__ = ["RegisterSchemaMissing", "load_register", "upsert_register"]
