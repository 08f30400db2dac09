"""``python -m scorer worker``: build settings, then the app, then run faust's worker."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, help="Streaming risk scorer (faust worker).")


@app.callback()
def _root() -> None:
    """Streaming risk scorer."""


@app.command()
def worker(
    web_port: int | None = typer.Option(None, help="Override COCKPIT_WEB_PORT."),
    worker_id: str | None = typer.Option(None, help="Override COCKPIT_WORKER_ID."),
) -> None:
    """Run one scorer worker (several workers with the same consumer group share partitions)."""
    from scorer.app import limit_threads

    limit_threads()
    import faust

    from common.logging import configure_logging
    from common.settings import load_settings
    from scorer.app import create_app
    from scorer.settings import ScorerSettings

    overrides = {k: v for k, v in {"web_port": web_port, "worker_id": worker_id}.items() if v is not None}
    settings = load_settings(ScorerSettings, **overrides)
    configure_logging("scorer", settings.log_level, settings.log_format)
    faust_app = create_app(settings)
    faust.Worker(
        faust_app,
        loglevel=settings.log_level,
        override_logging=False,
        quiet=True,
    ).execute_from_commandline()


def main() -> None:
    app()
