"""Seed the scorer's tables the way the scorer writes them (COPY for volume), for API tests and the bench.

Why here: the API only reads; to test it we must mimic the scorer's writes, with a known shape:
tiers, stale and never-scored turbines, sweeps with their score rows, heartbeats, scoring log.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import psycopg

from common.rows import ASSESSMENT_COLUMNS, TELEMETRY_AGG_SIGNALS, AggRow, HistoryRow, Row, StateRow

TIER_BY_SCORE = ((80.0, "critical"), (60.0, "high"), (35.0, "moderate"), (0.0, "low"))
MODEL_VERSION = "2026.11.1-test"
AGG_SIGNALS = TELEMETRY_AGG_SIGNALS


def tier_of(score: float) -> str:
    for low, tier in TIER_BY_SCORE:
        if score >= low:
            return tier
    return "low"


def reasons_for(score: float) -> list[dict[str, Any]]:
    return [
        {
            "indicator": "gearbox_bearing_temp_c",
            "text": "Gearbox bearing hotter than normal for this load",
            "value": round(60 + score / 3, 1),
            "normal_range": [55.0, 75.0],
        },
        {
            "indicator": "vibration_mm_s",
            "text": "Vibration trending up over 7 days",
            "value": round(2 + score / 20, 2),
            "normal_range": [0.5, 4.5],
        },
        {
            "indicator": "main_bearing_temp_c",
            "text": "Main bearing temperature drift",
            "value": round(40 + score / 5, 1),
            "normal_range": [30.0, 55.0],
        },
        {
            "indicator": "converter_temp_c",
            "text": "Converter warm",
            "value": 48.0,
            "normal_range": [25.0, 60.0],
        },
    ]


def copy_rows(
    conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def copy_records(
    conn: psycopg.Connection,
    cls: type[Row],
    items: Iterable[tuple[Row, Sequence[Any]]],
    extra_columns: Sequence[str] = (),
) -> int:
    """COPY typed rows (``common.rows``: the columns the scorer writes) plus ``extra_columns`` values."""
    return copy_rows(
        conn, cls.TABLE, (*cls.COLUMNS, *extra_columns), ((*r.values(), *extra) for r, extra in items)
    )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass
class Seeded:
    """What was written, so tests can assert on it."""

    now: datetime
    turbines: list[str]
    scored: dict[str, float]  # turbine_id -> current score
    tiers: dict[str, str]
    unknown: list[str]
    stale: list[str]
    sites: dict[str, str]
    runs: list[uuid.UUID] = field(default_factory=list)  # newest first
    telemetry_turbines: list[str] = field(default_factory=list)
    history_days: set[date] = field(default_factory=set)  # UTC days holding score_history rows


def seed_fleet(
    url: str,
    *,
    turbines: int = 12,
    unscored: int = 2,
    stale: int = 1,
    days: int = 30,
    per_day: int = 4,
    telemetry_turbines: int = 2,
    telemetry_step: timedelta = timedelta(hours=1),
    sweeps: int = 3,
    seed: int = 7,
    now: datetime | None = None,
    id_format: str = "WT-{:03d}",
) -> Seeded:
    """Write a coherent fleet: ``turbines`` ids, the last ``unscored`` never scored, ``stale`` old ones."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    ids = [id_format.format(i + 1) for i in range(turbines)]
    scored_ids = ids[: turbines - unscored]
    unknown_ids = ids[turbines - unscored :]
    stale_ids = scored_ids[len(scored_ids) - stale :] if stale else []
    sites = {tid: ("SITE-A" if i % 2 == 0 else "SITE-B") for i, tid in enumerate(ids)}
    # spread of current scores: the first turbines are the riskiest
    current = {
        tid: round(max(1.0, 97.0 - i * (95.0 / max(1, len(scored_ids)))), 3)
        for i, tid in enumerate(scored_ids)
    }
    if len(scored_ids) > 3:  # a tie on score, to exercise the keyset tie-breaker
        current[scored_ids[3]] = current[scored_ids[2]]
    last_event = {
        tid: now - (timedelta(hours=3) if tid in stale_ids else timedelta(minutes=1)) for tid in ids
    }
    run_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(sweeps)]  # newest first
    run_times = [now - timedelta(days=k, hours=1) for k in range(sweeps)]

    with psycopg.connect(url, autocommit=False) as conn:
        copy_rows(
            conn,
            "turbines",
            (
                "turbine_id",
                "site_id",
                "rated_power_kw",
                "commissioned_on",
                "first_seen_at",
                "last_event_time",
            ),
            (
                (tid, sites[tid], 3600.0, date(2019, 5, 1), now - timedelta(days=days + 5), last_event[tid])
                for tid in ids
            ),
        )
        copy_rows(
            conn,
            "telemetry_latest",
            ("turbine_id", "event_time", "measurements", "status_code", "updated_at"),
            (
                (
                    tid,
                    last_event[tid],
                    _json(
                        {
                            "wind_speed_ms": 8.4,
                            "power_kw": 2100.0,
                            "gearbox_bearing_temp_c": 71.5,
                            "vibration_mm_s": 3.2,
                            "main_bearing_temp_c": 44.0,
                            "rotor_rpm": None,
                        }
                    ),
                    0,
                    now,
                )
                for tid in ids
            ),
        )

        def state_rows() -> Iterable[tuple[Row, Sequence[Any]]]:
            for tid in scored_ids:
                score = current[tid]
                prob = round(score / 100 * 0.9, 4) if tid != scored_ids[-2] else None  # one null probability
                ttf = round(max(1.0, (100 - score) / 2), 2)
                row = StateRow(
                    turbine_id=tid,
                    site_id=sites[tid],
                    as_of=now - timedelta(minutes=2),
                    trigger="stream",
                    score=score,
                    tier=tier_of(score),
                    probability=prob,
                    ttf_days=ttf,
                    ttf_low_days=ttf * 0.6,
                    ttf_high_days=ttf * 1.6,
                    model_version=MODEL_VERSION,
                    run_id=None,
                    reasons=_json(reasons_for(score)),
                    data_quality=_json({"missing_share": 0.01, "frozen_signals": []}),
                    last_event_time=last_event[tid],
                    calibration_version=None,
                )
                yield row, (now,)

        copy_records(conn, StateRow, state_rows(), ("scored_at",))

        def history_rows() -> Iterable[tuple[Row, Sequence[Any]]]:
            step = timedelta(days=1) / per_day
            start = now - timedelta(days=days)
            n = days * per_day
            common: dict[str, Any] = {"ttf_days": 10.0, "ttf_low_days": 6.0, "ttf_high_days": 16.0}
            common["model_version"] = MODEL_VERSION
            for tid in scored_ids:
                base = current[tid]
                for k in range(n):
                    t = start + step * k
                    drift = (k - n) / n * 20  # risk rose towards now
                    score = min(100.0, max(0.0, base + drift + rng.uniform(-3, 3)))
                    row = HistoryRow(
                        time=t, turbine_id=tid, trigger="stream", score=round(score, 3), tier=tier_of(score),
                        probability=score / 100 * 0.9, run_id=None, reasons="[]", data_quality="{}",
                        calibration_version=None, **common,
                    )  # fmt: skip
                    history_days.add(t.date())
                    yield row, (t,)
                for run_id, rt in zip(run_ids, run_times, strict=True):
                    row = HistoryRow(
                        time=rt, turbine_id=tid, trigger="sweep", score=base, tier=tier_of(base),
                        probability=base / 100 * 0.9, run_id=str(run_id),
                        reasons=_json(reasons_for(base)[:3]), data_quality="{}", calibration_version=None,
                        **common,
                    )  # fmt: skip
                    history_days.add(rt.date())
                    yield row, (rt,)

        history_days: set[date] = set()
        copy_records(conn, HistoryRow, history_rows(), ("scored_at",))

        tele_ids = scored_ids[:telemetry_turbines]

        def agg_rows() -> Iterable[tuple[Row, Sequence[Any]]]:
            start = (now - timedelta(days=days)).replace(minute=0, second=0)
            n = int(timedelta(days=days) / telemetry_step)
            for tid in tele_ids:
                for k in range(n):
                    t = start + telemetry_step * k
                    means = [  # TELEMETRY_AGG_SIGNALS order
                        8.0 + rng.uniform(-2, 2),
                        2000 + rng.uniform(-300, 300),
                        12.0,
                        65 + k / n * 10,
                        90.0,
                        42.0,
                        45.0,
                        2.5 + k / n,
                        180.0,
                    ]
                    yield AggRow.of(t, tid, 60, means), ()

        copy_records(conn, AggRow, agg_rows())

        tier_counts: dict[str, int] = {}
        for tid in scored_ids:
            tier_counts[tier_of(current[tid])] = tier_counts.get(tier_of(current[tid]), 0) + 1
        copy_rows(
            conn,
            "sweep_runs",
            (
                "run_id",
                "trigger",
                "requested_at",
                "started_at",
                "finished_at",
                "status",
                "turbines_scored",
                "tier_counts",
                "model_version",
                "error",
                "duration_ms",
            ),
            [
                (
                    rid,
                    "schedule" if k else "on_demand",
                    rt - timedelta(seconds=5),
                    rt - timedelta(seconds=4),
                    rt,
                    "succeeded",
                    len(scored_ids),
                    _json(tier_counts),
                    MODEL_VERSION,
                    None,
                    4000.0,
                )
                for k, (rid, rt) in enumerate(zip(run_ids, run_times, strict=True))
            ],
        )
        copy_rows(
            conn,
            "scoring_log",
            (
                "time",
                "operation",
                "turbines",
                "events",
                "status",
                "duration_ms",
                "model_version",
                "worker_id",
                "error",
            ),
            [
                *(
                    (
                        rt - timedelta(seconds=1),
                        "sweep",
                        len(scored_ids),
                        0,
                        "ok",
                        3900.0,
                        MODEL_VERSION,
                        "worker-1",
                        None,
                    )
                    for rt in run_times
                ),
                *(
                    (
                        now - timedelta(minutes=m),
                        "stream_batch",
                        5,
                        50,
                        "ok" if m != 7 else "error",
                        12.5,
                        MODEL_VERSION,
                        "worker-1",
                        None if m != 7 else "timeout",
                    )
                    for m in range(1, 31, 2)
                ),
            ],
        )
        copy_rows(
            conn,
            "scorer_heartbeats",
            (
                "worker_id",
                "updated_at",
                "started_at",
                "model_version",
                "events_per_minute",
                "lag_messages",
                "lag_seconds",
                "details",
            ),
            [
                ("worker-1", now, now - timedelta(hours=5), MODEL_VERSION, 600.0, 12, 1.5, "{}"),
                ("worker-2", now, now - timedelta(hours=5), MODEL_VERSION, 540.0, 8, 0.8, "{}"),
            ],
        )
        conn.commit()
        conn.execute("ANALYZE")
    return Seeded(
        now=now,
        turbines=ids,
        scored=current,
        tiers={tid: tier_of(s) for tid, s in current.items()},
        unknown=unknown_ids,
        stale=stale_ids,
        sites=sites,
        runs=run_ids,
        telemetry_turbines=tele_ids,
        history_days=history_days,
    )


