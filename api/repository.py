"""SQL of the API. Every query is read-only and parameterised.

Averages are not rounded in SQL: numeric rounding cost a third of the history query for 6 % fewer bytes.
Why JSON built in PostgreSQL for the hot paths (ranking rows, history series): the database already
has the values in hand, and handing the text to orjson as a ``Fragment`` avoids building thousands of
Python objects per request.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from api.clock import SiteClock
from api.cursor import CursorError, decode_cursor, encode_cursor, float_key, parse_float_key
from api.db import Database
from common.rows import TELEMETRY_AGG_SIGNALS

TIER_ORDER = ("critical", "high", "moderate", "low", "unknown")
#: Newest event time known for the turbine (the scorer's window or the telemetry table; GREATEST skips nulls).
_LAST_EVENT = "GREATEST(s.last_event_time, t.last_event_time)"
#: Each site's staleness cutoff (its data clock minus the limit), computed once in :mod:`api.clock`.
_CLOCKS = (
    "c AS (SELECT * FROM unnest(%(clock_sites)s::text[], %(clock_cutoffs)s::timestamptz[]) "
    "AS c(site_id, stale_before))"
)
_STALE = f"({_LAST_EVENT} IS NULL OR c.stale_before IS NULL OR {_LAST_EVENT} < c.stale_before)"
_STALE_UNSCORED = (
    "(t.last_event_time IS NULL OR c.stale_before IS NULL OR t.last_event_time < c.stale_before)"
)

DEFAULT_ORDER = {"score": "desc", "probability": "desc", "ttf": "asc", "turbine_id": "asc"}
_SORT_COLUMN = {
    "score": "s.score",
    "probability": "s.probability",
    "ttf": "s.ttf_days",
    "turbine_id": "s.turbine_id",
}

RUN_COLUMNS = (
    "run_id, trigger, status, requested_at, started_at, finished_at, turbines_scored, tier_counts, "
    "model_version, error, duration_ms"
)


def now_utc() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------- register
#: Fleet register fields of a ranking item (``turbines t``), as json_build_object arguments.
_REGISTER_JSON = (
    "'manufacturer', t.manufacturer, 'model', t.model, 'rated_power_kw', t.rated_power_kw, "
    "'rotor_diameter_m', t.rotor_diameter_m, 'hub_height_m', t.hub_height_m, 'latitude', t.latitude, "
    "'longitude', t.longitude, 'commissioning_date', t.commissioned_on, 'fitted_sensors', t.fitted_sensors"
)


@functools.cache
def _sensor_set_rule() -> Callable[[Collection[str] | None], str | None]:
    """``models.sensor_sets.sensor_set_for`` (the one routing rule), imported on first use: it brings numpy
    and pandas (via models.features), which the API does not otherwise load at start-up."""
    from models.sensor_sets import sensor_set_for

    return sensor_set_for


def sensor_set_of(fitted: Collection[str] | None) -> str | None:
    """The model set that scores a turbine with these fitted sensors (None: declared but too few)."""
    return _sensor_set_rule()(fitted)


def with_sensor_set(body: str, fitted: Collection[str] | None) -> orjson.Fragment:
    """A ranking item (JSON object text from json_build_object) with its ``sensor_set`` appended."""
    return orjson.Fragment(f'{body[:-1]},"sensor_set":{orjson.dumps(sensor_set_of(fitted)).decode()}}}')


# ------------------------------------------------------------------------------------------- freshness
def heartbeat_status(details: Any) -> tuple[bool | None, list[str], dict[str, int]]:
    """(ready, problems, partition -> lag) from ``scorer_heartbeats.details``, whatever its vintage.

    Why defensive: older workers wrote only ``partitions``/``ready``; newer ones add ``problems``. ``ready``
    None means the worker did not say.
    """
    if not isinstance(details, dict):
        return None, [], {}
    ready = details.get("ready")
    raw_problems = details.get("problems")
    problems = (
        [str(p)[:300] for p in raw_problems if p is not None][:20] if isinstance(raw_problems, list) else []
    )
    raw_parts = details.get("partitions")
    partitions: dict[str, int] = {}
    if isinstance(raw_parts, dict):
        for key, lag in list(raw_parts.items())[:1024]:
            try:
                partitions[str(key)] = int(lag)
            except (TypeError, ValueError, OverflowError):
                continue
    return (ready if isinstance(ready, bool) else None), problems, partitions


@dataclass
class ScorerFreshness:
    """One snapshot of the scorer heartbeats and of each site's data clock (raw rows)."""

    heartbeats: list[dict[str, Any]]
    fresh_workers: int
    max_lag_seconds: float | None
    newest_age_seconds: float | None
    stale: bool
    reason: str
    ready: bool  # at least one fresh worker and none of the fresh ones says it is not ready
    site_rows: list[tuple[str, datetime | None, int]]


