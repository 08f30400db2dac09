"""``python -m api serve``: run the API with uvicorn using ``COCKPIT_*`` settings."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help="Cockpit API server.")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: COCKPIT_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: COCKPIT_PORT")] = None,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the API and the web cockpit."""
    import uvicorn

    from api.settings import ApiSettings
    from common.settings import load_settings

    settings = load_settings(ApiSettings)  # fail fast with a clear message before uvicorn starts
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def openapi() -> None:
    """Print the OpenAPI document (no database needed)."""
    import orjson

    from api.app import create_app

    typer.echo(orjson.dumps(create_app().openapi(), option=orjson.OPT_INDENT_2).decode())


@app.command()
def smoke(
    turbine_id: Annotated[str, typer.Option(help="Smoke turbine id (never a fleet id)")] = "SMOKE-WT-001",
    site_id: Annotated[str, typer.Option(help="Site of the smoke turbine")] = "SMOKE-SITE",
    timeout: Annotated[float, typer.Option(min=1, help="Longest wait for the score, in seconds")] = 60.0,
    report: Annotated[str | None, typer.Option(help="Also write the timings as JSON to this file")] = None,
) -> None:
    """Smoke test of a deployment: one event in, one score out through the API (exit 0 ok, 1 failed)."""
    from pathlib import Path

    import orjson

    from api.smoke import EXIT_FAILED, SmokeSettings, check_ids, describe, run_smoke
    from common.settings import load_settings

    try:
        check_ids(turbine_id, site_id)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = load_settings(SmokeSettings)
    result = run_smoke(settings, turbine_id=turbine_id, site_id=site_id, timeout=timeout)
    if report:
        Path(report).write_bytes(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    typer.echo(describe(result), err=not result.ok)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)


if __name__ == "__main__":
    app()