#: Data clock of the historical fleet (both sites): its newest events are one minute before this.
HISTORICAL_NOW = datetime(2024, 3, 2, 14, 10, tzinfo=UTC)
NOT_READY_PROBLEM = "no partition assigned while telemetry.v1 has 6"


@dataclass
class HistoricalFleet:
    """A fleet imported from history (data clock in 2024), with the oddities the API must survive."""

    seeded: Seeded
    gap_turbine: str  # no score nor telemetry between gap_start and gap_end
    gap_start: datetime
    gap_end: datetime
    sweep_turbine: str  # current assessment from a sweep (as of the site's data clock)
    wall_clock_turbine: str  # has a sweep row stamped with the wall clock (an older scorer's habit)


def seed_historical_fleet(url: str) -> HistoricalFleet:
    """``seed_fleet`` as of 2024-03-02, then: a 4-day gap, a sweep assessment, a wall-clock sweep row, and a
    live heartbeat of a scorer that says it is not ready."""
    seeded = seed_fleet(url, now=HISTORICAL_NOW)
    gap_turbine = seeded.telemetry_turbines[0]
    sweep_turbine = seeded.telemetry_turbines[1]
    wall_clock_turbine = next(t for t in seeded.scored if t not in seeded.telemetry_turbines)
    gap_start, gap_end = HISTORICAL_NOW - timedelta(days=12), HISTORICAL_NOW - timedelta(days=8)
    clock = HISTORICAL_NOW - timedelta(minutes=1)
    with psycopg.connect(url, autocommit=False) as conn:
        for table, column in (("score_history", "time"), ("telemetry_agg", "bucket")):
            conn.execute(
                f"DELETE FROM {table} WHERE turbine_id = %s AND {column} >= %s AND {column} < %s",
                (gap_turbine, gap_start, gap_end),
            )
        conn.execute(
            "UPDATE turbine_state SET trigger = 'sweep', as_of = %s, run_id = %s WHERE turbine_id = %s",
            (clock, seeded.runs[0], sweep_turbine),
        )
        conn.execute(
            f"""INSERT INTO score_history
                  (time, turbine_id, trigger, {", ".join(ASSESSMENT_COLUMNS)}, reasons)
                VALUES (now(), %s, 'sweep', 43.1, 'moderate', 0.4, 12.0, 8.0, 20.0, %s, %s, '[]')""",
            (wall_clock_turbine, MODEL_VERSION, seeded.runs[0]),
        )
        conn.execute("DELETE FROM scorer_heartbeats WHERE worker_id <> 'worker-1'")
        conn.execute(
            "UPDATE scorer_heartbeats SET updated_at = now(), lag_seconds = 0, details = %s",
            (_json({"ready": False, "problems": [NOT_READY_PROBLEM], "partitions": {}}),),
        )
        conn.commit()
    return HistoricalFleet(seeded, gap_turbine, gap_start, gap_end, sweep_turbine, wall_clock_turbine)


def set_rated_power(url: str, turbine_id: str, rated_power_kw: float | None) -> None:
    """A turbine's rated power in the register (None: not declared), as the fleet import writes it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE turbines SET rated_power_kw = %s WHERE turbine_id = %s", (rated_power_kw, turbine_id)
        )


def rescore(url: str, turbine_id: str, score: float, ttf_days: float) -> str:
    """A new current assessment of one turbine, as the scorer's stream path writes it; returns its tier."""
    tier = tier_of(score)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """UPDATE turbine_state SET score = %s, tier = %s, probability = %s, ttf_days = %s,
                      ttf_low_days = %s, ttf_high_days = %s, scored_at = now()
               WHERE turbine_id = %s""",
            (score, tier, round(score / 100 * 0.9, 4), ttf_days, ttf_days * 0.6, ttf_days * 1.6, turbine_id),
        )
    return tier