class FreshnessCache:
    """Heartbeats and site data clocks change every few seconds; one small query each per ``ttl`` is
    enough for every request."""

    def __init__(self, db: Database, *, max_age: float, max_lag: float, ttl: float) -> None:
        self.db = db
        self.max_age = max_age
        self.max_lag = max_lag
        self.ttl = ttl
        self._value: ScorerFreshness | None = None
        self._at = 0.0

    async def get(self, *, fresh: bool = False) -> ScorerFreshness:
        if not fresh and self._value is not None and time.monotonic() - self._at < self.ttl:
            return self._value
        rows = await self.db.dicts(
            "SELECT worker_id, updated_at, started_at, model_version, events_per_minute, lag_messages, "
            "lag_seconds, GREATEST(EXTRACT(EPOCH FROM now() - updated_at), 0)::float8 AS age_seconds, "
            "details FROM scorer_heartbeats ORDER BY worker_id"
        )
        site_rows = [
            (str(r[0]), r[1], int(r[2]))
            for r in await self.db.rows(
                "SELECT site_id, max(last_event_time), count(*) FROM turbines "
                "GROUP BY site_id ORDER BY site_id"
            )
        ]
        for r in rows:
            r["ready"], r["problems"], r["partitions"] = heartbeat_status(r.pop("details", None))
        fresh_rows = [r for r in rows if r["age_seconds"] <= self.max_age]
        not_ready = [r for r in fresh_rows if r["ready"] is False]
        max_lag = max((r["lag_seconds"] for r in fresh_rows), default=None)
        newest = min((r["age_seconds"] for r in rows), default=None)
        if not rows:
            stale, reason = True, "no scorer heartbeat recorded"
        elif not fresh_rows:
            stale, reason = (
                True,
                f"newest scorer heartbeat is {newest:.0f} s old (limit {self.max_age:.0f} s)",
            )
        elif not_ready:
            first = not_ready[0]
            why = first["problems"][0] if first["problems"] else "no reason given by the scorer"
            stale, reason = (
                True,
                f"not ready: {why}" + (f" (worker {first['worker_id']})" if len(fresh_rows) > 1 else ""),
            )
        elif max_lag is not None and max_lag > self.max_lag:
            stale, reason = True, f"scorer lag {max_lag:.0f} s exceeds {self.max_lag:.0f} s"
        else:
            stale, reason = False, f"{len(fresh_rows)} scorer worker(s) publishing"
        ready = bool(fresh_rows) and not not_ready
        value = ScorerFreshness(rows, len(fresh_rows), max_lag, newest, stale, reason, ready, site_rows)
        self._value, self._at = value, time.monotonic()
        return value


# ------------------------------------------------------------------------------------------- ranking
@dataclass
class RankQuery:
    tiers: list[str]
    sites: list[str]
    sort: str
    order: str
    limit: int
    cursor: str | None


def _filter_key(q: RankQuery) -> str:
    return ",".join(sorted(q.tiers)) + "|" + ",".join(sorted(q.sites))


def _sort_expr(sort: str, order: str) -> str:
    column = _SORT_COLUMN[sort]
    if sort in ("probability", "ttf"):  # nullable: nulls last in both directions
        return f"COALESCE({column}, '{'-' if order == 'desc' else ''}Infinity'::float8)"
    return column


