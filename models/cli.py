"""Command line: ``python -m models train|evaluate|promote|rollback|list|ensure-default|calibrate``..."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from models import registry as reg
from models.train import Progress as ProgressFn
from models.train import TrainSettings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train, evaluate and manage risk models.")
console = Console(stderr=True)
#: ``--registry`` of every command; unset, the registry comes from the settings (COCKPIT_REGISTRY_DIR, the
#: scorer's setting too, default ./registry), so ``models train`` then ``scorer worker`` share it.
REGISTRY_HELP = "model registry directory (default: COCKPIT_REGISTRY_DIR, else ./registry)"


def resolve_registry(registry: Path | None) -> Path:
    """The ``--registry`` given, else the settings' ``registry_dir`` (loaded here, not at import)."""
    if registry is not None:
        return registry
    from common.settings import RegistrySettings, load_settings

    return load_settings(RegistrySettings).registry_dir


@contextmanager
def _progress() -> Iterator[ProgressFn]:
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(step: str, frac: float) -> None:
            if step not in tasks:
                for other in tasks.values():  # a new step starts: previous ones are done
                    bar.update(other, completed=100)
                tasks[step] = bar.add_task(step, total=100)
            bar.update(tasks[step], completed=100 * frac)

        yield update
        for t in tasks.values():
            bar.update(t, completed=100)


