"""HTTP endpoints. Handlers validate, call :mod:`api.repository` and answer with orjson."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field
from starlette.responses import Response

from api import repository as repo
from api.clock import (
    SiteClock,
    default_history_end,
    feed_problems,
    fleet_clock,
    is_stale,
    site_clocks,
)
from api.deps import ApiKeyDep, DailyCacheDep, DbDep, FreshnessDep, MetricsDep, PublisherDep, SettingsDep
from api.errors import OrjsonResponse, query_error
from api.repository import RankQuery, now_utc
from api.routers.interventions import latest_intervention
from api.schemas import (
    ErrorBody,
    FleetSummary,
    History,
    Readiness,
    RunDetail,
    RunPage,
    SortKey,
    SortOrder,
    Supervision,
    SweepAccepted,
    TurbineDetail,
    TurbinePage,
)
from api.settings import ApiSettings
from api.validation import (
    BUCKET_PATTERN,
    SITE_LIST_PATTERN,
    TIER_LIST_PATTERN,
    ParamError,
    as_utc,
    check_bucket_count,
    choose_bucket,
    format_bucket,
    parse_bucket,
    parse_tiers,
    resolve_range,
    split_multi,
)
from common.contracts import IDENTIFIER_PATTERN, SweepCommand
from common.rows import ASSESSMENT_COLUMNS

router = APIRouter()

Responses = dict[int | str, dict[str, Any]]
ERR_404: Responses = {404: {"model": ErrorBody, "description": "Unknown turbine or run"}}
ERR_503: Responses = {503: {"model": ErrorBody, "description": "Database (or Kafka) unavailable"}}
TurbineId = Annotated[
    str,
    Path(
        min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description="Turbine id", examples=["WT-007"]
    ),
]


def _fail(exc: ParamError, value: Any = None) -> Exception:
    return query_error(exc.field, exc.message, value)


def _clocks(settings: ApiSettings, fresh: repo.ScorerFreshness) -> list[SiteClock]:
    """Each site's data clock, mode and staleness cutoff, from the cached snapshot (one source: api.clock)."""
    return site_clocks(
        fresh.site_rows,
        now=now_utc(),
        stale_after=timedelta(minutes=settings.stale_after_minutes),
        historical_after=timedelta(minutes=settings.historical_after_minutes),
    )


# -------------------------------------------------------------------------------------- turbines
@router.get(
    "/v1/turbines",
    response_model=TurbinePage,
    tags=["turbines"],
    summary="Risk ranking of the fleet",
    description=(
        "Turbines ranked by risk, from the scorer's current state. Filter by `tier` (repeat the parameter or "
        "give a comma list) and `site`; sort by `score` (default, descending), `probability`, `ttf` "
        "(ascending by default) or `turbine_id`. Keyset pagination: pass `next_cursor` back as `cursor`. "
        "Turbines never scored come last with tier `unknown` (a turbine imported from a fleet register that "
        "has not sent data yet too). Each item carries the register's metadata and its `sensor_set`. "
        "A turbine is `stale` when its last event is "
        "older than its site's data clock (newest event of the site) minus `COCKPIT_STALE_AFTER_MINUTES`. "
        "`mode` says whether the data is live or `historical` (a site whose newest event is more than 2 h "
        "behind the wall clock: the ranking is as of its last data, `message` says so)."
    ),
    responses={**ERR_503},
)
async def list_turbines(
    db: DbDep,
    settings: SettingsDep,
    freshness: FreshnessDep,
    tier: Annotated[
        list[Annotated[str, Field(pattern=TIER_LIST_PATTERN)]] | None,
        Query(
            description="critical, high, moderate, low, unknown; repeat or comma-separate",
            examples=[["critical", "high"]],
        ),
    ] = None,
    site: Annotated[
        list[Annotated[str, Field(pattern=SITE_LIST_PATTERN)]] | None,
        Query(description="Site id(s); repeat or comma-separate", examples=[["SITE-A"]]),
    ] = None,
    sort: Annotated[SortKey, Query(description="Sort key")] = "score",
    order: Annotated[
        SortOrder | None, Query(description="Default: desc for score/probability, asc otherwise")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="Opaque cursor from next_cursor")
    ] = None,
) -> Response:
    try:
        tiers = parse_tiers(tier)
    except ParamError as exc:
        raise _fail(exc, tier) from None
    sites = split_multi(site)  # each part already follows the identifier rule (SITE_LIST_PATTERN)
    chosen = order or repo.DEFAULT_ORDER[sort]
    fresh = await freshness.get()
    clocks = _clocks(settings, fresh)
    items, next_cursor = await repo.ranking(
        db, RankQuery(tiers, sites, sort, chosen, limit, cursor), clocks=clocks
    )
    return OrjsonResponse(
        {
            "items": items,
            "next_cursor": next_cursor,
            "sort": sort,
            "order": chosen,
            "scorer_stale": fresh.stale,
            **fleet_clock(clocks).as_dict(),
            "generated_at": now_utc(),
        }
    )