def clock_params(clocks: Sequence[SiteClock]) -> dict[str, list[Any]]:
    with_data = [c for c in clocks if c.stale_before is not None]
    return {
        "clock_sites": [c.site_id for c in with_data],
        "clock_cutoffs": [c.stale_before for c in with_data],
    }


async def ranking(
    db: Database, q: RankQuery, *, clocks: Sequence[SiteClock]
) -> tuple[list[orjson.Fragment], str | None]:
    """Keyset pagination in two phases: scored turbines (by the sort key), then never-scored ones."""
    expect = {"s": q.sort, "o": q.order, "f": _filter_key(q)}
    phase: Any = 1
    after_value: float | None = None
    after_id: Any = None
    if q.cursor:
        data = decode_cursor(q.cursor, expect=expect)
        phase = data.get("p")
        after_id = data.get("i")
        if phase not in (1, 2) or not isinstance(after_id, str):
            raise CursorError("invalid cursor")
        if phase == 1 and q.sort != "turbine_id":
            after_value = parse_float_key(data.get("v"))
    want_unknown = not q.tiers or "unknown" in q.tiers
    params: dict[str, Any] = {
        "tiers": q.tiers,
        "sites": q.sites,
        **clock_params(clocks),
    }
    items: list[orjson.Fragment] = []
    next_cursor: str | None = None

    if phase == 1:
        expr = _sort_expr(q.sort, q.order)
        where = ["TRUE"]
        if q.tiers:
            where.append("s.tier = ANY(%(tiers)s)")
        if q.sites:
            where.append("s.site_id = ANY(%(sites)s)")
        if after_id is not None:
            params["after_id"] = after_id
            if q.sort == "turbine_id":
                where.append(
                    "s.turbine_id > %(after_id)s" if q.order == "asc" else "s.turbine_id < %(after_id)s"
                )
            else:
                params["after_v"] = after_value
                op = "<" if q.order == "desc" else ">"
                if q.sort == "score":  # lets the planner range-scan the (score DESC, turbine_id) index
                    where.append(f"s.score {op}= %(after_v)s")
                where.append(
                    f"({expr} {op} %(after_v)s OR ({expr} = %(after_v)s AND s.turbine_id > %(after_id)s))"
                )
        direction = "DESC" if q.order == "desc" else "ASC"
        order_by = (
            f"s.turbine_id {direction}" if q.sort == "turbine_id" else f"{expr} {direction}, s.turbine_id ASC"
        )
        params["n"] = q.limit + 1
        key_expr = expr if q.sort != "turbine_id" else "NULL::float8"
        outer_order = (
            f"p.turbine_id {direction}" if q.sort == "turbine_id" else f"p.k {direction}, p.turbine_id ASC"
        )
        # Page keys first (index-friendly, no JSON), then JSON for those rows only: sorting 10,000 rows by a
        # non-indexed key must not build 10,000 JSON objects.
        rows = await db.rows(
            f"""WITH p AS (
                  SELECT {key_expr} AS k, s.turbine_id FROM turbine_state s
                  WHERE {" AND ".join(where)} ORDER BY {order_by} LIMIT %(n)s), {_CLOCKS}
                SELECT p.k, p.turbine_id,
                json_build_object(
                  'turbine_id', s.turbine_id, 'site_id', s.site_id, 'score', s.score, 'tier', s.tier,
                  'probability', s.probability, 'ttf_days', s.ttf_days, 'ttf_low_days', s.ttf_low_days,
                  'ttf_high_days', s.ttf_high_days,
                  'reasons', CASE WHEN jsonb_typeof(s.reasons) = 'array'
                                  THEN jsonb_path_query_array(s.reasons, '$[0 to 2]') ELSE '[]'::jsonb END,
                  'last_event_time', {_LAST_EVENT}, 'as_of', s.as_of, 'source', s.trigger,
                  'model_version', s.model_version, 'stale', {_STALE}, {_REGISTER_JSON})::text,
                t.fitted_sensors
                FROM p JOIN turbine_state s ON s.turbine_id = p.turbine_id
                LEFT JOIN turbines t ON t.turbine_id = s.turbine_id
                LEFT JOIN c ON c.site_id = t.site_id
                ORDER BY {outer_order}""",
            params,
        )
        for key, turbine_id, body, fitted in rows[: q.limit]:
            items.append(with_sensor_set(body, fitted))
            last_key, last_id = key, turbine_id
        if len(rows) > q.limit:
            payload = {**expect, "p": 1, "i": last_id}
            if q.sort != "turbine_id":
                payload["v"] = float_key(last_key)
            return items, encode_cursor(payload)
        if not want_unknown:
            return items, None
        phase, after_id = 2, None

    # phase 2: turbines known from telemetry but never scored (tier "unknown"), by turbine_id
    remaining = q.limit - len(items)
    where = ["NOT EXISTS (SELECT 1 FROM turbine_state s WHERE s.turbine_id = t.turbine_id)"]
    if q.sites:
        where.append("t.site_id = ANY(%(sites)s)")
    if after_id:
        params["after_id"] = after_id
        where.append("t.turbine_id > %(after_id)s")
    params["n"] = remaining + 1
    rows = await db.rows(
        f"""WITH {_CLOCKS} SELECT t.turbine_id, json_build_object(
              'turbine_id', t.turbine_id, 'site_id', t.site_id, 'score', NULL, 'tier', 'unknown',
              'probability', NULL, 'ttf_days', NULL, 'ttf_low_days', NULL, 'ttf_high_days', NULL,
              'reasons', '[]'::json, 'last_event_time', t.last_event_time, 'as_of', NULL, 'source', NULL,
              'model_version', NULL, 'stale', {_STALE_UNSCORED}, {_REGISTER_JSON})::text, t.fitted_sensors
            FROM turbines t LEFT JOIN c ON c.site_id = t.site_id
            WHERE {" AND ".join(where)} ORDER BY t.turbine_id LIMIT %(n)s""",
        params,
    )
    if remaining == 0:
        if rows:
            next_cursor = encode_cursor({**expect, "p": 2, "i": ""})
        return items, next_cursor
    for turbine_id, body, fitted in rows[:remaining]:
        items.append(with_sensor_set(body, fitted))
        last_id = turbine_id
    if len(rows) > remaining:
        next_cursor = encode_cursor({**expect, "p": 2, "i": last_id})
    return items, next_cursor