@contextmanager
def _plain_progress(heartbeat_s: float = 20.0) -> Iterator[ProgressFn]:
    """Progress as plain lines when stderr is not a terminal (rich bars do not render in a log or a pipe).

    Training reports few steps, some of them long: a line every ``heartbeat_s`` says it is still working.
    """
    started = time.monotonic()
    state: dict[str, Any] = {"step": None, "pct": -100, "at": started}
    lock = threading.Lock()
    done = threading.Event()

    def line(text: str) -> None:
        print(f"  {text} (elapsed {time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    def update(step: str, frac: float) -> None:
        pct = max(0, min(100, int(100 * frac)))
        now = time.monotonic()
        with lock:
            if step != state["step"] or pct >= state["pct"] + 10 or now - state["at"] >= heartbeat_s:
                line(f"{step}: {pct}%")
                state.update(step=step, pct=pct, at=now)

    def heartbeat() -> None:
        while not done.wait(heartbeat_s / 4):
            with lock:
                if time.monotonic() - state["at"] >= heartbeat_s:
                    line(f"{state['step'] or 'starting'}: still working, {max(state['pct'], 0)}%")
                    state["at"] = time.monotonic()

    ticker = threading.Thread(target=heartbeat, name="progress-heartbeat", daemon=True)
    ticker.start()
    try:
        yield update
    finally:
        done.set()
        ticker.join(timeout=1)
    line("done")


def _settings(
    turbines: int,
    days: float,
    seed: int,
    holdout_turbines: int,
    holdout_days: float,
    holdout_seed: int,
    every: float,
    threads: int,
) -> TrainSettings:
    return TrainSettings(
        n_turbines=turbines,
        days=days,
        seed=seed,
        holdout_turbines=holdout_turbines,
        holdout_days=holdout_days,
        holdout_seed=holdout_seed,
        sample_every_hours=every,
        threads=threads,
    )


def _print_metrics(metrics: dict) -> None:
    table = Table(title="Hold-out evaluation")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("rule baseline", justify="right")
    for key in (
        "pr_auc",
        "recall_at_precision_0.9",
        "brier",
        "ttf_mae_le14_days",
        "ttf_interval_coverage_le14",
    ):
        m = metrics["model"].get(key)
        b = metrics["baseline"].get(key)
        table.add_row(key, "n/a" if m is None else f"{m:.3f}", "n/a" if b is None else f"{b:.3f}")
    Console().print(table)


@app.command()
def train(
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    turbines: int = typer.Option(20, help="training fleet size"),
    days: float = typer.Option(730.0, help="training history length (days)"),
    seed: int = typer.Option(7),
    holdout_turbines: int = typer.Option(20),
    holdout_days: float = typer.Option(365.0),
    holdout_seed: int = typer.Option(1007, help="must differ from --seed"),
    every: float = typer.Option(2.0, help="feature sampling interval (hours)"),
    threads: int = typer.Option(2, help="numeric threads / feature processes"),
    data: Path | None = typer.Option(
        None, help="training Parquet (telemetry contract) instead of simulating"
    ),
    failures: Path | None = typer.Option(
        None, help="failures Parquet (default <data stem>.failures.parquet)"
    ),
    holdout_data: Path | None = typer.Option(None, help="hold-out Parquet instead of simulating"),
    promote: str = typer.Option("first", help="always | first (only if no production version) | never"),
    history: Path | None = typer.Option(
        None, help="your fleet's history (contract Parquet/CSV, e.g. from `producers convert`)"
    ),
    failure_log: Path | None = typer.Option(
        None, help="your failure log CSV: turbine_id,component,failure_time,repair_time (with --history)"
    ),
) -> None:
    """Train both models, register a version, evaluate on a hold-out fleet, write the model card.

    With --history and --failure-log: train on your own fleet's history and failure log; the hold-out
    is your own data (other turbines, later period).
    """
    registry = resolve_registry(registry)
    from models.pipeline import train_and_register

    if (history is None) != (failure_log is None):
        raise typer.BadParameter(
            "--history and --failure-log go together (without a failure log, `python -m models calibrate "
            "--input HISTORY` fits your fleet's normal behaviour instead)"
        )
    settings = _settings(turbines, days, seed, holdout_turbines, holdout_days, holdout_seed, every, threads)
    if history is not None and failure_log is not None:
        _train_operator(registry, settings, history, failure_log, promote)
        return
    if holdout_seed == seed and holdout_data is None:
        raise typer.BadParameter("--holdout-seed must differ from --seed")
    with _progress() as bar:
        res = train_and_register(
            registry,
            settings,
            data=data,
            failures=failures,
            holdout_data=holdout_data,
            promote_if=promote,
            progress=bar,
        )
    _print_metrics(res.metrics)
    console.print(
        f"version [bold]{res.version}[/bold] in {res.version_dir}; model card {res.model_card}"
        + ("; promoted to production" if res.promoted else "")
    )


def _train_operator(
    registry: Path, settings: TrainSettings, history: Path, failure_log: Path, promote: str
) -> None:
    """``train --history --failure-log``: clear errors (exit 2) for a bad log or too few failures."""
    from models.pipeline import train_from_failure_log
    from models.train import FailureLogError, NotEnoughFailures

    settings.preset = "operator"
    progress = _progress() if console.is_terminal else _plain_progress()
    try:
        with progress as bar:
            res = train_from_failure_log(
                registry, settings, history, failure_log, promote_if=promote, progress=bar
            )
    except (FailureLogError, NotEnoughFailures) as exc:
        from rich.markup import escape

        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    _print_metrics(res.metrics)
    console.print(
        f"version [bold]{res.version}[/bold] in {res.version_dir}; model card {res.model_card}"
        + (
            "; promoted to production"
            if res.promoted
            else f"; promote it with: python -m models promote {res.version} --registry {registry}"
        )
    )


@app.command()
def evaluate(
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    version: str | None = typer.Option(None, help="default: production"),
    holdout_turbines: int = typer.Option(20),
    holdout_days: float = typer.Option(365.0),
    holdout_seed: int = typer.Option(1007),
    data: Path | None = typer.Option(None, help="hold-out Parquet instead of simulating"),
    threads: int = typer.Option(2),
) -> None:
    """Re-evaluate a version on a hold-out fleet; rewrites its model card, plots and metrics."""
    registry = resolve_registry(registry)
    from models.evaluate import evaluate as run_eval
    from models.evaluate import model_card, plot_all
    from models.pipeline import _clean
    from models.train import load_history, simulate

    try:
        bundle = reg.load_version(registry, version) if version else reg.load_production(registry)
    except reg.RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with _progress() as bar:
        preset = bundle.metadata.get("training", {}).get("settings", {}).get("preset", "training")
        hist = load_history(data) if data else simulate(holdout_turbines, holdout_days, holdout_seed, preset)
        res = run_eval(bundle, hist, threads=threads, progress=bar)
    assert bundle.path is not None
    plots = plot_all(res, bundle.path)
    (bundle.path / "model_card.md").write_text(
        model_card(bundle.metadata, res.metrics, plots), encoding="utf-8"
    )
    reg.update_metadata(bundle.path, {"metrics": _clean(res.metrics), "plots": plots})
    _print_metrics(_clean(res.metrics))
    console.print(f"model card {bundle.path / 'model_card.md'}")


GATE_HELP = "gate rules (default: models/config/gate.yaml)"


def _gate_table(decision: Any) -> Table:
    """The gate's decision, one row per figure: candidate, production, tolerance, limit, verdict."""
    table = Table(title=f"Promotion gate: {decision.candidate} vs {decision.production or 'no production'}")
    for col in ("figure", "better", "candidate", "production", "tolerance", "floor/ceiling", "verdict"):
        table.add_column(col)

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.4g}"

    for c in decision.checks:
        verdict = {"pass": "[green]pass[/green]", "fail": "[red]FAIL[/red]"}.get(c.status, c.status)
        table.add_row(
            c.label, c.better, f(c.candidate), f(c.production), f(c.tolerance), f(c.limit), verdict
        )
    return table