def _run(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {**run, "tier_counts": run.get("tier_counts") or {}}


def _sweep_ref(run: dict[str, Any] | None, as_of: datetime | None) -> dict[str, Any] | None:
    """The turbine's last sweep as a reference (which run, when, how it ended), never a second score."""
    if run is None:
        return None
    keys = ("run_id", "trigger", "status", "requested_at", "finished_at", "model_version")
    return {**{k: run[k] for k in keys}, "as_of": as_of}


@router.get(
    "/v1/turbines/{turbine_id}",
    response_model=TurbineDetail,
    tags=["turbines"],
    summary="One turbine: identity, latest measurements, its one current assessment, data quality",
    description=(
        "`assessment` is the turbine's one current assessment (`turbine_state`): stream or sweep, whichever "
        "is newer in event time, with its `source` and `as_of` (data) time. `last_sweep_run` only says which "
        "sweep run last scored the turbine (no score: the current assessment is the only one). `stale` and "
        "`data_as_of` follow the site's data clock. The fleet register's metadata (`manufacturer` ... "
        "`fitted_sensors`, null when not given) and the `sensor_set` that scores it come with it."
    ),
    responses={**ERR_404, **ERR_503},
)
async def get_turbine(
    turbine_id: TurbineId, db: DbDep, settings: SettingsDep, freshness: FreshnessDep
) -> Response:
    found = await repo.turbine_detail(db, turbine_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"turbine {turbine_id!r} not found")
    r, run = found["row"], found["run"]
    fresh = await freshness.get()
    clock = next((c for c in _clocks(settings, fresh) if c.site_id == r["site_id"]), None)
    last = r["last_event_time"]
    body: dict[str, Any] = {
        "turbine_id": r["turbine_id"],
        "site_id": r["site_id"],
        "rated_power_kw": r["rated_power_kw"],
        "commissioned_on": r["commissioned_on"].isoformat() if r["commissioned_on"] else None,
        "manufacturer": r["manufacturer"],
        "model": r["model"],
        "rotor_diameter_m": r["rotor_diameter_m"],
        "hub_height_m": r["hub_height_m"],
        "latitude": r["latitude"],
        "longitude": r["longitude"],
        "commissioning_date": r["commissioned_on"],
        "fitted_sensors": r["fitted_sensors"],
        "sensor_set": repo.sensor_set_of(r["fitted_sensors"]),
        "first_seen_at": r["first_seen_at"],
        "last_event_time": last,
        "stale": is_stale(last, clock),
        "site_mode": clock.mode if clock else "empty",
        "data_as_of": clock.data_as_of if clock else None,
        "measurements": None,
        "assessment": None,
        "data_quality": r["data_quality"] if isinstance(r["data_quality"], dict) else {},
        "last_sweep_run": _sweep_ref(run, r["w_time"]),
    }
    if r["m_event_time"] is not None:
        values = r["m_values"] if isinstance(r["m_values"], dict) else {}
        body["measurements"] = {
            "event_time": r["m_event_time"],
            "status_code": r["m_status_code"],
            "values": values,
        }
    if r["as_of"] is not None:
        body["assessment"] = {
            "source": r["trigger"],
            "as_of": r["as_of"],
            "scored_at": r["scored_at"],
            **{k: r[k] for k in ASSESSMENT_COLUMNS},
            "reasons": r["reasons"] if isinstance(r["reasons"], list) else [],
        }
    body["last_intervention"] = await latest_intervention(db, turbine_id)
    return OrjsonResponse(body)


@router.get(
    "/v1/turbines/{turbine_id}/history",
    response_model=History,
    tags=["turbines"],
    summary="Score, tier and key measurements over time, bucketed",
    description=(
        "Buckets of `bucket` width (`10m`, `1h`, `1d`...; chosen automatically when omitted) between `start` "
        "and `end` (UTC). Without `end`, the window ends at the turbine's last data (`last_data`), not at "
        "the wall clock: a historical turbine has a history. Without `start`, it spans `days` (default 30) "
        "before `end`. Only buckets holding data are returned: two consecutive points more than "
        "`bucket_seconds` apart have a gap between them (the web chart breaks its line there). Score "
        "rows stamped after the site's data clock (wall-clock sweep rows of an older scorer) are left "
        "out. Range at most `COCKPIT_HISTORY_MAX_DAYS` days and 5000 buckets."
    ),
    responses={**ERR_404, **ERR_503},
)
async def get_history(
    turbine_id: TurbineId,
    db: DbDep,
    settings: SettingsDep,
    start: Annotated[datetime | None, Query(description="Inclusive start (ISO 8601)")] = None,
    end: Annotated[
        datetime | None, Query(description="Exclusive end (ISO 8601); default: just after the last data")
    ] = None,
    days: Annotated[
        int | None, Query(ge=1, le=3650, description="Span when `start` is omitted (default 30)")
    ] = None,
    bucket: Annotated[
        str | None, Query(max_length=16, pattern=BUCKET_PATTERN, description="Bucket width", examples=["1h"])
    ] = None,
) -> Response:
    bounds = await repo.history_bounds(db, turbine_id)
    if bounds is None:
        raise HTTPException(status_code=404, detail=f"turbine {turbine_id!r} not found")
    last_data, site_clock = bounds
    span = timedelta(days=days or 30)
    try:
        if end is None:
            end = default_history_end(last_data, now_utc())
            if start is not None and as_utc(start) >= end:  # a start after the last data: look forward
                end = as_utc(start) + span
        start_utc, end_utc = resolve_range(
            start, end, default_span=span, max_span=timedelta(days=settings.history_max_days)
        )
        size = parse_bucket(bucket) if bucket is not None else choose_bucket(end_utc - start_utc)
        check_bucket_count(start_utc, end_utc, size)
    except ParamError as exc:
        raise _fail(exc) from None
    except OverflowError as exc:
        raise _fail(ParamError("start", f"time out of range: {exc}")) from None
    ceiling = site_clock + timedelta(minutes=settings.stale_after_minutes) if site_clock else None
    timescale = await db.detect_timescale()
    scores, telemetry = await repo.history(db, turbine_id, start_utc, end_utc, size, timescale, ceiling)
    return OrjsonResponse(
        {
            "turbine_id": turbine_id,
            "start": start_utc,
            "end": end_utc,
            "last_data": last_data,
            "bucket": format_bucket(size),
            "bucket_seconds": int(size.total_seconds()),
            "scores": orjson.Fragment(scores),
            "telemetry": orjson.Fragment(telemetry),
        }
    )


# -------------------------------------------------------------------------------------- fleet
@router.get(
    "/v1/fleet/summary",
    response_model=FleetSummary,
    tags=["fleet"],
    summary="Counts per tier now and per day, stale share, last sweep",
    description=(
        "`tiers`: current tier of every turbine (never scored = `unknown`). `daily`: per UTC day, how many "
        "turbines reached each tier (worst assessment of the day), from `score_history`; reused for "
        "`COCKPIT_SUMMARY_CACHE_SECONDS`. `stale` counts turbines behind their site's data clock; `mode`, "
        "`data_as_of`, `message` and `sites` say whether the data is live or historical."
    ),
    responses={**ERR_503},
)
async def fleet_summary(
    db: DbDep,
    daily_cache: DailyCacheDep,
    settings: SettingsDep,
    freshness: FreshnessDep,
    days: Annotated[int, Query(ge=1, le=365, description="Days of daily counts")] = 14,
) -> Response:
    fresh = await freshness.get()
    clocks = _clocks(settings, fresh)
    counts = await repo.tier_counts(db, clocks)
    timescale = await db.detect_timescale()
    since, until = _day_window(days, clocks)
    daily = await repo.daily_tiers(db, since, timescale, cache=daily_cache, end=until)
    sweep = await repo.last_sweep(db)
    total = sum(c[0] for c in counts.values())
    stale = sum(c[1] for c in counts.values())
    return OrjsonResponse(
        {
            "turbines": total,
            "tiers": {t: c[0] for t, c in counts.items()},
            "stale": stale,
            "stale_share": (stale / total) if total else 0.0,
            "scorer_stale": fresh.stale,
            **fleet_clock(clocks).as_dict(),
            "daily": daily,
            "last_sweep": _run(sweep),
            "generated_at": now_utc(),
        }
    )


def _day_window(days: int, clocks: list[SiteClock]) -> tuple[datetime, datetime]:
    """[start of the first day, end of the last day): the last day is today for a live fleet, the day of the
    newest data for a historical one (its per-day counts are then about its data, not empty wall-clock days).
    """
    fleet = fleet_clock(clocks)
    last = fleet.data_as_of if fleet.mode == "historical" and fleet.data_as_of else now_utc()
    day = last.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=days - 1), day + timedelta(days=1)


