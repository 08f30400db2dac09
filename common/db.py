"""PostgreSQL access shared by the scorer and the API: connections, migrations, Timescale detection.

Migrations are the numbered ``*.sql`` files of ``common/migrations``. Each is applied once, inside a
transaction, and recorded in ``schema_migrations`` with its checksum. A file whose first line is
``-- requires: timescaledb`` is applied only where that extension is available; elsewhere it is
recorded as skipped, so that the same tables and queries serve plain PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from common.logging import event

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_REQUIRES = re.compile(r"^--\s*requires:\s*(\w+)", re.MULTILINE)


# Column lists of the tables the scorer writes (``ASSESSMENT_COLUMNS``, ``TELEMETRY_AGG_SIGNALS``, ...)
# are generated from the typed rows of ``common.rows``.


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message says where we looked."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql_text: str
    requires: str | None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql_text.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationResult:
    applied: list[str]
    skipped: list[str]
    already: list[str]
    timescale: bool


def redact(url: str) -> str:
    """Hide the password of a libpq URL or ``key=value`` connection string for messages and logs."""
    url = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
    return re.sub(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url, flags=re.IGNORECASE)


def connect(url: str, *, autocommit: bool = False, timeout: float = 5.0) -> psycopg.Connection:
    """Open a connection or raise :class:`DatabaseUnavailable` naming the server we tried."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout)))
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {redact(url)}: {exc}".strip()) from exc


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} must look like 0001_name.sql ({path})")
        text = path.read_text(encoding="utf-8")
        req = _REQUIRES.search(text.split("\n", 1)[0])
        found.append(
            Migration(int(match.group(1)), match.group(2), path, text, req.group(1) if req else None)
        )
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return row is not None


def timescale_installed(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> MigrationResult:
    """Apply pending migrations; safe to run concurrently (advisory lock) and repeatedly."""
    migrations = discover_migrations(directory)
    applied: list[str] = []
    skipped: list[str] = []
    already: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   status text NOT NULL CHECK (status IN ('applied', 'skipped')),
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        conn.execute("SELECT pg_advisory_lock(724311)")
        try:
            timescale = timescale_available(conn)
            done = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT version, checksum, status FROM schema_migrations")
            }
            for mig in migrations:
                label = f"{mig.version:04d}_{mig.name}"
                if mig.version in done:
                    checksum, status = done[mig.version]
                    if checksum != mig.checksum and status == "applied":
                        raise RuntimeError(
                            f"migration {label} changed after it was applied ({mig.path}); "
                            "add a new migration instead"
                        )
                    if not (status == "skipped" and mig.requires == "timescaledb" and timescale):
                        already.append(label)
                        continue
                if mig.requires == "timescaledb" and not timescale:
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, status) "
                        "VALUES (%s, %s, %s, 'skipped') ON CONFLICT (version) DO NOTHING",
                        (mig.version, mig.name, mig.checksum),
                    )
                    skipped.append(label)
                    event(log, "migration skipped: timescaledb extension not available", migration=label)
                    continue
                with conn.transaction():
                    conn.execute(sql.SQL(mig.sql_text))  # type: ignore[call-overload]
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, status) "
                        "VALUES (%s, %s, %s, 'applied') ON CONFLICT (version) DO UPDATE "
                        "SET status = 'applied', checksum = EXCLUDED.checksum, applied_at = now()",
                        (mig.version, mig.name, mig.checksum),
                    )
                applied.append(label)
                event(log, "migration applied", migration=label)
        finally:
            conn.execute("SELECT pg_advisory_unlock(724311)")
    return MigrationResult(applied, skipped, already, timescale)


def grant_reader(url: str, reader_role: str) -> None:
    """Give the read-only API role SELECT on every table (run after migrations)."""
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(reader_role)))
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(reader_role))
        )