# ------------------------------------------------------------------------------------------- detail
async def turbine_detail(db: Database, turbine_id: str) -> dict[str, Any] | None:
    """Identity, latest measurements, the ONE current assessment (``turbine_state``) and, as a reference
    only, the turbine's last sweep run (no second score: it would contradict the current assessment)."""
    row = await db.dict_one(
        """SELECT t.turbine_id, t.site_id, t.rated_power_kw, t.commissioned_on, t.first_seen_at,
                  t.manufacturer, t.model, t.rotor_diameter_m, t.hub_height_m, t.latitude, t.longitude,
                  t.fitted_sensors,
                  GREATEST(s.last_event_time, t.last_event_time) AS last_event_time,
                  l.event_time AS m_event_time, l.status_code AS m_status_code, l.measurements AS m_values,
                  s.as_of, s.scored_at, s.trigger, s.score, s.tier, s.probability, s.ttf_days,
                  s.ttf_low_days, s.ttf_high_days, s.model_version, s.run_id, s.reasons, s.data_quality,
                  h.time AS w_time, h.run_id AS w_run_id
           FROM turbines t
           LEFT JOIN turbine_state s ON s.turbine_id = t.turbine_id
           LEFT JOIN telemetry_latest l ON l.turbine_id = t.turbine_id
           LEFT JOIN LATERAL (
               SELECT time, run_id FROM score_history
               WHERE turbine_id = t.turbine_id AND trigger = 'sweep' ORDER BY time DESC LIMIT 1) h ON TRUE
           WHERE t.turbine_id = %s""",
        (turbine_id,),
    )
    if row is None:
        return None
    run = None
    if row["w_run_id"] is not None:
        run = await db.dict_one(f"SELECT {RUN_COLUMNS} FROM sweep_runs WHERE run_id = %s", (row["w_run_id"],))
    return {"row": row, "run": run}


