"""Create the staging database and its roles if missing; print the writer and reader URLs.

    python deploy/staging/database.py ADMIN_URL DBNAME      (run with a release's Python: needs psycopg)

Why a script of its own: the deploy script (deploy/staging/deploy.sh) is shell; the role and database
checks are SQL with identifiers that must be quoted, which psycopg does properly. Roles and passwords are
the local stack's (``cockpit_writer`` owns the database, ``cockpit_reader`` reads it, password = role
name): the staging deployment runs on the developer's machine, beside the dev cockpit, on its own database.
Prints two lines, ``WRITER=<url>`` and ``READER=<url>``; exit 3 when PostgreSQL is unreachable (the
message names the address), 2 on a bad argument.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROLES = ("cockpit_writer", "cockpit_reader")
DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def url_for(admin_url: str, dbname: str, role: str) -> str:
    """A ``postgresql://`` URL (the form the services' logs redact), same server as the admin URL."""
    params = conninfo_to_dict(admin_url)
    host = str(params.get("host") or "127.0.0.1")
    port = str(params.get("port") or "5432")
    return f"postgresql://{quote(role, safe='')}:{quote(role, safe='')}@{host}:{port}/{quote(dbname)}"


def ensure(admin_url: str, dbname: str) -> tuple[str, str]:
    """Roles, database (owned by the writer), TimescaleDB when available; returns (writer, reader) URLs."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        for role in ROLES:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
                conn.execute(create.format(sql.Identifier(role), sql.Literal(role)))
        conn.execute("ALTER ROLE cockpit_reader SET default_transaction_read_only = on")
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER cockpit_writer").format(sql.Identifier(dbname)))
            print(f"created database {dbname} (owner cockpit_writer)", file=sys.stderr)
    params = conninfo_to_dict(admin_url)
    params["dbname"] = dbname
    with psycopg.connect(make_conninfo(**params), autocommit=True, connect_timeout=10) as conn:  # type: ignore[arg-type]
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("GRANT CREATE ON SCHEMA public TO cockpit_writer")
    return url_for(admin_url, dbname, "cockpit_writer"), url_for(admin_url, dbname, "cockpit_reader")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not DB_NAME.match(argv[1]):
        print("usage: database.py ADMIN_URL DBNAME (DBNAME: lower-case letters, digits, _)", file=sys.stderr)
        return 2
    admin_url, dbname = argv
    try:
        writer, reader = ensure(admin_url, dbname)
    except psycopg.OperationalError as exc:
        params = conninfo_to_dict(admin_url)
        where = f"{params.get('host', '?')}:{params.get('port', '5432')}"
        print(f"PostgreSQL unreachable at {where} (admin URL): {exc}".strip(), file=sys.stderr)
        return 3
    print(f"WRITER={writer}")
    print(f"READER={reader}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