def _sweep_problem(sweep: dict[str, Any] | None, settings: ApiSettings) -> str | None:
    """The daily sweep is overdue (no success within COCKPIT_SWEEP_MAX_AGE_HOURS), in words."""
    if sweep is None or sweep["finished_at"] is None:
        return "sweep: no successful sweep recorded"
    age_h = (now_utc() - sweep["finished_at"]).total_seconds() / 3600
    if age_h <= settings.sweep_max_age_hours:
        return None
    return f"sweep: last successful sweep {age_h:.1f} h ago (limit {settings.sweep_max_age_hours:g} h)"


@router.get(
    "/v1/supervision",
    response_model=Supervision,
    tags=["fleet"],
    summary="Scorer heartbeats (readiness, events/min, lag), data feeds, last sweep, high/critical per day",
    description=(
        "`scorer_ready`/`scorer_status`: from the heartbeats' own readiness (`ready`, `problems`, "
        "`partitions` written by each worker): `not ready: <first problem>` when a live worker says so. "
        "`problems`: what needs a look, in words: the scorer's state, then each site whose feed is silent "
        "(`no data for N min`) or historical."
    ),
    responses={**ERR_503},
)
async def supervision(
    db: DbDep,
    daily_cache: DailyCacheDep,
    settings: SettingsDep,
    freshness: FreshnessDep,
    days: Annotated[int, Query(ge=1, le=90, description="Days of high/critical counts")] = 7,
) -> Response:
    fresh = await freshness.get(fresh=True)
    clocks = _clocks(settings, fresh)
    since, until = _day_window(days, clocks)
    timescale = await db.detect_timescale()
    daily, sweep, (batches, errors) = await asyncio.gather(
        repo.daily_tiers(db, since, timescale, ("critical", "high"), cache=daily_cache, end=until),
        repo.last_sweep(db),
        repo.log_last_hour(db),
    )
    problems = [] if fresh.ready and not fresh.stale else [f"scorer: {fresh.reason}"]
    problems += feed_problems(clocks, stale_after=timedelta(minutes=settings.stale_after_minutes))
    if (sweep_problem := _sweep_problem(await repo.last_sweep(db, succeeded=True), settings)) is not None:
        problems.append(sweep_problem)
    drift = drift_section(await repo.feature_drift(db))
    if drift["status"] == "drift":
        problems.append(f"feature drift: {drift['detail']}")
    return OrjsonResponse(
        {
            "heartbeats": fresh.heartbeats,
            "scorer_ready": fresh.ready,
            "scorer_status": fresh.reason,
            "data": fleet_clock(clocks).as_dict(),
            "problems": problems,
            "events_per_minute": sum(
                h["events_per_minute"] for h in fresh.heartbeats if h["age_seconds"] <= freshness.max_age
            ),
            "max_lag_seconds": fresh.max_lag_seconds,
            "scorer_stale": fresh.stale,
            "last_sweep": _run(sweep),
            "high_critical_daily": daily,
            "batches_last_hour": batches,
            "errors_last_hour": errors,
            "generated_at": now_utc(),
            "drift": drift,
        }
    )


