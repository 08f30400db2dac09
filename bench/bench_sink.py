"""Rows per second of each table the scorer writes, against the local PostgreSQL (plain script).

Creates a private database (admin URL), migrates it, writes typed rows (``common.rows``) through
``scorer.sink.Sink`` — or through another ``sink.py`` given with ``--sink-module`` (to compare with an
older version: rows are handed to it as tuples in its own column order) — and drops the database.

Per table, rows/s of ``changed`` rows (new keys, then new values for the same keys) and of the same
rows ``unchanged`` (what a replay or an idle turbine costs); ``write_batch`` of a whole stream batch in
batches/s. With ``--sink-module`` both versions are measured in the same run, taking turns, and the
ratio is printed (the machine's load hits both alike).

    .venv/bin/python bench/bench_sink.py
    git show <rev>:scorer/sink.py > /tmp/old_sink.py
    .venv/bin/python bench/bench_sink.py --sink-module /tmp/old_sink.py
    .venv/bin/python bench/bench_sink.py --paths --rows 20000 --window-rows 5000   # unnest vs COPY
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    "COCKPIT_BENCH_ADMIN_URL", "postgresql://cockpit_admin:cockpit_admin@127.0.0.1:5433/postgres"
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


@dataclass
class Impl:
    """One sink version under test, with its own database and results."""

    label: str
    mod: ModuleType
    db: str
    sink: Any
    write: Callable[[type[Row], Sequence[Row]], None]
    figures: dict[str, list[float]] = field(default_factory=dict)
    copy_min_rows: int | None = None  # force one write path of this checkout's sink (--paths)

    def time(self, key: str, fn: Callable[[], object], rows: int) -> None:
        saved = dict(self.mod.WRITES) if self.copy_min_rows is not None else None
        if saved is not None:
            for cls, spec in saved.items():
                self.mod.WRITES[cls] = dataclasses.replace(spec, copy_min_rows=self.copy_min_rows)
        try:
            t0 = time.perf_counter()
            fn()
            self.figures.setdefault(key, []).append(rows / (time.perf_counter() - t0))
        finally:
            if saved is not None:
                self.mod.WRITES.update(saved)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sink-module", help="path of another scorer/sink.py to measure beside this one")
    ap.add_argument("--rows", type=int, default=2000, help="rows per table per write")
    ap.add_argument("--window-rows", type=int, default=500, help="scorer_windows rows per write")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--paths", action="store_true", help="this sink's unnest path vs its binary COPY path")
    args = ap.parse_args()
    mods = [("this", load_sink(None))]
    if args.paths:
        mods = [("unnest", mods[0][1]), ("copy", mods[0][1])]
    elif args.sink_module:
        mods.append(("other", load_sink(args.sink_module)))
    rng = random.Random(1)
    blob = rng.randbytes(20_000)
    impls: list[Impl] = []
    try:
        for label, mod in mods:
            name, url = make_db()
            sink = mod.Sink(url, "bench", "bench")
            force = {"unnest": 10**9, "copy": 0}.get(label) if args.paths else None
            impls.append(Impl(label, mod, name, sink, writer(mod, sink), copy_min_rows=force))
        # write_batch: a live batch (100 turbines x 1 reading) and a backlog batch (1,000 x 5)
        for r in range(args.rounds):
            for turbines, per in ((100, 1), (1000, 5)):
                for im in impls:  # versions take turns: the machine's load hits both alike
                    out = outcome(im.mod, turbines, per, 100 + r, rng)
                    im.time(
                        f"write_batch {turbines} x {per}",
                        lambda im=im, out=out: im.sink.write_batch(out, 1),
                        1,
                    )
        for cls in (TurbineSeenRow, LatestRow, AggRow, HistoryRow, StateRow, WindowRow, DeadLetterRow):
            n = args.window_rows if cls is WindowRow else args.rows
            for r in range(args.rounds):
                rows = rows_for(cls, n, 1 + r, rng, blob)
                for im in impls:
                    im.time(
                        f"{cls.TABLE} changed", lambda im=im, c=cls, rows=rows: im.write(c, rows), len(rows)
                    )
                    im.time(
                        f"{cls.TABLE} unchanged", lambda im=im, c=cls, rows=rows: im.write(c, rows), len(rows)
                    )
        print(f"median of {args.rounds} rounds, versions alternated; {args.rows} rows per table write "
              f"({args.window_rows} for scorer_windows); write_batch in batches/s")  # fmt: skip
        ratio_label = f"   {impls[0].label}/{impls[1].label}" if len(impls) > 1 else ""
        head = "".join(f"{im.label:>12}" for im in impls) + ratio_label
        print(f"  {'':<30}{head}")
        for key in impls[0].figures:
            meds = [statistics.median(im.figures[key]) for im in impls]
            ratio = f"{meds[0] / meds[1]:>12.2f}x" if len(meds) > 1 else ""
            print(f"  {key:<30}" + "".join(f"{m:>12,.1f}" for m in meds) + ratio)
    finally:
        for im in impls:
            im.sink.close()
            drop_db(im.db)


if __name__ == "__main__":
    main()