# ------------------------------------------------------------------------------------------- history
def bucket_expr(timescale: bool, column: str) -> str:
    """Same buckets on both dialects: fixed width from a fixed origin (a Monday, like time_bucket)."""
    if timescale:
        return f"time_bucket(%(bucket)s::interval, {column}, TIMESTAMPTZ '2000-01-03 00:00:00+00')"
    return f"date_bin(%(bucket)s::interval, {column}, TIMESTAMPTZ '2000-01-03 00:00:00+00')"


#: Key signals of ``telemetry_agg`` shown in charts (averaged per bucket).
AGG_SIGNALS = TELEMETRY_AGG_SIGNALS
_AGG_COLUMNS = ", ".join(f"avg({c}) AS {c}" for c in AGG_SIGNALS)

_WORST = (
    "(ARRAY['unknown','low','moderate','high','critical'])[1 + max(CASE tier WHEN 'critical' THEN 4 "
    "WHEN 'high' THEN 3 WHEN 'moderate' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)]"
)


async def history_bounds(db: Database, turbine_id: str) -> tuple[datetime | None, datetime | None] | None:
    """(turbine's last data time, its site's data clock), or None for an unknown turbine.

    Last data: its newest event, or its current assessment's as-of time when that is a sweep at the site's
    data clock (never later than the clock: an old scorer wrote sweep rows at the wall clock).
    """
    row = await db.one(
        """SELECT GREATEST(t.last_event_time, s.last_event_time, LEAST(s.as_of, c.clock)), c.clock
           FROM turbines t LEFT JOIN turbine_state s ON s.turbine_id = t.turbine_id
           LEFT JOIN LATERAL (SELECT max(last_event_time) AS clock FROM turbines
                              WHERE site_id = t.site_id) c ON TRUE
           WHERE t.turbine_id = %s""",
        (turbine_id,),
    )
    return None if row is None else (row[0], row[1])


async def history(
    db: Database,
    turbine_id: str,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    timescale: bool,
    ceiling: datetime | None = None,
) -> tuple[str, str]:
    """One round-trip: (scores JSON array, telemetry JSON array).

    ``ceiling``: no score after it (the site's data clock plus a tolerance): a score row stamped with the wall
    clock by an older scorer, far ahead of the data, is not a point of this turbine's event-time history.
    """
    sb = bucket_expr(timescale, "time")
    tb = bucket_expr(timescale, "bucket")
    row = await db.one(
        f"""SELECT
            (SELECT COALESCE(json_agg(x ORDER BY x.bucket), '[]'::json)::text FROM (
                SELECT {sb} AS bucket, avg(score) AS avg_score, max(score) AS max_score,
                       (array_agg(score ORDER BY time DESC))[1] AS last_score,
                       (array_agg(tier ORDER BY time DESC))[1] AS tier, {_WORST} AS worst_tier,
                       count(*) AS samples
                FROM score_history WHERE turbine_id = %(id)s AND time >= %(start)s AND time < %(end)s
                  AND time <= %(ceiling)s
                GROUP BY 1) x),
            (SELECT COALESCE(json_agg(y ORDER BY y.bucket), '[]'::json)::text FROM (
                SELECT {tb} AS bucket, sum(samples)::int AS samples, {_AGG_COLUMNS}
                FROM telemetry_agg WHERE turbine_id = %(id)s AND bucket >= %(start)s AND bucket < %(end)s
                GROUP BY 1) y)""",
        {
            "id": turbine_id,
            "start": start,
            "end": end,
            "bucket": bucket,
            "ceiling": ceiling if ceiling is not None else datetime.max.replace(tzinfo=UTC),
        },
    )
    assert row is not None
    return row[0], row[1]