def _run_gate(registry: Path, version: str, config_path: Path | None, reference: bool = False) -> Any:
    """Load the rules, judge VERSION, print the table and the failed figures; exits 2 on bad input."""
    from rich.markup import escape

    from models.gate import GateConfigError, GateInputError, gate_version, load_config, reference_figures

    try:
        config = load_config(config_path)
        against = reference_figures(config) if reference else None
        decision = gate_version(registry, version, config, against=against)
    except (GateConfigError, GateInputError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    out = Console()
    if not out.is_terminal:  # CI logs: one line per figure rather than rich's 80-column wrapping
        out = Console(width=140)
    out.print(_gate_table(decision))
    for w in decision.warnings:
        console.print(f"[yellow]note:[/yellow] {escape(w)}", highlight=False)
    for c in decision.failed:
        console.print(f"[red]failed:[/red] {escape(c.reason)}", highlight=False)
    console.print(escape(decision.summary()), highlight=False)
    return decision


@app.command()
def gate(
    version: str = typer.Argument(..., help="candidate version"),
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    config: Path | None = typer.Option(None, "--config", help=GATE_HELP),
    reference: bool = typer.Option(
        False, "--reference", help="compare with the committed ci.reference figures instead of production"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the decision as JSON on stdout"),
) -> None:
    """Print the promotion gate's decision for VERSION without promoting (exit 0 pass, 1 refused)."""
    registry = resolve_registry(registry)
    decision = _run_gate(registry, version, config, reference)
    if as_json:
        print(json.dumps(decision.to_dict(), indent=2))
    raise typer.Exit(0 if decision.passed else 1)


@app.command()
def promote(
    version: str = typer.Argument(...),
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    force: bool = typer.Option(False, "--force", help="promote even if the gate refuses (needs --reason)"),
    reason: str | None = typer.Option(
        None, "--reason", help="why the gate is overridden (kept in the history)"
    ),
    config: Path | None = typer.Option(None, "--config", help=GATE_HELP),
) -> None:
    """Make VERSION the production version after an integrity check and the promotion gate."""
    from models.gate import check_reason, record_decision

    registry = resolve_registry(registry)
    if force:
        try:
            reason = check_reason(reason)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    try:
        reg.load_version(registry, version)
    except reg.RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    decision = _run_gate(registry, version, config)
    # Nothing to protect without another production version (a fresh registry; `train --promote first`
    # promotes its first version the same way): the verdict is printed and recorded, not enforced.
    enforced = decision.production is not None
    if not decision.passed and not force and enforced:
        console.print(
            f"not promoted; to override: python -m models promote {version} --force --reason \"...\""
        )
        record_decision(registry, decision, forced=False)
        raise typer.Exit(1)
    if not decision.passed and not enforced and not force:
        console.print("[yellow]note:[/yellow] no other production version to protect: promoted anyway")
    record_decision(
        registry, decision, forced=force and not decision.passed, reason=reason, enforced=enforced
    )
    try:
        prev = reg.promote(registry, version)
    except reg.RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"production: {version} (was {prev or 'none'})")


@app.command("ci-gate")
def ci_gate(
    workdir: Path | None = typer.Option(None, help="registry directory to train into (default: a temp dir)"),
    config: Path | None = typer.Option(None, "--config", help=GATE_HELP),
) -> None:
    """Train the small "ci" preset of gate.yaml into a temp registry, evaluate, gate it (exit 1 refused).

    A fresh clone has no production model: the candidate is compared with the committed ``ci.reference``
    figures of gate.yaml (the same preset's figures when they were last accepted) and the limits.
    """
    import dataclasses
    import tempfile

    from models.gate import GateConfigError, load_config
    from models.pipeline import train_and_register

    try:
        cfg = load_config(config)
    except GateConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(cfg.ci.train) - known)
    if unknown:
        console.print(f"[red]error:[/red] gate.yaml ci.train: unknown TrainSettings fields {unknown}")
        raise typer.Exit(2)
    settings = TrainSettings(**cfg.ci.train)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="model-gate-") as tmp:
        registry = workdir or Path(tmp)
        started = time.monotonic()
        progress = _progress() if console.is_terminal else _plain_progress()
        with progress as bar:
            res = train_and_register(registry, settings, promote_if="never", progress=bar)
        _print_metrics(res.metrics)
        console.print(f"ci preset trained and evaluated in {time.monotonic() - started:.0f} s: {res.version}")
        decision = _run_gate(registry, res.version, config, reference=True)
    raise typer.Exit(0 if decision.passed else 1)


