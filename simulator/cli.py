"""Command line: ``python -m simulator export|scenarios|show|register``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.config import ConfigError, FleetConfig, load_fleet_config, parse_fleet_config
from simulator.export import export_history
from simulator.fleet import Fleet
from simulator.scenarios import UnknownScenarioError, list_scenarios, load_scenario

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Wind-fleet SCADA simulator.")
console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def build_config(
    *,
    base: FleetConfig | None,
    turbines: int | None,
    days: float | None,
    turbine_years: float | None,
    seed: int | None,
    preset: str | None,
    period: int | None,
    start: datetime | None,
) -> FleetConfig:
    """Overlay command-line options on a base config; ``--turbine-years`` sets days from the fleet size."""
    data: dict[str, Any] = base.model_dump(exclude_unset=True) if base is not None else {}
    if preset is not None:
        data["preset"] = preset  # preset rates apply wherever the base did not set rates explicitly
    if turbines is not None:
        data["n_turbines"] = turbines
    if seed is not None:
        data["seed"] = seed
    if period is not None:
        data["period_s"] = period
    if start is not None:
        data["start"] = start
    if turbine_years is not None:
        if days is not None:
            raise ConfigError("give either --days or --turbine-years, not both")
        n = int(data.get("n_turbines", FleetConfig.model_fields["n_turbines"].default))
        data["duration_days"] = turbine_years * 365.25 / n
    elif days is not None:
        data["duration_days"] = days
    return parse_fleet_config(data, "command line")


def _row_progress(label: str, quiet: bool) -> Progress:
    """The rows-written progress bar of the export commands (off with --quiet)."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )


def _base_config(config: Path | None, scenario: str | None) -> FleetConfig | None:
    """The fleet configuration the options start from: a config file, a named scenario, or the defaults."""
    if config is not None and scenario is not None:
        raise ConfigError("give either --config or --scenario, not both")
    if config is not None:
        return load_fleet_config(config)
    if scenario is not None:
        return load_scenario(scenario).config
    return None


