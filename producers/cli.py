"""``python -m producers <mode>``: publish telemetry to Kafka.

Modes: ``live``, ``accelerated --speed N`` (alias ``simulate``), ``backfill``, ``scenario NAME``,
``replay FILE --mapping M.yaml``; ``scenarios`` lists the named scenarios. Ctrl-C / SIGTERM stop reading
new records, flush what was accepted, print the summary and exit 0. Without Kafka: ``convert`` (a SCADA
export to contract rows in Parquet/CSV) and ``register`` (its metadata file to a fleet register).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from common.contracts import DEFAULT_MIN_EVENT_TIME
from common.logging import configure_logging, event
from common.settings import load_settings
from producers.pacing import AcceleratedClock, RateLimiter
from producers.settings import ProducerSettings

log = logging.getLogger("producers")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Publish turbine telemetry (TelemetryEvent v1, key = turbine_id) to Kafka.",
)

EXIT_OK, EXIT_SEND_FAILED, EXIT_BAD_INPUT, EXIT_KAFKA_UNAVAILABLE = 0, 1, 2, 3

# Options shared by every publishing command (each overrides the COCKPIT_* setting of the same name).
TopicOpt = Annotated[str | None, typer.Option("--topic", help="Target topic [COCKPIT_TELEMETRY_TOPIC].")]
BootstrapOpt = Annotated[
    str | None, typer.Option("--bootstrap-servers", help="Kafka brokers [COCKPIT_KAFKA_BOOTSTRAP_SERVERS].")
]
PartitionsOpt = Annotated[
    int | None,
    typer.Option("--partitions", min=1, help="Partitions if the topic is created [COCKPIT_PARTITIONS]."),
]
MetricsOpt = Annotated[
    int | None,
    typer.Option("--metrics-port", min=1, max=65535, help="Serve Prometheus /metrics on this port."),
]
RateOpt = Annotated[
    float | None, typer.Option("--rate", min=0.001, help="Limit to this many events/s [COCKPIT_RATE_LIMIT].")
]
TurbinesOpt = Annotated[int | None, typer.Option("--turbines", min=1, help="Fleet size (default 20).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, help="Simulator seed.")]
FleetOpt = Annotated[
    Path | None,
    typer.Option("--fleet-config", exists=True, dir_okay=False, help="Simulator FleetConfig YAML."),
]


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time (e.g. 2024-03-01T00:00:00Z)", param_hint=name
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if parsed < DEFAULT_MIN_EVENT_TIME:
        raise typer.BadParameter(
            f"{value!r} is before {DEFAULT_MIN_EVENT_TIME:%Y-%m-%d}, "
            "the oldest event time the scorer accepts",
            param_hint=name,
        )
    return parsed


def _settings(
    topic: str | None,
    bootstrap: str | None,
    partitions: int | None,
    metrics_port: int | None,
    rate: float | None,
) -> ProducerSettings:
    """Load settings once; CLI flags override the environment."""
    overrides: dict[str, Any] = {}
    if topic:
        overrides["telemetry_topic"] = topic
    if bootstrap:
        overrides["kafka_bootstrap_servers"] = bootstrap
    if partitions:
        overrides["partitions"] = partitions
    if metrics_port:
        overrides["metrics_port"] = metrics_port
    if rate:
        overrides["rate_limit"] = rate
    settings = load_settings(ProducerSettings, **overrides)
    configure_logging("producer", settings.log_level, settings.log_format)
    return settings


def run_publish(
    settings: ProducerSettings,
    mode: str,
    records: Iterable[Mapping[str, Any]],
    *,
    total: int | None,
    bulk: bool,
    clock: AcceleratedClock | None = None,
    source: Any = None,
) -> int:
    """Create the topic, publish ``records`` until done or signalled, flush, report; returns the exit code."""
    from kafka.errors import KafkaError

    from producers.kafka_io import build_producer, ensure_topic
    from producers.metrics import ProducerMetrics
    from producers.progress import Reporter, print_summary
    from producers.publisher import Publisher, RunStats

    topic = settings.telemetry_topic
    stats = RunStats(mode=mode, topic=topic, total=total)
    if source is not None:  # the file source's counters are shown live
        stats.rejected = source.rejected
        stats.reject_examples = source.examples
    # Signals first: a Ctrl-C during start-up also ends in a clean (empty) flush, not a traceback.
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # second Ctrl-C during the flush: give up now, loudly
            sys.stderr.write("second interrupt: exiting without waiting for the flush\n")
            os._exit(130)
        stats.stopped_by = signal.Signals(signum).name
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ensure_topic(settings, topic)
        producer = build_producer(settings, bulk=bulk)
    except KafkaError as exc:
        _restore(previous)
        return _kafka_unavailable(settings, exc)

    metrics = ProducerMetrics(mode)
    if settings.metrics_port:
        try:
            metrics.serve(settings.metrics_port, settings.metrics_addr)
        except OSError as exc:
            typer.secho(f"cannot serve metrics on port {settings.metrics_port}: {exc}", fg="red", err=True)
            producer.close(timeout=5)
            _restore(previous)
            return EXIT_BAD_INPUT
        event(log, "metrics served", port=settings.metrics_port, addr=settings.metrics_addr)

    limiter = None
    if settings.rate_limit:
        limiter = RateLimiter(settings.rate_limit, sleep=stop.wait)
    publisher = Publisher(
        producer, topic, stats, max_pending=settings.max_pending, latency_observer=metrics.latency.observe
    )
    event(
        log,
        "publishing",
        mode=mode,
        topic=topic,
        total=total,
        bulk=bulk,
        speed=clock.speed if clock else None,
        rate_limit=settings.rate_limit,
    )
    try:
        with Reporter(stats, interval_s=settings.progress_interval_s, metrics=metrics):
            try:
                publisher.publish(records, stop, clock=clock, limiter=limiter)
            except Exception as exc:  # a broken source or send: stop, but flush what was accepted
                stats.errors[f"aborted: {type(exc).__name__}"] += 1
                event(log, "publishing aborted", logging.ERROR, error=repr(exc), accepted=stats.accepted)
            finally:
                if source is not None:
                    stats.rows_read = source.rows_read
                if stats.stopped_by:
                    event(
                        log,
                        "stop requested: flushing accepted events",
                        signal=stats.stopped_by,
                        pending=stats.pending,
                    )
                publisher.finish(settings.flush_timeout_s)
    finally:
        _restore(previous)
    print_summary(stats)
    return EXIT_OK if stats.failed == 0 and not stats.errors else EXIT_SEND_FAILED


def _kafka_unavailable(settings: ProducerSettings, exc: Exception) -> int:
    typer.secho(f"Kafka unavailable at {settings.kafka_bootstrap_servers}: {exc!r}", fg="red", err=True)
    return EXIT_KAFKA_UNAVAILABLE


def _restore(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


# ------------------------------------------------------------------------------------------ modes
@app.command()
def live(
    turbines: TurbinesOpt = None,
    seed: SeedOpt = None,
    fleet_config_path: FleetOpt = None,
    days: Annotated[
        float, typer.Option("--days", min=0.01, help="How long to run (simulated = real).")
    ] = 365.0,
    topic: TopicOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    partitions: PartitionsOpt = None,
    metrics_port: MetricsOpt = None,
) -> None:
    """Real time: the simulated clock follows the wall clock from now (one reading per turbine per period)."""
    from producers.sources import expected_count, fleet_config, floor_time
    from simulator.fleet import Fleet

    settings = _settings(topic, bootstrap_servers, partitions, metrics_port, None)
    base = fleet_config(fleet_config_path, turbines=turbines, seed=seed)
    start = floor_time(datetime.now(UTC), base.period_s)
    config = fleet_config(fleet_config_path, turbines=turbines, seed=seed, start=start, duration_days=days)
    clock = AcceleratedClock(1.0, start, start.timestamp(), not_before_event_time=True)
    records = Fleet(config).iter_records()
    _exit(run_publish(settings, "live", records, total=expected_count(config), bulk=False, clock=clock))


def _accelerated(
    mode: str,
    speed: float,
    start: str | None,
    days: float,
    follow: bool,
    turbines: int | None,
    seed: int | None,
    fleet_path: Path | None,
    settings: ProducerSettings,
    resume: bool = True,
) -> int:
    from kafka.errors import KafkaError

    from producers.sources import expected_count, fleet_config, floor_time
    from simulator.fleet import Fleet

    base = fleet_config(fleet_path, turbines=turbines, seed=seed)
    explicit = _parse_time(start, "--start")
    if explicit is not None:
        begin = floor_time(explicit, base.period_s)
        end = begin + timedelta(days=days)
    else:
        end = floor_time(datetime.now(UTC) - timedelta(days=days), base.period_s) + timedelta(days=days)
        begin = end - timedelta(days=days)
        if resume:  # a resumed run keeps the window's end (now) and only skips what is already published
            try:
                begin = _resume_start(settings, base.turbine_ids, days, base.period_s)
            except KafkaError as exc:
                return _kafka_unavailable(settings, exc)
    span_days = (end - begin).total_seconds() / 86_400
    if not follow and span_days * 86_400 < base.period_s:
        typer.echo(f"nothing to publish: the topic already holds this fleet's events up to {end.isoformat()}")
        return EXIT_OK
    horizon = max(span_days, 0.0) + (365.0 if follow else 0.0)
    config = fleet_config(fleet_path, turbines=turbines, seed=seed, start=begin, duration_days=horizon)
    clock = AcceleratedClock(speed, begin, not_before_event_time=True)
    total = None if follow else expected_count(config)
    return run_publish(settings, mode, Fleet(config).iter_records(), total=total, bulk=False, clock=clock)


def _resume_start(settings: ProducerSettings, turbine_ids: list[str], days: float, period_s: int) -> datetime:
    """Start right after this fleet's newest event already in the topic (see ``producers.resume``)."""
    from producers.resume import choose_start, newest_event_time

    topic = settings.telemetry_topic
    newest = newest_event_time(settings.kafka_bootstrap_servers, topic, turbine_ids)  # KafkaError: caller
    decision = choose_start(newest, now=datetime.now(UTC), days=days, period_s=period_s)
    when = decision.start.isoformat().replace("+00:00", "Z")
    if decision.resumed:
        event(log, "resuming at", start=when, topic=topic, reason=decision.reason)
        typer.echo(f"resuming at {when} ({decision.reason}; topic {topic})")
    else:
        event(log, "starting fresh", start=when, topic=topic, reason=decision.reason)
        typer.echo(f"starting at {when} ({decision.reason}; topic {topic})")
    return decision.start