# ------------------------------------------------------------------------------------------- fleet
async def tier_counts(db: Database, clocks: Sequence[SiteClock]) -> dict[str, tuple[int, int]]:
    """{tier: (turbines, stale turbines)} over the whole fleet, never-scored turbines as 'unknown'."""
    rows = await db.rows(
        f"""WITH {_CLOCKS} SELECT COALESCE(s.tier, 'unknown'), count(*), count(*) FILTER (WHERE {_STALE})
            FROM turbines t LEFT JOIN turbine_state s ON s.turbine_id = t.turbine_id
            LEFT JOIN c ON c.site_id = t.site_id GROUP BY 1""",
        clock_params(clocks),
    )
    counts = {tier: (0, 0) for tier in TIER_ORDER}
    for tier, total, stale in rows:
        counts[tier] = (int(total), int(stale))
    return counts


#: Daily counts scan the whole fleet's history for the range (millions of rows over 90 days): allow more.
SLOW_AGGREGATE_TIMEOUT_MS = 30_000

_TIER_RANK = (
    "CASE tier WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'moderate' THEN 2 WHEN 'low' THEN 1 ELSE 0 END"
)


class TtlCache:
    """Tiny in-process cache for aggregates that are expensive and change slowly (daily tier counts)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit is not None and time.monotonic() < hit[0]:
            return hit[1]
        return None

    def put(self, key: Any, value: Any) -> None:
        if len(self._data) > 256:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)


async def daily_tiers(
    db: Database,
    start: datetime,
    timescale: bool,
    tiers: tuple[str, ...] = TIER_ORDER,
    cache: TtlCache | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Per day, how many turbines reached each tier (the worst tier of the turbine's assessments that day).

    Why "worst of the day": a turbine that was critical this morning matters even if it is high tonight, and
    it is a hash aggregate (no per-turbine sort) over what can be millions of rows.
    """
    key = (start, end, tiers, timescale)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit  # type: ignore[no-any-return]
    day = bucket_expr(timescale, "time")
    rows = await db.rows(
        f"""SELECT day, worst, count(*) FROM (
                SELECT {day} AS day, turbine_id, max({_TIER_RANK}) AS worst
                FROM score_history WHERE time >= %(start)s AND time < %(end)s GROUP BY 1, 2) x
            GROUP BY 1, 2 ORDER BY 1""",
        {"start": start, "end": end or datetime.max.replace(tzinfo=UTC), "bucket": timedelta(days=1)},
        timeout_ms=SLOW_AGGREGATE_TIMEOUT_MS,
    )
    names = ("unknown", "low", "moderate", "high", "critical")
    out: dict[datetime, dict[str, int]] = {}
    for day_start, worst, count in rows:
        counts = out.setdefault(day_start, {t: 0 for t in tiers})
        tier = names[int(worst)]
        if tier in counts:
            counts[tier] = int(count)
    value = [{"day": d, "counts": c} for d, c in out.items()]
    if cache is not None:
        cache.put(key, value)
    return value


async def feature_drift(db: Database) -> list[dict[str, Any]]:
    """Latest feature-drift run of each scorer worker that reported in the last day (scorer/drift.py)."""
    return await db.dicts(
        "SELECT DISTINCT ON (worker_id) worker_id, computed_at, model_version, status, detail, window_rows, "
        "summary FROM feature_drift WHERE computed_at > now() - interval '1 day' "
        "ORDER BY worker_id, computed_at DESC"
    )


async def last_sweep(db: Database, *, succeeded: bool = False) -> dict[str, Any] | None:
    where = "WHERE status = 'succeeded'" if succeeded else ""
    order = "finished_at DESC NULLS LAST" if succeeded else "requested_at DESC, run_id DESC"
    return await db.dict_one(f"SELECT {RUN_COLUMNS} FROM sweep_runs {where} ORDER BY {order} LIMIT 1")


