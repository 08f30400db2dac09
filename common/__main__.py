"""``python -m common migrate|topics|fleet``: apply database migrations, create Kafka topics (both
idempotent), import or show the fleet register."""

from __future__ import annotations

from pathlib import Path

import typer

from common.db import DatabaseUnavailable, connect, grant_reader, migrate, redact
from common.fleet import FleetRegister, ordered_sensors
from common.logging import configure_logging
from common.settings import CommonSettings, load_settings

app = typer.Typer(
    add_completion=False,
    help="Shared operations of the cockpit (database migrations, Kafka topics, fleet register).",
)


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


@app.command("topics")
def topics_command(
    timeout: float = typer.Option(
        30.0, min=1.0, help="Give up after this many seconds if Kafka does not answer."
    ),
) -> None:
    """Create the missing Kafka topics (telemetry, dead letters, commands); print each outcome.

    Exit 0 when every topic exists afterwards, 3 when Kafka is unreachable or refuses.
    """
    import logging

    from common.topics import TopicError, cockpit_topics, describe_outcomes, ensure_topics

    settings = load_settings(CommonSettings)
    configure_logging("topics", settings.log_level, settings.log_format)
    # kafka-python logs every failed connection attempt; the one message below says it all.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("common.topics").setLevel(logging.WARNING)  # outcomes are printed below
    specs = cockpit_topics(settings)
    try:
        outcomes = ensure_topics(settings.kafka_bootstrap_servers, specs, timeout_s=timeout)
    except TopicError as exc:
        typer.secho(str(exc), fg="red", err=True)
        typer.secho(
            "Start Kafka (make up) or set COCKPIT_KAFKA_BOOTSTRAP_SERVERS, then run: python -m common topics",
            err=True,
        )
        raise typer.Exit(3) from None
    typer.echo(f"topics on {settings.kafka_bootstrap_servers}:")
    for line in describe_outcomes(outcomes, specs):
        typer.echo(f"  {line}")


fleet_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Fleet register: turbine metadata and fitted sensors (docs/INTERFACES.md, 'Fleet register').",
)
app.add_typer(fleet_app, name="fleet")


@fleet_app.command("import")
def fleet_import_command(
    file: Path = typer.Argument(
        ..., help="Register file: .yaml/.yml or .csv (docs/examples/fleet_register.*)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the file and say what would change; write nothing."
    ),
) -> None:
    """Import a fleet register into COCKPIT_DATABASE_URL (turbines it lists get exactly its metadata).

    Exit 0 when imported (or checked, with --dry-run), 2 when the file is invalid (every problem is
    listed), 3 when PostgreSQL is unreachable, 1 when the database is not migrated.
    """
    from common.fleet import RegisterError, read_register
    from common.fleet_store import RegisterSchemaMissing, upsert_register

    settings = load_settings(CommonSettings)
    configure_logging("fleet", settings.log_level, settings.log_format)
    try:
        register = read_register(file)
    except RegisterError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{file}: {_register_summary(register)}")
    where = redact(settings.database_url)
    try:
        with connect(settings.database_url) as conn:
            counts = upsert_register(conn, register, dry_run=dry_run)
    except DatabaseUnavailable as exc:
        typer.secho(str(exc), fg="red", err=True)
        typer.secho("Start PostgreSQL (make up) or set COCKPIT_DATABASE_URL; nothing was imported.", err=True)
        raise typer.Exit(3) from None
    except RegisterSchemaMissing as exc:
        typer.secho(f"{where}: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    verb = "would insert" if dry_run else "inserted"
    changed = "would update" if dry_run else "updated"
    typer.echo(
        f"{'dry run on' if dry_run else 'imported into'} {where}: {verb} {counts['inserted']}, "
        f"{changed} {counts['updated']}, unchanged {counts['unchanged']}"
        + (" (nothing written)" if dry_run else "")
    )
    if counts["site_changed"]:
        typer.secho(
            f"note: {counts['site_changed']} turbine(s) move to another site than the database had; "
            "telemetry that still names the old site moves them back",
            fg="yellow",
            err=True,
        )


@fleet_app.command("show")
def fleet_show_command(
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Also write the register to this .yaml/.yml/.csv file."
    ),
) -> None:
    """List every turbine of COCKPIT_DATABASE_URL with its register metadata (exit 3 if unreachable)."""
    from common.fleet import RegisterError, write_register
    from common.fleet_store import RegisterSchemaMissing, load_register

    settings = load_settings(CommonSettings)
    configure_logging("fleet", settings.log_level, settings.log_format)
    try:
        with connect(settings.database_url) as conn:
            register = load_register(conn)
    except DatabaseUnavailable as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(3) from None
    except RegisterSchemaMissing as exc:
        typer.secho(f"{redact(settings.database_url)}: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"fleet register on {redact(settings.database_url)}: {_register_summary(register)}")
    for line in _register_table(register):
        typer.echo(line)
    if out is not None:
        try:
            write_register(register, out)
        except (RegisterError, OSError) as exc:
            typer.secho(f"cannot write {out}: {exc}", fg="red", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {len(register)} turbine(s) to {out}")


def _register_summary(register: FleetRegister) -> str:
    specs = register.specs()
    sites = {s.site_id for s in specs}
    declared = sum(1 for s in specs if s.fitted_sensors is not None)
    rated = sum(1 for s in specs if s.rated_power_kw is not None)
    return (
        f"{len(specs)} turbine(s) on {len(sites)} site(s); rated power for {rated}; "
        f"fitted sensors declared for {declared}, not declared (all sensors) for {len(specs) - declared}"
    )


def _register_table(register: FleetRegister) -> list[str]:
    from common.contracts import SIGNALS

    header = (
        "turbine",
        "site",
        "make / model",
        "rated kW",
        "rotor m",
        "hub m",
        "lat",
        "lon",
        "commissioned",
        "sensors",
    )
    rows: list[tuple[str, ...]] = [header]

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for s in register.specs():
        make = " ".join(v for v in (s.manufacturer, s.model) if v) or "-"
        sensors = (
            "all (not declared)"
            if s.fitted_sensors is None
            else f"{len(s.fitted_sensors)}/{len(SIGNALS)}: {','.join(ordered_sensors(s.fitted_sensors))}"
        )
        rows.append(
            (
                s.turbine_id,
                s.site_id,
                make,
                num(s.rated_power_kw, "g"),
                num(s.rotor_diameter_m, "g"),
                num(s.hub_height_m, "g"),
                num(s.latitude, ".4f"),
                num(s.longitude, ".4f"),
                s.commissioning_date.isoformat() if s.commissioning_date else "-",
                sensors,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