SpeedOpt = Annotated[
    float, typer.Option("--speed", min=0.001, help="Time compression: 600 = 10 min per second.")
]
StartOpt = Annotated[
    str | None, typer.Option("--start", help="Simulated start (ISO-8601, UTC); default: now minus --days.")
]
DaysOpt = Annotated[float, typer.Option("--days", min=0.01, help="Simulated days to publish.")]
FollowOpt = Annotated[
    bool, typer.Option("--follow/--no-follow", help="After catching up with now, continue in real time.")
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume/--no-resume",
        help="Without --start: continue right after this fleet's newest event in the topic "
        "(if within --days), else start at now minus --days.",
    ),
]


@app.command()
def accelerated(
    speed: SpeedOpt = 600.0,
    start: StartOpt = None,
    days: DaysOpt = 7.0,
    follow: FollowOpt = False,
    resume: ResumeOpt = True,
    turbines: TurbinesOpt = None,
    seed: SeedOpt = None,
    fleet_config_path: FleetOpt = None,
    topic: TopicOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    partitions: PartitionsOpt = None,
    metrics_port: MetricsOpt = None,
) -> None:
    """Time compression xN of the default (or given) fleet; events are never published before their time."""
    settings = _settings(topic, bootstrap_servers, partitions, metrics_port, None)
    _exit(
        _accelerated(
            "accelerated", speed, start, days, follow, turbines, seed, fleet_config_path, settings, resume
        )
    )


