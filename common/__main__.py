"""``python -m common migrate``: apply database migrations (one command, idempotent)."""

from __future__ import annotations

import typer

from common.db import DatabaseUnavailable, grant_reader, migrate, redact
from common.logging import configure_logging
from common.settings import CommonSettings, load_settings

app = typer.Typer(add_completion=False, help="Shared operations of the cockpit (database migrations).")


@app.callback()
def _root() -> None:
    """Shared operations of the cockpit."""


@app.command("migrate")
def migrate_command(
    reader_role: str = typer.Option("cockpit_reader", help="Role granted SELECT on every table afterwards."),
) -> None:
    """Apply pending SQL migrations to COCKPIT_DATABASE_URL and grant the read-only role."""
    settings = load_settings(CommonSettings)
    configure_logging("migrate", settings.log_level, settings.log_format)
    try:
        result = migrate(settings.database_url)
        if reader_role:
            grant_reader(settings.database_url, reader_role)
    except DatabaseUnavailable as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(3) from None
    typer.echo(
        f"migrations on {redact(settings.database_url)}: applied={result.applied or '-'} "
        f"skipped={result.skipped or '-'} already={len(result.already)} timescaledb={result.timescale}"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