@app.command()
def export(
    out: Path = typer.Option(Path("data/history.parquet"), "--out", "-o", help="telemetry Parquet file"),
    turbines: int | None = typer.Option(None, "--turbines", "-n", help="fleet size (default 20)"),
    days: float | None = typer.Option(None, "--days", help="simulated days"),
    turbine_years: float | None = typer.Option(
        None, "--turbine-years", help="total turbine-years; sets --days from the fleet size"
    ),
    seed: int | None = typer.Option(None, "--seed"),
    preset: str | None = typer.Option(None, "--preset", help="realistic | training"),
    period: int | None = typer.Option(None, "--period", help="seconds between readings (default 600)"),
    start: datetime | None = typer.Option(None, "--start", help="UTC start, e.g. 2023-01-01"),
    config: Path | None = typer.Option(None, "--config", "-c", help="FleetConfig YAML to start from"),
    scenario: str | None = typer.Option(None, "--scenario", "-s", help="scenario to start from"),
    compression: str = typer.Option("zstd", "--compression"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Write labelled history: telemetry Parquet + failures/sensor-fault ground truth next to it."""
    try:
        if preset is not None and preset not in ("realistic", "training"):
            raise ConfigError(f"--preset must be 'realistic' or 'training', got {preset!r}")
        cfg = build_config(
            base=_base_config(config, scenario),
            turbines=turbines,
            days=days,
            turbine_years=turbine_years,
            seed=seed,
            preset=preset,
            period=period,
            start=start,
        )
    except (ConfigError, UnknownScenarioError) as exc:
        raise _fail(str(exc)) from exc

    total = cfg.n_turbines * cfg.n_steps
    console.print(
        f"simulating {cfg.n_turbines} turbines x {cfg.duration_days:g} days at {cfg.period_s} s "
        f"({total:,} rows, preset {cfg.preset}, seed {cfg.seed})"
    )
    with _row_progress("export", quiet) as progress:
        task = progress.add_task("rows", total=total)
        result = export_history(
            cfg, out, compression=compression, on_progress=lambda n: progress.advance(task, n)
        )
    console.print(
        f"wrote {result.rows:,} rows to {result.telemetry} in {result.seconds:.1f} s "
        f"({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)"
    )
    console.print(f"ground truth: {result.failures}, {result.sensor_faults}, {result.ground_truth_json}")


@app.command("vendor-export")
def vendor_export_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="directory to write scada.csv, metadata.csv, ..."),
    turbines: int = typer.Option(4, "--turbines", "-n", min=2, max=99, help="fleet size (T01..)"),
    days: float = typer.Option(400.0, "--days", min=7.0, max=3660.0, help="days of 10-minute rows"),
    seed: int = typer.Option(7, "--seed", min=0),
    start: datetime = typer.Option(
        datetime(2024, 1, 1), "--start", formats=["%Y-%m-%d"], help="first local day (Europe/Paris)"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Write a vendor-like SCADA export (operational signals, local time, sentinels, DST artefacts, gaps),
    its metadata file, a mapping that imports both, and the ground truth of injected underperformance."""
    from simulator.vendor_export import VendorExportError, fleet_config, plan_faults, vendor_export

    try:
        cfg = fleet_config(turbines, days, seed, start.date())
        plan_faults(turbines, days, seed, cfg.start)
    except (VendorExportError, ConfigError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    total = cfg.n_turbines * cfg.n_steps
    console.print(
        f"vendor export: {turbines} turbines x {days:g} days ({total:,} rows before gaps), seed {seed}"
    )
    with _row_progress("vendor-export", quiet) as progress:
        task = progress.add_task("rows", total=total)
        result = vendor_export(
            out,
            turbines=turbines,
            days=days,
            seed=seed,
            start=start.date(),
            on_progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"wrote {result.rows:,} rows to {result.scada} in {result.seconds:.1f} s "
        f"({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)"
    )
    console.print(f"metadata: {result.metadata}, mapping: {result.mapping}")
    console.print(f"ground truth (injected underperformance): {result.ground_truth}")
    for fault in result.faults:
        console.print(
            f"  {fault.turbine_id} ({fault.vendor_id}) {fault.kind} {fault.magnitude:g} {fault.unit}: "
            f"{fault.start:%Y-%m-%d %H:%M} -> {fault.end:%Y-%m-%d %H:%M} UTC"
        )


@app.command("scenarios")
def scenarios_cmd() -> None:
    """List the bundled incident scenarios."""
    table = Table("name", "turbines", "days", "description")
    for name in list_scenarios():
        sc = load_scenario(name)
        table.add_row(
            name, str(sc.config.n_turbines), f"{sc.config.duration_days:g}", " ".join(sc.description.split())
        )
    Console().print(table)


@app.command()
def show(
    name: str = typer.Argument(..., help="scenario name (see `scenarios`)"),
    head: int = typer.Option(0, "--head", help="also print the first N telemetry rows"),
) -> None:
    """Describe a scenario: configuration, forced incidents and the resulting ground truth."""
    try:
        sc = load_scenario(name)
    except (ConfigError, UnknownScenarioError) as exc:
        raise _fail(str(exc)) from exc
    out = Console()
    out.print(f"[bold]{sc.name}[/bold]: {' '.join(sc.description.split())}")
    out.print(yaml.safe_dump(sc.config.model_dump(mode="json", exclude_defaults=True), sort_keys=False))
    fleet = Fleet(sc.config)
    out.print(fleet.describe())
    truth = fleet.ground_truth()
    for title, frame in (("failures", truth.failures), ("sensor faults", truth.sensor_faults)):
        out.print(f"[bold]{title}[/bold] ({len(frame)})")
        if len(frame):
            out.print(frame.to_string(index=False))
    if head > 0:
        out.print(fleet.to_frame().head(head).to_string(index=False))


@app.command("register")
def register_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="register file to write: .yaml/.yml or .csv"),
    turbines: int | None = typer.Option(None, "--turbines", "-n", help="fleet size (default 20)"),
    seed: int | None = typer.Option(None, "--seed"),
    config: Path | None = typer.Option(None, "--config", "-c", help="FleetConfig YAML to start from"),
    scenario: str | None = typer.Option(None, "--scenario", "-s", help="scenario to start from"),
) -> None:
    """Write the simulated fleet's register (ids, sites, rated power, rotor, commissioning, all sensors).

    Import it with ``python -m common fleet import FILE``; use the same --turbines/--seed/--config as the
    producer so the ids match.
    """
    from common.fleet import RegisterError, write_register
    from simulator.register import fleet_register

    try:
        cfg = build_config(
            base=_base_config(config, scenario),
            turbines=turbines,
            days=None,
            turbine_years=None,
            seed=seed,
            preset=None,
            period=None,
            start=None,
        )
        register = fleet_register(cfg)
        write_register(register, out)
    except (ConfigError, UnknownScenarioError, RegisterError) as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc}") from exc
    sites = len({spec.site_id for spec in register.turbines.values()})
    console.print(
        f"wrote the register of {len(register)} simulated turbines on {sites} site(s) to {out}",
        soft_wrap=True,
    )
    console.print(f"import it with: python -m common fleet import {out}", soft_wrap=True)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "build_config", "main"]