@app.command()
def simulate(
    speed: SpeedOpt = 600.0,
    start: StartOpt = None,
    days: DaysOpt = 7.0,
    follow: FollowOpt = True,
    resume: ResumeOpt = True,
    turbines: TurbinesOpt = None,
    seed: SeedOpt = None,
    fleet_config_path: FleetOpt = None,
    topic: TopicOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    partitions: PartitionsOpt = None,
    metrics_port: MetricsOpt = None,
) -> None:
    """Alias of ``accelerated`` (default fleet) that keeps running (``--follow``); used by docker-compose."""
    settings = _settings(topic, bootstrap_servers, partitions, metrics_port, None)
    _exit(
        _accelerated(
            "simulate", speed, start, days, follow, turbines, seed, fleet_config_path, settings, resume
        )
    )


@app.command()
def backfill(
    start: Annotated[str | None, typer.Option("--start", help="First event time (ISO-8601, UTC).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="End (exclusive); default now.")] = None,
    days: Annotated[
        float | None, typer.Option("--days", min=0.01, help="Window length ending at --end.")
    ] = None,
    rate: RateOpt = None,
    turbines: TurbinesOpt = None,
    seed: SeedOpt = None,
    fleet_config_path: FleetOpt = None,
    topic: TopicOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    partitions: PartitionsOpt = None,
    metrics_port: MetricsOpt = None,
) -> None:
    """History as fast as the broker takes it (cap with --rate); give --start [--end] or --days."""
    from producers.sources import expected_count, fleet_config, floor_time
    from simulator.fleet import Fleet

    first = _parse_time(start, "--start")
    last = _parse_time(end, "--end") or datetime.now(UTC)
    if first is not None and days is not None:
        raise typer.BadParameter("give either --start or --days, not both", param_hint="--days")
    if first is None and days is None:
        raise typer.BadParameter("give --start (and optionally --end) or --days", param_hint="--start")
    if last > datetime.now(UTC) + timedelta(minutes=1):
        raise typer.BadParameter(
            "--end is in the future (the scorer rejects future events)", param_hint="--end"
        )
    settings = _settings(topic, bootstrap_servers, partitions, metrics_port, rate)
    base = fleet_config(fleet_config_path, turbines=turbines, seed=seed)
    first = floor_time(first or last - timedelta(days=days or 0), base.period_s)
    span_days = (last - first).total_seconds() / 86_400
    if span_days <= 0:
        raise typer.BadParameter("--start must be before --end", param_hint="--start")
    config = fleet_config(
        fleet_config_path, turbines=turbines, seed=seed, start=first, duration_days=span_days
    )
    records = Fleet(config).iter_records(end=last)
    _exit(run_publish(settings, "backfill", records, total=expected_count(config), bulk=True))


#: ``scenario`` defaults, chosen with the production model (docs/producers.md, "Replaying an incident"):
#: at x3600 (one simulated hour per second) the gearbox scenario's turbine is high after ~2.5 min and
#: critical after ~3.5 min; the failure stays 24 h ahead, so the cockpit's time-to-failure is honest.
SCENARIO_SPEED = 3600.0
SCENARIO_LEAD = "24h"


def _parse_duration(value: str, name: str) -> timedelta:
    """``24h``, ``90m``, ``2d``, ``3600s`` or a bare number of hours."""
    text = value.strip().lower()
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
    factor = units.get(text[-1:])
    number = text[:-1] if factor is not None else text
    try:
        amount = float(number)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a duration (e.g. 24h, 90m, 2d)", param_hint=name
        ) from None
    seconds = amount * (factor or 3600.0)
    if not 0 <= seconds <= 366 * 86_400:
        raise typer.BadParameter(f"{value!r} must be between 0 and 366 days", param_hint=name)
    return timedelta(seconds=seconds)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command()
def scenario(
    name: Annotated[str, typer.Argument(help="Scenario name (see `scenarios`) or a scenario .yaml path.")],
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            min=0.0,
            help="Time compression of the scenario's past (3600 = one simulated hour per second; "
            "0 = as fast as possible).",
        ),
    ] = SCENARIO_SPEED,
    shift_to_now: Annotated[
        bool,
        typer.Option(
            "--shift-to-now",
            help="Move the scenario so that its (first) failure happens --lead after now: the past is "
            "published at --speed, then events follow in real time (never before their time).",
        ),
    ] = False,
    lead: Annotated[
        str,
        typer.Option(
            "--lead", help="With --shift-to-now: how far ahead of now the failure lies (24h, 90m, 2d)."
        ),
    ] = SCENARIO_LEAD,
    id_prefix: Annotated[
        str | None,
        typer.Option(
            "--id-prefix",
            help="Prefix of the published turbine and site ids, so a replay never collides with the live "
            "fleet's WT-... ids. Default: R- (R-WT-003 on R-SITE-A), or R2-, R3-... when the topic already "
            "holds an overlapping replay under R-; '' keeps the scenario's own ids.",
            show_default=False,
        ),
    ] = None,
    rate: RateOpt = None,
    topic: TopicOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    partitions: PartitionsOpt = None,
    metrics_port: MetricsOpt = None,
) -> None:
    """A named scenario under its own ids, accelerated; --shift-to-now puts its failure just ahead."""
    from kafka.errors import KafkaError

    from producers.sources import check_id_prefix, expected_count, plan_scenario, shifted
    from simulator.config import ConfigError
    from simulator.scenarios import UnknownScenarioError, load_scenario

    lead_delta = _parse_duration(lead, "--lead")
    settings = _settings(topic, bootstrap_servers, partitions, metrics_port, rate)
    try:
        scn = load_scenario(name)
    except (UnknownScenarioError, ConfigError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    config = scn.config
    now = datetime.now(UTC)
    if id_prefix is None:
        start = plan_scenario(config, now=now, shift_to_now=shift_to_now, lead=lead_delta, speed=speed).start
        try:
            id_prefix = _free_replay_prefix(settings, config.turbine_ids, start)
        except KafkaError as exc:
            _exit(_kafka_unavailable(settings, exc))
    try:
        check_id_prefix(id_prefix, config.turbine_ids)
        check_id_prefix(id_prefix, ["SITE-" + "A" * 4])  # site ids are SITE-A.. (at most a few letters)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--id-prefix") from None
    now = datetime.now(UTC)  # after the prefix lookup (a topic scan): the printed plan is the real one
    plan = plan_scenario(
        config, now=now, shift_to_now=shift_to_now, lead=lead_delta, speed=speed, id_prefix=id_prefix
    )
    _announce(scn.name, plan, now, speed, shift_to_now, id_prefix, config.turbine_ids)
    records: Iterable[dict[str, Any]] = shifted(scn.fleet().iter_records(), plan.delta, id_prefix=id_prefix)
    clock = AcceleratedClock(speed, plan.start, now.timestamp(), not_before_event_time=shift_to_now)
    code = run_publish(
        settings, f"scenario:{scn.name}", records, total=expected_count(config), bulk=speed == 0, clock=clock
    )
    _exit(code)


def _free_replay_prefix(settings: ProducerSettings, turbine_ids: list[str], start: datetime) -> str:
    """``R-`` unless the topic already holds an overlapping replay under it (then ``R2-``...)."""
    from producers.resume import newest_event_times
    from producers.sources import PREFIX_CANDIDATES, free_prefix

    groups = {prefix: [prefix + tid for tid in turbine_ids] for prefix in PREFIX_CANDIDATES}
    # one read of the topic for every candidate (KafkaError: caller)
    newest = newest_event_times(settings.kafka_bootstrap_servers, settings.telemetry_topic, groups)
    prefix, note = free_prefix(PREFIX_CANDIDATES, newest.__getitem__, start)
    if note:
        event(log, "replay prefix chosen", prefix=prefix, note=note)
        typer.echo(f"using id prefix {prefix}: {note}")
    return prefix


def _announce(
    name: str,
    plan: Any,
    now: datetime,
    speed: float,
    shift_to_now: bool,
    id_prefix: str,
    turbine_ids: list[str],
) -> None:
    """Say, before publishing, which turbines to watch, when their failure happens and where to look."""
    first, last = id_prefix + turbine_ids[0], id_prefix + turbine_ids[-1]
    lines = [f"scenario {name}: turbines {first} .. {last}, events {_utc(plan.start)} -> {_utc(plan.end)}"]
    for tid, mode, when in plan.failures:
        ahead = (when - now).total_seconds() / 3600
        relation = f"in {ahead:.1f} h" if ahead >= 0 else f"{-ahead:.1f} h ago"
        lines.append(f"  incident turbine {tid}: {mode} failure at {_utc(when)} ({relation})")
        lines.append(f"    look at: /v1/turbines/{tid}  (cockpit turbine {tid})")
    if shift_to_now:
        if plan.caught_up_at is not None:
            wait = (plan.caught_up_at - now).total_seconds()
            lines.append(
                f"  the past is published at x{speed:g}; caught up with now at {_utc(plan.caught_up_at)} "
                f"(in {wait / 60:.1f} min), then in real time until {_utc(plan.end)} or Ctrl-C"
            )
        else:
            lines.append(f"  published at x{speed:g}, never before an event's own time")
    for line in lines:
        typer.echo(line)
    event(
        log,
        "scenario plan",
        scenario=name,
        start=plan.start,
        end=plan.end,
        incident_turbines=plan.incident_turbines,
        failures=[{"turbine_id": t, "mode": m, "failure_time": w} for t, m, w in plan.failures],
        caught_up_at=plan.caught_up_at,
        speed=speed,
        id_prefix=id_prefix,
    )


@app.command("scenarios")
def scenarios_command() -> None:
    """List the named scenarios with their size."""
    from simulator.scenarios import list_scenarios, load_scenario

    for name in list_scenarios():
        scn = load_scenario(name)
        cfg = scn.config
        typer.echo(
            f"{name:32} {cfg.n_turbines:>4} turbines {cfg.duration_days:>6g} days  "
            f"{scn.description.strip()[:70]}"
        )


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet SCADA export.")],
    mapping: Annotated[
        Path, typer.Option("--mapping", exists=True, dir_okay=False, help="Column mapping YAML.")
    ],
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", dir_okay=False, help="Write unmappable rows (with reason) here."),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="Map and count only; publish nothing.")] = False,
    speed: Annotated[
        float, typer.Option("--speed", min=0.0, help="Pace by event time (file in time order); 0 = fast.")
    ] = 0.0,
    rate: RateOpt = None,
    topic: TopicOpt = None,
    bootstrap_servers: BootstrapOpt = None,
    partitions: PartitionsOpt = None,
    metrics_port: MetricsOpt = None,
) -> None:
    """Replay a SCADA export through a mapping (columns, units, time zone); bad rows are counted."""
    from producers.mapping import MappingError, load_mapping
    from producers.replay import FileReplay

    settings = _settings(topic, bootstrap_servers, partitions, metrics_port, rate)
    try:
        source = FileReplay(file, load_mapping(mapping), rejects_path=rejects)
    except MappingError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if check:
        from producers.progress import print_summary
        from producers.publisher import RunStats

        stats = RunStats(mode="replay --check", topic="-", rejected=source.rejected)
        stats.reject_examples = source.examples
        stats.accepted = sum(1 for _ in source.iter_records())
        stats.rows_read = source.rows_read
        stats.complete = True
        for line in source.mapping.describe():
            typer.echo(line)
        print_summary(stats)
        _print_import_report(source)
        _exit(EXIT_OK)
    records: Iterator[dict[str, Any]] = source.iter_records()
    clock = None
    if speed > 0:  # pace from the first event's time (peek without materialising the file)
        first = next(records, None)
        if first is not None:
            clock = AcceleratedClock(speed, first["event_time"])
            records = itertools.chain([first], records)
    code = run_publish(settings, "replay", records, total=None, bulk=speed == 0, clock=clock, source=source)
    _print_import_report(source)
    _exit(code)