#: Worst first: the section's status is the worst of the workers' latest runs.
_DRIFT_ORDER = ("drift", "moderate", "not_available", "insufficient_data", "ok")


def drift_section(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``drift`` of /v1/supervision from the workers' latest ``feature_drift`` runs (scorer/drift.py)."""
    if not rows:
        return {"status": "never_computed", "detail": "no drift run in the last day", "runs": []}
    runs = [
        {k: r[k] for k in ("worker_id", "computed_at", "model_version", "status", "detail", "window_rows")}
        | {"sites": (r["summary"] or {}).get("sites", [])}
        for r in rows
    ]
    worst = min(runs, key=lambda r: _DRIFT_ORDER.index(r["status"]))
    detail = worst["detail"] if len(runs) == 1 else f"{worst['worker_id']}: {worst['detail']}"
    return {"status": worst["status"], "detail": detail, "runs": runs}


# -------------------------------------------------------------------------------------- runs
@router.get(
    "/v1/runs",
    response_model=RunPage,
    tags=["runs"],
    summary="Sweep runs, newest first",
    responses={**ERR_503},
)
async def list_runs(
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    rows, next_cursor = await repo.runs_page(db, limit, cursor)
    return OrjsonResponse({"items": [_run(r) for r in rows], "next_cursor": next_cursor})


@router.get(
    "/v1/runs/{run_id}",
    response_model=RunDetail,
    tags=["runs"],
    summary="One sweep run with its statistics",
    responses={**ERR_404, **ERR_503},
)
async def get_run(run_id: uuid.UUID, db: DbDep) -> Response:
    found = await repo.run_detail(db, str(run_id))
    if found is None:
        raise HTTPException(status_code=404, detail=f"run {run_id} not found")
    found["run"] = _run(found["run"])
    return OrjsonResponse(found)


@router.post(
    "/v1/sweeps",
    response_model=SweepAccepted,
    status_code=202,
    tags=["runs"],
    summary="Ask the scorer for a full-fleet sweep",
    description=(
        "Publishes a `SweepCommand` with a fresh run id on the command topic (acks=all) and returns at once. "
        "The scorer creates the run; follow `link`. Requires the `X-API-Key` header."
    ),
    responses={
        401: {"model": ErrorBody, "description": "Missing or wrong X-API-Key"},
        503: {"model": ErrorBody, "description": "Sweeps disabled (no key configured) or Kafka unavailable"},
    },
)
async def trigger_sweep(_: ApiKeyDep, publisher: PublisherDep) -> Response:
    command = SweepCommand(run_id=uuid.uuid4(), requested_at=datetime.now(UTC), requested_by="api")
    await run_in_threadpool(publisher.publish, command)
    link = f"/v1/runs/{command.run_id}"
    return OrjsonResponse(
        {"run_id": command.run_id, "status": "requested", "link": link, "requested_at": command.requested_at},
        status_code=202,
        headers={"Location": link},
    )


# -------------------------------------------------------------------------------------- operations
@router.get("/healthz", tags=["operations"], summary="Process alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["operations"],
    summary="Ready to serve reads: the read-only role reaches the cockpit tables; 503 otherwise",
    description=(
        "Readiness of this API process only: the database answers a read of the cockpit tables as the "
        "API's read-only role. Kafka, the scorer and the sweeps do not make the API unready (the pages "
        "still serve the last scores and say what is wrong): their state is in `/v1/supervision` and the "
        "Prometheus alerts."
    ),
    responses={503: {"model": Readiness, "description": "The database cannot serve reads"}},
)
async def readyz(db: DbDep) -> Response:
    try:
        await db.one("SELECT 1 FROM turbines LIMIT 1")
        checks = {"database": {"ok": True, "detail": "reads answered"}}
    except Exception as exc:
        checks = {"database": {"ok": False, "detail": f"{type(exc).__name__}: {str(exc)[:160]}"}}
    ready = checks["database"]["ok"]
    return OrjsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(db: DbDep, settings: SettingsDep, freshness: FreshnessDep, m: MetricsDep) -> Response:
    """Refresh the fleet gauges with two cheap queries, then expose the registry."""
    try:
        fresh = await freshness.get()
        clocks = _clocks(settings, fresh)
        counts = await repo.tier_counts(db, clocks)
        m.site_data_age.clear()
        for clock in clocks:
            if clock.silent_seconds is not None:
                m.site_data_age.labels(clock.site_id).set(clock.silent_seconds)
        m.scorer_ready.set(1 if fresh.ready else 0)
        sweep = await repo.last_sweep(db, succeeded=True)
        total = sum(c[0] for c in counts.values())
        for tier, (n, _) in counts.items():
            m.turbines.labels(tier).set(n)
        m.stale_share.set(sum(c[1] for c in counts.values()) / total if total else 0.0)
        finished = sweep["finished_at"] if sweep else None
        m.sweep_age.set((now_utc() - finished).total_seconds() if finished else -1)
        m.heartbeat_age.set(fresh.newest_age_seconds if fresh.newest_age_seconds is not None else -1)
        m.db_up.set(1)
    except Exception:
        m.db_up.set(0)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