# ------------------------------------------------------------------------------------------- runs
async def runs_page(db: Database, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    params: dict[str, Any] = {"n": limit + 1}
    where = ""
    if cursor:
        data = decode_cursor(cursor, expect={"k": "runs"})
        try:
            params["at"] = datetime.fromisoformat(str(data["t"]))
            params["id"] = str(data["i"])
        except (KeyError, ValueError) as exc:
            raise CursorError("invalid cursor") from exc
        where = "WHERE (requested_at, run_id::text) < (%(at)s, %(id)s)"
    rows = await db.dicts(
        f"SELECT {RUN_COLUMNS} FROM sweep_runs {where} "
        "ORDER BY requested_at DESC, run_id::text DESC LIMIT %(n)s",
        params,
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(
            {"k": "runs", "t": last["requested_at"].isoformat(), "i": str(last["run_id"])}
        )
    return rows[:limit], next_cursor


async def run_detail(db: Database, run_id: str) -> dict[str, Any] | None:
    run = await db.dict_one(f"SELECT {RUN_COLUMNS} FROM sweep_runs WHERE run_id = %s", (run_id,))
    if run is None:
        return None
    stats = await db.rows(
        "SELECT tier, count(*), avg(score), max(score) FROM score_history WHERE run_id = %s GROUP BY tier",
        (run_id,),
    )
    log = await db.dicts(
        """SELECT time, operation, turbines, events, status, duration_ms, model_version, worker_id, error
           FROM scoring_log WHERE operation = 'sweep'
             AND time >= COALESCE(%(started)s, %(requested)s) - interval '1 minute'
             AND time <= COALESCE(%(finished)s, now()) + interval '1 minute'
           ORDER BY time LIMIT 100""",
        {"started": run["started_at"], "requested": run["requested_at"], "finished": run["finished_at"]},
    )
    total = sum(int(r[1]) for r in stats)
    weighted = sum(float(r[2]) * int(r[1]) for r in stats)
    return {
        "run": run,
        "assessments": total,
        "tier_counts": {str(r[0]): int(r[1]) for r in stats},
        "score_avg": weighted / total if total else None,
        "score_max": max((float(r[3]) for r in stats), default=None),
        "log": log,
    }


async def log_last_hour(db: Database) -> tuple[int, int]:
    row = await db.one(
        "SELECT count(*), count(*) FILTER (WHERE status = 'error') FROM scoring_log "
        "WHERE time >= now() - interval '1 hour'"
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


# ------------------------------------------------------------------------------------------- planning
async def planning_rows(
    db: Database, tiers: Sequence[str], horizon_days: float, sites: Sequence[str], clocks: Sequence[SiteClock]
) -> list[dict[str, Any]]:
    """Current assessments in ``tiers`` or with a TTF within ``horizon_days`` (the page's planning view),
    with the turbine's rated power and staleness; unordered (the order is :func:`api.routers.planning.plan`).
    """
    params: dict[str, Any] = {"tiers": list(tiers), "horizon": horizon_days, "sites": list(sites)}
    params.update(clock_params(clocks))
    site_filter = "AND s.site_id = ANY(%(sites)s)" if sites else ""
    rows = await db.rows(
        f"""WITH {_CLOCKS}
            SELECT json_build_object(
              'turbine_id', s.turbine_id, 'site_id', s.site_id, 'tier', s.tier, 'score', s.score,
              'probability', s.probability, 'ttf_days', s.ttf_days, 'ttf_low_days', s.ttf_low_days,
              'ttf_high_days', s.ttf_high_days,
              'reasons', CASE WHEN jsonb_typeof(s.reasons) = 'array'
                              THEN jsonb_path_query_array(s.reasons, '$[0 to 2]') ELSE '[]'::jsonb END,
              'as_of', s.as_of, 'last_event_time', {_LAST_EVENT}, 'stale', {_STALE},
              'rated_power_kw', t.rated_power_kw)::text
            FROM turbine_state s
            LEFT JOIN turbines t ON t.turbine_id = s.turbine_id
            LEFT JOIN c ON c.site_id = t.site_id
            WHERE (s.tier = ANY(%(tiers)s) OR s.ttf_days <= %(horizon)s) {site_filter}
            LIMIT 5000""",
        params,
    )
    return [orjson.loads(r[0]) for r in rows]