def _print_import_report(source: Any) -> None:
    """Whole-file warnings with counts (UTC offsets, duplicates, gaps, sentinels, nulled values)."""
    report = source.report
    event(log, "import report", complete=report.complete, **report.as_dict())
    lines = report.lines()
    if lines:
        typer.echo("import report" + ("" if report.complete else " (file not read to its end)") + ":")
        for line in lines:
            typer.echo(f"  {line}")


@app.command()
def convert(
    mapping: Annotated[
        Path, typer.Option("--mapping", exists=True, dir_okay=False, help="Column mapping YAML.")
    ],
    input_file: Annotated[
        Path, typer.Option("--input", exists=True, dir_okay=False, help="CSV or Parquet SCADA export.")
    ],
    out: Annotated[
        Path, typer.Option("--out", dir_okay=False, help="Contract rows: a .parquet or .csv file.")
    ],
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", dir_okay=False, help="Write unmappable rows (with reason) here."),
    ] = None,
) -> None:
    """Convert a SCADA export to contract rows (no Kafka): turbine_id, site_id, event_time (UTC), the
    mapped signals, status_code. Same mapping and checks as `replay`."""
    import time

    from producers.convert import write_contract
    from producers.mapping import MappingError, load_mapping
    from producers.replay import FileReplay

    settings = _settings(None, None, None, None, None)
    if out.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise typer.BadParameter(f"{out}: the output must end in .parquet or .csv", param_hint="--out")
    if out.resolve() == input_file.resolve():
        raise typer.BadParameter(f"{out} is the input file; write the contract elsewhere", param_hint="--out")
    try:
        source = FileReplay(input_file, load_mapping(mapping), rejects_path=rejects)
    except MappingError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    last = [time.monotonic()]

    def progress(rows: int) -> None:
        if time.monotonic() - last[0] >= settings.progress_interval_s:
            last[0] = time.monotonic()
            event(log, "progress", mode="convert", rows_written=rows, rows_read=source.rows_read)

    for line in source.mapping.describe():
        typer.echo(line)
    try:
        result = write_contract(source, out, on_chunk=progress)
    except (MappingError, OSError) as exc:
        typer.secho(f"convert failed: {exc}", fg="red", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    rate = result.rows / result.seconds if result.seconds > 0 else 0.0
    event(
        log,
        "summary",
        mode="convert",
        out=str(result.path),
        rows_read=source.rows_read,
        rows_written=result.rows,
        rejected=sum(source.rejected.values()),
        reject_reasons=dict(source.rejected.most_common()),
        elapsed_s=round(result.seconds, 2),
        rows_per_s=round(rate),
    )
    typer.echo(
        f"wrote {result.rows:,} contract rows to {result.path} from {source.rows_read:,} rows read "
        f"in {result.seconds:.1f} s ({rate:,.0f} rows/s); rejected {sum(source.rejected.values()):,}"
    )
    for reason, count in source.rejected.most_common(10):
        example = (source.examples.get(reason) or [""])[0]
        typer.echo(f"  {reason}: {count:,}" + (f"  e.g. {example}" if example else ""))
    _print_import_report(source)
    _exit(EXIT_OK)


@app.command("register")
def register_command(
    mapping: Annotated[
        Path,
        typer.Option("--mapping", exists=True, dir_okay=False, help="Mapping YAML with a metadata section."),
    ],
    out: Annotated[
        Path, typer.Option("--out", dir_okay=False, help="Fleet register to write (.yaml or .csv).")
    ],
    metadata: Annotated[
        Path | None,
        typer.Option(
            "--metadata",
            exists=True,
            dir_okay=False,
            help="Metadata file (default: the mapping's metadata.file).",
        ),
    ] = None,
) -> None:
    """Turn the vendor's turbine metadata file into a fleet register (`python -m common fleet import`)."""
    from common.fleet import RegisterError, write_register
    from producers.mapping import MappingError, load_mapping
    from producers.metadata import build_register

    _settings(None, None, None, None, None)
    if out.suffix.lower() not in (".yaml", ".yml", ".csv"):
        raise typer.BadParameter(f"{out}: the register must end in .yaml, .yml or .csv", param_hint="--out")
    try:
        result = build_register(load_mapping(mapping), mapping, metadata)
        write_register(result.register, out)
    except (MappingError, RegisterError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    specs = result.register.specs()
    event(log, "register written", out=str(out), source=str(result.source), turbines=len(specs))
    typer.echo(f"wrote {len(specs)} turbine(s) from {result.source} to {out}")
    for spec in specs:
        rated = f"{spec.rated_power_kw:g} kW" if spec.rated_power_kw is not None else "rated power ?"
        sensors = len(spec.fitted_sensors) if spec.fitted_sensors is not None else "all"
        typer.echo(
            f"  {spec.turbine_id} on {spec.site_id}: {spec.model or 'model ?'}, {rated}, {sensors} sensors"
        )
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    _exit(EXIT_OK)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
