"""Rows per second of each table the scorer writes, against the local PostgreSQL (plain script).

Creates a private database (admin URL), migrates it, writes typed rows (``common.rows``) through
``scorer.sink.Sink`` — or through another ``sink.py`` given with ``--sink-module`` (to compare with an
older version: rows are handed to it as tuples in its own column order) — and drops the database.

Per table: ``insert`` (new keys), ``update`` (same keys, new values; median of ``--rounds``) and
``unchanged`` (the same rows again: what a replay or an idle turbine costs).

    .venv/bin/python bench/bench_sink.py                       # this checkout's sink
    .venv/bin/python bench/bench_sink.py --sink-module /tmp/old_sink.py   # another version, same run
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.db import migrate
from common.rows import (
    TELEMETRY_AGG_SIGNALS,
    AggRow,
    DeadLetterRow,
    HistoryRow,
    LatestRow,
    Row,
    StateRow,
    TurbineSeenRow,
    WindowRow,
)

ADMIN = os.environ.get(
    "COCKPIT_ADMIN_URL", "postgresql://cockpit_admin:cockpit_admin@127.0.0.1:5433/postgres"
)
WRITER = "cockpit_writer"


def make_db() -> tuple[str, str]:
    name = f"bench_sink_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(WRITER))
        )
    base = ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(WRITER)))
    url = f"postgresql://{WRITER}:{WRITER}@{base.split('@', 1)[1]}/{name}"
    migrate(url)
    return name, url


def drop_db(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def load_sink(path: str | None) -> ModuleType:
    if path is None:
        import scorer.sink

        return scorer.sink
    spec = importlib.util.spec_from_file_location("other_sink", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["other_sink"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def writer(mod: ModuleType, sink: Any) -> Callable[[type[Row], Sequence[Row]], None]:
    """A function writing ``rows`` of one table in one transaction with ``sink``."""
    if hasattr(sink, "write_rows"):
        return lambda cls, rows: sink.run(lambda c: sink.write_rows(c, cls, rows))

    def old(cls: type[Row], rows: Sequence[Row]) -> None:  # an older sink: tuples in its column order
        if cls is DeadLetterRow:
            from scorer.processing import DeadLetterRecord

            letters = [
                DeadLetterRecord(r.envelope, r.code, r.reason, r.source_topic, r.source_partition,
                                 r.source_offset, r.record_key)
                for r in rows
            ]  # fmt: skip
            sink.run(lambda c: sink._insert_dead_letters(c, letters))
            return
        cols = mod.UPSERTS[cls.TABLE][0]
        tuples = [tuple(getattr(r, c) for c in cols) for r in rows]
        sink.run(lambda c: sink._upsert(c, cls.TABLE, tuples))

    return old


def rows_for(cls: type[Row], n: int, version: int, rng: random.Random, blob: bytes) -> list[Row]:
    t0 = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=10 * version)
    ids = [f"BT-{i:05d}" for i in range(n)]
    dq = orjson.dumps({"missing_share": 0.01, "frozen_signals": [], "v": version}).decode()
    reasons = orjson.dumps([{"indicator": "x", "text": "t", "value": version}]).decode()
    if cls is TurbineSeenRow:
        return [TurbineSeenRow(t, "SITE", t0) for t in ids]
    if cls is LatestRow:
        meas = orjson.dumps({s: 1.0 + version for s in TELEMETRY_AGG_SIGNALS}).decode()
        return [LatestRow(t, t0, meas, 0) for t in ids]
    if cls is AggRow:  # 5 buckets per turbine: one batch of 10-minute data over 50 minutes
        per = 5
        return [
            AggRow.of(
                t0 + timedelta(minutes=10 * k), t, 1 + version, [rng.random() for _ in TELEMETRY_AGG_SIGNALS]
            )
            for t in ids[: max(1, n // per)]
            for k in range(per)
        ]
    common: dict[str, Any] = dict(
        score=rng.uniform(0, 100), tier="low", probability=0.1, ttf_days=10.0, ttf_low_days=5.0,
        ttf_high_days=20.0, model_version="v1", run_id=None, reasons=reasons, data_quality=dq,
        calibration_version=None,
    )  # fmt: skip
    if cls is HistoryRow:
        return [HistoryRow(time=t0, turbine_id=t, trigger="stream", **common) for t in ids]
    if cls is StateRow:
        return [
            StateRow(turbine_id=t, site_id="SITE", as_of=t0, trigger="stream", last_event_time=t0, **common)
            for t in ids
        ]
    if cls is WindowRow:
        return [WindowRow("bench", t, "SITE", "telemetry", 0, t0, blob, b'{"v":1}') for t in ids]
    if cls is DeadLetterRow:
        return [
            DeadLetterRow("bench", "telemetry", 0, version * n + i, "bad_json", "reason", None, b"{}" * 200)
            for i in range(n)
        ]
    raise ValueError(cls)


def outcome(mod: ModuleType, turbines: int, per_turbine: int, version: int, rng: random.Random) -> Any:
    """A stream batch of ``turbines`` touched turbines with ``per_turbine`` 10-minute readings each."""
    from scorer.processing import BatchOutcome

    blob = b""
    out = BatchOutcome(events=turbines * per_turbine, turbines_scored=turbines, model_version="v1")
    out.turbine_rows = rows_for(TurbineSeenRow, turbines, version, rng, blob)  # type: ignore[assignment]
    out.latest_rows = rows_for(LatestRow, turbines, version, rng, blob)  # type: ignore[assignment]
    out.agg_rows = rows_for(AggRow, turbines * per_turbine, version, rng, blob)  # type: ignore[assignment]
    out.history_rows = rows_for(HistoryRow, turbines, version, rng, blob)  # type: ignore[assignment]
    out.state_rows = rows_for(StateRow, turbines, version, rng, blob)  # type: ignore[assignment]
    if not hasattr(mod.Sink, "write_rows"):  # an older sink: tuples in its column order
        for attr, table in (
            ("turbine_rows", "turbines"),
            ("latest_rows", "telemetry_latest"),
            ("agg_rows", "telemetry_agg"),
            ("history_rows", "score_history"),
            ("state_rows", "turbine_state"),
        ):
            cols = mod.UPSERTS[table][0]
            setattr(out, attr, [tuple(getattr(r, c) for c in cols) for r in getattr(out, attr)])
    return out


def bench_batches(mod: ModuleType, sink: Any, rounds: int, rng: random.Random) -> None:
    """``write_batch`` of a live batch (100 turbines x 1 reading) and a backlog batch (1,000 x 5)."""
    for turbines, per in ((100, 1), (1000, 5)):
        figures = []
        for r in range(rounds):
            out = outcome(mod, turbines, per, 100 + r, rng)
            t0 = time.perf_counter()
            sink.write_batch(out, 1.0)
            figures.append(time.perf_counter() - t0)
        ms = statistics.median(figures) * 1000
        rows = turbines * (4 + per)
        print(f"  write_batch {turbines:>5} turbines x {per} readings ({rows:,} rows): {ms:8.1f} ms median")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sink-module", help="path of another scorer/sink.py to measure instead")
    ap.add_argument("--rows", type=int, default=2000, help="rows per table per write (agg: same count)")
    ap.add_argument("--window-rows", type=int, default=500, help="scorer_windows rows per write")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches-only", action="store_true", help="only the write_batch figures")
    args = ap.parse_args()
    mod = load_sink(args.sink_module)
    name, url = make_db()
    rng = random.Random(1)
    blob = rng.randbytes(20_000)
    try:
        sink = mod.Sink(url, "bench", "bench")
        write = writer(mod, sink)
        write(TurbineSeenRow, rows_for(TurbineSeenRow, args.rows, 0, rng, blob))  # FK of latest/state
        print(f"sink: {args.sink_module or 'scorer/sink.py'}  rows/s (insert | update median | unchanged)")
        bench_batches(mod, sink, args.rounds, rng)
        if args.batches_only:
            return
        for cls in (TurbineSeenRow, LatestRow, AggRow, HistoryRow, StateRow, WindowRow, DeadLetterRow):
            n = args.window_rows if cls is WindowRow else args.rows
            figures = []
            # insert: keys new to the table (history/dead letters always new keys; others: first round)
            if cls is TurbineSeenRow:
                with psycopg.connect(url, autocommit=True) as c:  # fresh keys: drop the FK users first
                    c.execute("DELETE FROM telemetry_latest; DELETE FROM turbine_state; DELETE FROM turbines")
            rows = rows_for(cls, n, 1, rng, blob)
            t0 = time.perf_counter()
            write(cls, rows)
            figures.append(len(rows) / (time.perf_counter() - t0))
            ups = []
            for r in range(args.rounds):
                rows = rows_for(cls, n, 2 + r, rng, blob)
                t0 = time.perf_counter()
                write(cls, rows)
                ups.append(len(rows) / (time.perf_counter() - t0))
            figures.append(statistics.median(ups))
            t0 = time.perf_counter()
            write(cls, rows)  # the last rows again: nothing changed
            figures.append(len(rows) / (time.perf_counter() - t0))
            print(f"  {cls.TABLE:<20} {len(rows):>6} rows: " + " | ".join(f"{f:>9,.0f}" for f in figures))
        sink.close()
    finally:
        drop_db(name)


if __name__ == "__main__":
    main()