@app.command()
def rollback(registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP)) -> None:
    """Return production to the previous production version."""
    registry = resolve_registry(registry)
    try:
        target = reg.rollback(registry)
    except reg.RegistryError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"production: {target}")


@app.command("list")
def list_(
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List versions with their hold-out figures; * marks production."""
    registry = resolve_registry(registry)
    rows = reg.list_versions(registry)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Model registry {registry}")
    for col in ("", "version", "created_at", "PR-AUC", "Brier", "TTF MAE (d)"):
        table.add_column(col)
    for r in rows:
        m = (r.get("metrics") or {}).get("model", {})

        def f(key: str, m: dict = m) -> str:
            v = m.get(key)
            return "-" if v is None else f"{v:.3f}"

        table.add_row(
            "*" if r["production"] else "",
            r["version"],
            str(r["created_at"] or "-"),
            f("pr_auc"),
            f("brier"),
            f("ttf_mae_le14_days"),
        )
    Console().print(table)


@app.command("ensure-default")
def ensure_default(
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    threads: int = typer.Option(2),
) -> None:
    """Build and promote a default version unless a loadable production version already exists."""
    registry = resolve_registry(registry)
    from models.pipeline import train_and_register

    try:
        bundle = reg.load_production(registry)
        console.print(f"production version {bundle.version} present and valid; nothing to do")
        return
    except reg.RegistryError as exc:
        console.print(
            f"no usable production model ({exc}); training the default version once with "
            f"{threads} threads (several minutes; 16 min measured on 2 busy cores); progress below"
        )
    settings = TrainSettings(threads=threads)
    progress = _progress() if console.is_terminal else _plain_progress()
    with progress as bar:
        res = train_and_register(registry, settings, promote_if="always", progress=bar)
    console.print(f"production: {res.version}; model card {res.model_card}")


def _read_contract_rows(path: Path) -> Any:
    """Contract rows from a Parquet or CSV file; exits 2 naming the file and the problem."""
    import pandas as pd

    if not path.is_file():
        console.print(f"[red]error:[/red] {path}: input file not found")
        raise typer.Exit(2)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, low_memory=False)
    except Exception as exc:  # pyarrow / parser errors: name the file, do not dump a traceback
        console.print(f"[red]error:[/red] {path}: cannot read contract rows: {type(exc).__name__}: {exc}")
        raise typer.Exit(2) from exc
    console.print(f"[red]error:[/red] {path}: unsupported input type {suffix!r} (use .parquet or .csv)")
    raise typer.Exit(2)


def _indicators_text(names: list[str]) -> str:
    temps = [n for n in names if n.startswith("temp:")]
    rest = [n.replace("_", " ") for n in names if not n.startswith("temp:")]
    return ", ".join(rest) + (f" + {len(temps)} temperature(s)" if temps else "")


@app.command()
def calibrate(
    input_path: Path = typer.Option(..., "--input", "-i", help="contract rows (.parquet or .csv)"),
    register: Path | None = typer.Option(None, "--register", help="fleet register (.yaml/.csv)"),
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    air_density: bool = typer.Option(False, "--air-density/--no-air-density", help="normalise wind speed"),
    promote: bool = typer.Option(True, "--promote/--no-promote", help="make it the production calibration"),
    strict: bool = typer.Option(False, "--strict", help="exit 1 when any turbine is refused"),
) -> None:
    """Fit each turbine's normal behaviour from its own history and store it in the registry."""
    from models.calibration import REQUIREMENTS, CalibrationError, fit_calibration
    from models.calibration_registry import save_calibration

    registry = resolve_registry(registry)
    fleet = None
    if register is not None:
        from common.fleet import RegisterError, read_register

        try:
            fleet = read_register(register)
        except (RegisterError, OSError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    console.print(f"reading {input_path}; needs {REQUIREMENTS}")
    started = time.monotonic()
    frame = _read_contract_rows(input_path)
    progress = _progress() if console.is_terminal else _plain_progress()
    try:
        with progress as bar:
            cal = fit_calibration(frame, fleet, air_density=air_density, source=str(input_path), progress=bar)
    except CalibrationError as exc:
        console.print(f"[red]calibration refused:[/red] {input_path}: {exc}")
        raise typer.Exit(1) from exc
    path = save_calibration(registry, cal, promote=promote)
    elapsed = time.monotonic() - started
    table = Table(title=f"Calibration {cal.version} ({len(frame):,} rows, {elapsed:.1f} s)")
    columns = ("turbine", "sensor set", "days", "normal h", "rated kW", "cut-in / rated m/s", "indicators")
    for col in (*columns, "basis"):
        table.add_column(col)
    for tid, tc in sorted(cal.turbines.items()):
        table.add_row(
            tid,
            str(tc.sensor_set or "none"),
            f"{tc.days:.0f}",
            f"{tc.normal_hours:,.0f}",
            f"{tc.rated_power_kw:,.0f} ({tc.rated_power_source})",
            f"{tc.cut_in_ms:.1f} / {tc.rated_wind_ms:.1f}",
            _indicators_text(list(tc.deviations)),
            "own history" if tc.basis == "own" else tc.basis,
        )
    Console().print(table)
    for tid, tc in sorted(cal.turbines.items()):
        for w in tc.warnings:
            console.print(f"[yellow]warning:[/yellow] {tid}: {w}")
    for w in cal.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    for _tid, why in sorted(cal.refused.items()):
        console.print(f"[red]refused:[/red] {why}")
    console.print(
        f"calibration {cal.version} in {path}"
        + ("; promoted to production" if promote else "")
        + f"; {len(cal.turbines)} turbine(s) calibrated, {len(cal.refused)} refused"
    )
    if strict and cal.refused:
        raise typer.Exit(1)


@app.command("calibrations")
def calibrations(
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List calibrations; * marks production."""
    from models.calibration_registry import list_calibrations

    rows = list_calibrations(resolve_registry(registry))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Calibrations")
    for col in ("", "version", "fitted_at", "data", "turbines", "refused"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            "*" if r["production"] else "",
            r["version"],
            str(r["fitted_at"] or "-"),
            f"{(r['data_start'] or '-')[:10]} to {(r['data_end'] or '-')[:10]}",
            str(r["turbines"]),
            str(r["refused"]),
        )
    Console().print(table)


@app.command()
def backtest(
    registry: Path | None = typer.Option(None, "--registry", "-r", help=REGISTRY_HELP),
    version: str | None = typer.Option(None, help="model version (default: production)"),
    fleet_seed: int = typer.Option(4242, "--fleet-seed", help="simulated hold-out seed (not the training's)"),
    turbines: int = typer.Option(20, help="simulated hold-out fleet size"),
    days: float = typer.Option(365.0, help="simulated hold-out length"),
    scenario: str | None = typer.Option(None, help="replay a bundled scenario instead"),
    history: Path | None = typer.Option(None, help="contract Parquet/CSV history instead of simulating"),
    failure_log: Path | None = typer.Option(
        None, "--failure-log", help="operator failure log CSV (with --history)"
    ),
    batch_minutes: float = typer.Option(240.0, help="event time per replayed batch (= assessment cadence)"),
    goals: Path | None = typer.Option(None, help="goals YAML (default models/config/goals.yaml)"),
    out: Path | None = typer.Option(None, help="also write backtest.json here"),
) -> None:
    """Event-level backtest through the scorer's streaming code: lead times, missed failures and false
    alert episodes per tier, beside the rule baseline and the true-health oracle (simulated data).

    Calls ``scorer.backtest`` lazily inside this function (``models`` never imports ``scorer`` at module
    level). With a registry, backtest.json and backtest_lead_times.png go into the version directory and
    the model card gets its "Event-level backtest" section.
    """
    from common.settings import load_settings
    from models.backtest_metrics import TABLE_HEADER, card_section, load_goals, plot_lead_times, table_rows
    from models.evaluate import model_card
    from scorer.backtest import (
        BacktestInputError,
        history_source,
        run_backtest,
        scenario_source,
        simulated_source,
    )
    from scorer.settings import ScorerSettings

    write_version = registry is not None or version is not None
    registry = resolve_registry(registry)
    if failure_log is not None and history is None:
        console.print("[red]error:[/red] --failure-log needs --history (the telemetry it belongs to)")
        raise typer.Exit(2)
    try:
        bundle = reg.load_version(registry, version) if version else reg.load_production(registry)
        goals_cfg = load_goals(goals)
        if history is not None:
            source = history_source(history, failure_log)
        elif scenario is not None:
            source = scenario_source(scenario)
        else:
            preset = bundle.metadata.get("training", {}).get("settings", {}).get("preset", "training")
            train_seed = bundle.metadata.get("training", {}).get("settings", {}).get("seed")
            if train_seed == fleet_seed:
                console.print(f"[yellow]warning:[/yellow] --fleet-seed {fleet_seed} is the training seed")
            source = simulated_source(fleet_seed, turbines, days, preset)
        console.print(f"backtest of {bundle.version} on {source.description}")
        progress = _progress() if console.is_terminal else _plain_progress()
        with progress as bar:
            run = run_backtest(
                bundle,
                source,
                settings=load_settings(ScorerSettings),
                goals=goals_cfg,
                batch_minutes=batch_minutes,
                progress=bar,
            )
    except (reg.RegistryError, BacktestInputError, ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    report = run.report
    table = Table(
        title=f"Event-level backtest - {report['failures']} failures, "
        f"{report['turbine_years']:.2f} turbine-years"
    )
    for h in TABLE_HEADER:
        table.add_column(h, justify="left" if h in ("source", "tier") else "right")
    for row in table_rows(report):
        table.add_row(*row)
    out_console = Console(width=None if Console().is_terminal else 130)
    out_console.print(table)
    for g in report["goals"]:
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "NOT met")
        value = f"{g['value']:.3f}" if isinstance(g["value"], float) else g["value"] or "n/a"
        out_console.print(f"goal: {g['goal']}: {value} (target {g['target']}) -> {met}")
    text = json.dumps(report, indent=2, default=str)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    if bundle.path is not None and write_version:
        vdir = bundle.path
        (vdir / "backtest.json").write_text(text, encoding="utf-8")
        plot_lead_times(report, vdir / "backtest_lead_times.png")
        summary = {k: v for k, v in report.items() if k != "failures_detail"}
        reg.update_metadata(vdir, {"backtest": summary})
        meta = json.loads((vdir / reg.METADATA).read_text(encoding="utf-8"))
        if meta.get("metrics"):
            card = model_card(meta, meta["metrics"], list(meta.get("plots", [])))
            (vdir / "model_card.md").write_text(card, encoding="utf-8")
        else:
            with (vdir / "model_card.md").open("a", encoding="utf-8") as fh:
                fh.write("\n" + card_section(report, "backtest_lead_times.png"))
        console.print(f"wrote {vdir / 'backtest.json'}, backtest_lead_times.png and the model card")


def main() -> None:
    app()
