"""Every migration parses with PostgreSQL's own parser (libpg_query via pglast), Timescale path included.

The Timescale migration cannot run on plain PostgreSQL (its functions do not exist there); parsing it here
keeps it syntactically exercised on every run, and the integration test applies it where the extension is.
"""

from __future__ import annotations

import pglast
import pglast.visitors
import pytest

from common.db import discover_migrations

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("migration", discover_migrations(), ids=lambda m: m.path.name)
def test_migration_parses(migration) -> None:  # type: ignore[no-untyped-def]
    statements = pglast.parse_sql(migration.sql_text)
    assert statements, f"{migration.path} has no statement"


def _called_functions(sql_text: str) -> list[tuple[str, str | None]]:
    """(function name, first string argument) of every function call in the SQL."""
    found: list[tuple[str, str | None]] = []

    class Calls(pglast.visitors.Visitor):  # type: ignore[misc]
        def visit_FuncCall(self, _ancestors, node) -> None:  # type: ignore[no-untyped-def]
            first = node.args[0] if node.args else None
            literal = getattr(getattr(first, "val", None), "sval", None)
            found.append((node.funcname[-1].sval, literal))

    for statement in pglast.parse_sql(sql_text):
        Calls()(statement)
    return found


def test_timescale_migration_uses_hypertables_compression_and_retention() -> None:
    (timescale,) = [m for m in discover_migrations() if m.requires == "timescaledb"]
    calls = _called_functions(timescale.sql_text)
    by_function: dict[str, set[str | None]] = {}
    for name, table in calls:
        by_function.setdefault(name, set()).add(table)
    assert by_function["create_hypertable"] == {"telemetry_agg", "score_history", "scoring_log"}
    assert by_function["add_compression_policy"] == {"telemetry_agg", "score_history"}
    assert by_function["add_retention_policy"] == {"telemetry_agg", "score_history", "scoring_log"}


def test_fleet_register_migration_only_adds_nullable_columns_to_turbines() -> None:
    """0005 is additive and re-runnable: ADD COLUMN IF NOT EXISTS on `turbines` only, nothing NOT NULL, and
    the commissioning date reuses 0001's `commissioned_on` (no second copy of the same fact)."""
    from pglast import ast, enums

    (register,) = [m for m in discover_migrations() if m.name == "fleet_register"]
    added: list[str] = []
    for raw in pglast.parse_sql(register.sql_text):
        statement = raw.stmt
        if isinstance(statement, ast.CommentStmt):
            continue
        assert isinstance(statement, ast.AlterTableStmt), f"unexpected statement in {register.path}"
        assert statement.relation.relname == "turbines"
        for cmd in statement.cmds:
            assert cmd.missing_ok, "every column is added IF NOT EXISTS"
            column = cmd.def_
            kinds = [getattr(c, "contype", None) for c in column.constraints or ()]
            assert enums.ConstrType.CONSTR_NOTNULL not in kinds, f"{column.colname} must stay nullable"
            added.append(column.colname)
    assert "commissioned_on" not in added and not any("commission" in c for c in added)
    expected = {"manufacturer", "model", "fitted_sensors", "latitude", "longitude", "register_updated_at"}
    assert expected <= set(added)
