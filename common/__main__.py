"""``python -m common migrate|topics``: apply database migrations, create Kafka topics (both idempotent)."""

from __future__ import annotations

import typer

from common.db import DatabaseUnavailable, grant_reader, migrate, redact
from common.logging import configure_logging
from common.settings import CommonSettings, load_settings

app = typer.Typer(
    add_completion=False, help="Shared operations of the cockpit (database migrations, Kafka topics)."
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
