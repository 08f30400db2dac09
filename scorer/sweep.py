"""Fleet sweeps: score every known turbine once (daily schedule, catch-up, on-demand command).

Why a module of its own: the sweep reads the runtime's windows under its lock but has its own
rules (claiming a run in the database, the data time of each site), and the stream path must not
grow with them.

Time (docs/time.md, rule 3): each turbine is assessed as of ``min(wall now, its site's data clock)``,
the site's data clock being the newest last-event time among its turbines. Staleness is judged
against that time, and ``score_history.time`` / ``turbine_state.as_of`` are that time: a historical
site (imported history, a stopped feed) gets real tiers as of its last data instead of "unknown"
everywhere, while a turbine silent for hours beside live neighbours is stale. The wall clock only
caps the data clock (a sensor clock slightly ahead) and dates the run itself (``sweep_runs``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from common.contracts import TIERS, SweepCommand
from common.gc_pause import without_cyclic_gc
from common.logging import event
from common.rows import HistoryRow, StateRow
from models.fleet_scoring import FleetScorer
from models.scoring import RiskAssessment
from models.window_store import WindowStore
from scorer.processing import assessment_rows
from scorer.repairs import annotate_from_window
from scorer.schedule import catch_up_due, catch_up_run_id, previous_slot, schedule_run_id
from scorer.sink import SweepSummary

if TYPE_CHECKING:
    from models.features import FeatureWindow
    from scorer.processing import BatchProcessor
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer")
T = TypeVar("T")
#: Turbines per scoring chunk and per written part: small enough that the pipeline fills and drains
#: quickly (the first chunk's predict and the last part's write are not overlapped), large enough that
#: each predict call and statement carries little fixed cost.
SWEEP_CHUNK = 1024


@dataclass(frozen=True)
class SweepPlan:
    """As-of time of every site, and the turbines to score at each distinct as-of time."""

    site_as_of: dict[str, datetime]
    groups: dict[datetime, list[str]]


def plan_sweep(turbines: Iterable[tuple[str, str, float]], wall: datetime) -> SweepPlan:
    """``turbines``: (turbine id, site id, last event epoch seconds); ``wall``: the sweep's wall clock.

    A site's as-of time is ``min(wall, newest last event of its turbines)``; each turbine is scored as
    of its site's time, so two sweeps over the same data give the same rows (same as-of time).
    """
    rows = list(turbines)
    clocks: dict[str, float] = {}
    for _tid, site, last in rows:
        if site not in clocks or last > clocks[site]:
            clocks[site] = last
    wall_ts = wall.timestamp()
    site_as_of = {
        site: wall if ts >= wall_ts else datetime.fromtimestamp(ts, UTC) for site, ts in clocks.items()
    }
    groups: dict[datetime, list[str]] = {}
    for tid, site, _last in rows:
        groups.setdefault(site_as_of[site], []).append(tid)
    return SweepPlan(site_as_of, groups)


class Checkpointed(Protocol):
    """A checkpointed window as the sink loads it (``scorer.sink.StoredWindow``)."""

    turbine_id: str
    site_id: str
    partition: int
    state: bytes


@dataclass
class SweepResult:
    """Rows of one sweep (score_history, turbine_state), tier counts and each site's as-of time."""

    history_rows: list[Any] = field(default_factory=list)
    state_rows: list[Any] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    site_as_of: dict[str, datetime] = field(default_factory=dict)
    unreadable: int = 0  # checkpointed windows that could not be read (logged, not scored)


def sweep_windows(
    processor: BatchProcessor, stored: Sequence[Checkpointed], owned: set[int]
) -> tuple[list[str], list[str], list[FeatureWindow], np.ndarray, int]:
    """Every window to sweep: this worker's own (views on its store) and the checkpointed windows of
    the partitions it does not own, loaded into ONE extra store by one bulk load
    (``WindowStore.load_many``; no per-window object but the view).

    Returns (turbine ids, site ids, windows, last event times (epoch s), unreadable checkpoints);
    windows without any event are left out.
    """
    ids: list[str] = []
    sites: list[str] = []
    windows: list[FeatureWindow] = []
    for tid, st in processor.turbines.items():
        ids.append(tid)
        sites.append(st.site_id)
        windows.append(st.window)
    own_rows = np.fromiter((w.row for w in windows), dtype=np.intp, count=len(windows))
    lasts = [processor.store.last_event_ts(own_rows)]
    seen = set(ids)
    extra = [w for w in stored if w.turbine_id not in seen and w.partition not in owned]
    unreadable = 0
    if extra:
        first: dict[str, Checkpointed] = {}
        for w in extra:  # a turbine checkpointed twice: its first row counts
            first.setdefault(w.turbine_id, w)
        todo = list(first.values())
        store = WindowStore(capacity=len(todo))
        errors: list[tuple[int, str]] = []  # one bad checkpoint must not stop the sweep
        rows = store.load_many([w.turbine_id for w in todo], [w.state for w in todo], errors=errors)
        for i, message in errors:
            unreadable += 1
            event(
                log,
                "unreadable checkpointed window",
                logging.ERROR,
                turbine_id=todo[i].turbine_id,
                error=message,
            )
        good = (rows >= 0).tolist()
        loaded = [w for w, ok in zip(todo, good, strict=True) if ok]
        views = [store.window(w.turbine_id) for w in loaded]
        ids.extend(w.turbine_id for w in loaded)
        sites.extend(w.site_id for w in loaded)
        windows.extend(views)
        lasts.append(store.last_event_ts(rows[rows >= 0]))
    last = np.concatenate(lasts) if lasts else np.empty(0)
    keep = np.flatnonzero(np.isfinite(last))
    if len(keep) < len(ids):
        ids = [ids[i] for i in keep]
        sites = [sites[i] for i in keep]
        windows = [windows[i] for i in keep]
        last = last[keep]
    return ids, sites, windows, last, unreadable


def sweep_fleet(
    processor: BatchProcessor,
    stored: Sequence[Checkpointed],
    owned: set[int],
    fleet: FleetScorer | Callable[[], FleetScorer],
    wall: datetime,
    run_id: str,
    on_rows: Callable[[list[HistoryRow], list[StateRow]], None] | None = None,
) -> SweepResult:
    """Score every window once, each turbine as of its site's data time (:func:`plan_sweep`).

    One scoring pass over the whole fleet in ascending turbine order: features and predict of each
    chunk in a helper thread while data quality and the policy run for the previous one
    (``FleetScorer.score_iter(overlap=True)``). ``on_rows`` receives the rows in parts as soon as
    they are made, in ascending turbine order (what ``Sink.write_sweep`` needs); the result holds
    them all. ``fleet`` may be a function that gives it: called once the windows are gathered and
    planned (the run's fleet register may still be read meanwhile, :meth:`Sweeper.run_sweep`).
    """
    ids, sites, windows, last, unreadable = sweep_windows(processor, stored, owned)
    order = sorted(range(len(ids)), key=ids.__getitem__)
    ids = [ids[i] for i in order]
    sites = [sites[i] for i in order]
    windows = [windows[i] for i in order]
    lasts = last[np.asarray(order, dtype=np.intp)].tolist()
    plan = plan_sweep(zip(ids, sites, lasts, strict=True), wall)
    as_ofs = [plan.site_as_of[site] for site in sites]
    result = SweepResult(counts=dict.fromkeys(TIERS, 0), site_as_of=plan.site_as_of, unreadable=unreadable)
    done: list[RiskAssessment | None] = [None] * len(ids)
    made = 0  # rows are made for done[:made], in turbine order
    stamps: dict[float, datetime] = {}  # last event times: one datetime per distinct time

    def make(end: int) -> None:
        hist: list[HistoryRow] = []
        state: list[StateRow] = []
        for i in range(made, end):
            a, done[i] = done[i], None  # the rows hold what is kept: the assessment can go
            if a is None:  # no assessment for this item (never expected): as FleetScorer.score, no row
                continue
            annotate_from_window(a, windows[i])  # a just-repaired turbine says so, as in the stream
            last_t = stamps.get(lasts[i])
            if last_t is None:
                last_t = stamps[lasts[i]] = datetime.fromtimestamp(lasts[i], UTC)
            h, st_row = assessment_rows(a, "sweep", sites[i], last_t, as_ofs[i], run_id)
            hist.append(h)
            state.append(st_row)
            result.counts[a.tier] = result.counts.get(a.tier, 0) + 1
        result.history_rows.extend(hist)
        result.state_rows.extend(state)
        if on_rows is not None and hist:
            on_rows(hist, state)

    items = list(zip(ids, windows, strict=True))
    if not isinstance(fleet, FleetScorer):
        fleet = fleet()
    for idx, assessments in fleet.score_iter(items, now=as_ofs, overlap=True, chunk=SWEEP_CHUNK):
        for i, a in zip(idx, assessments, strict=True):
            done[i] = a
        end = made
        while end < len(done) and done[end] is not None:
            end += 1
        if end > made:
            make(end)
            made = end
    if made < len(done):
        make(len(done))
    return result


@dataclass
class WrittenSweep:
    """A sweep scored and written at once (:func:`sweep_and_write`)."""

    result: SweepResult
    score_s: float  # from the start of the sweep to its last assessment
    write_s: float  # the write transaction, first part to commit (overlaps the scoring)
    write_error: BaseException | None  # the write failed (nothing committed): the rows are in ``result``


_END = object()


def sweep_and_write(
    processor: BatchProcessor,
    stored: Sequence[Checkpointed],
    owned: set[int],
    fleet: FleetScorer | Callable[[], FleetScorer],
    wall: datetime,
    run_id: str,
    write: Callable[..., None],
    model_version: str | None,
    t0: float,
    scored: Callable[[], None] | None = None,
) -> WrittenSweep:
    """:func:`sweep_fleet` with its rows written as they are made (``Sink.write_sweep``: one
    transaction, run in a writer thread): the database stores one part while the next is scored.

    ``t0`` (``time.perf_counter()``) is the sweep's start, for the run's duration. ``scored()`` is
    called (from this thread) as soon as the windows are no longer read, the scoring done or failed:
    the caller may let the stream change them while the last rows are written. If the scoring fails,
    the transaction is rolled back and the error raised; if the write fails, the scoring still
    completes and the error is returned with all the rows (the caller writes them again).
    """
    parts: queue.SimpleQueue[Any] = queue.SimpleQueue()
    summary: list[SweepSummary] = []
    failed: list[BaseException] = []
    span: list[float] = []

    def received() -> Iterator[tuple[list[HistoryRow], list[StateRow]]]:
        while (part := parts.get()) is not _END:
            if isinstance(part, BaseException):
                raise part  # the scoring failed: roll the transaction back
            if not span:
                span.append(time.perf_counter())
            yield part

    def writer() -> None:
        try:
            write(run_id, model_version, received(), lambda: summary[0])
        except BaseException as exc:  # reported to the caller, which writes the rows again
            failed.append(exc)
        span.append(time.perf_counter())

    thread = threading.Thread(target=writer, name="sweep-write", daemon=True)
    thread.start()
    try:
        result = sweep_fleet(processor, stored, owned, fleet, wall, run_id, lambda h, s: parts.put((h, s)))
    except BaseException as exc:
        parts.put(exc)
        thread.join()
        raise
    finally:
        if scored is not None:
            scored()
    done = time.perf_counter()
    summary.append(SweepSummary(len(result.history_rows), result.counts, (done - t0) * 1000))
    parts.put(_END)
    thread.join()
    write_s = span[-1] - span[0] if len(span) > 1 else 0.0
    return WrittenSweep(result, done - t0, write_s, failed[0] if failed else None)


def _describe_sites(site_as_of: dict[str, datetime], wall: datetime, limit: int = 20) -> dict[str, Any]:
    """Log field: each site's data time and how far behind the wall clock it is (first ``limit``)."""
    return {
        site: {"as_of": t.isoformat(), "behind_wall_s": round((wall - t).total_seconds())}
        for site, t in sorted(site_as_of.items())[:limit]
    }


_REGISTER: ThreadPoolExecutor | None = None
_REGISTER_LOCK = threading.Lock()


def _read_register_aside(rt: ScorerRuntime) -> Future[bool] | None:
    """The fleet register's read when due (``RegisterHolder.refresh``), started on a thread of its own
    so that it overlaps the sweep's claim, the load of checkpointed windows and their gathering (a
    10,000-turbine register: ~50 ms of CPU, 60-110 ms in all, was the first thing a sweep waited for).
    None when not due."""
    global _REGISTER
    if not rt.registers.due():
        return None
    with _REGISTER_LOCK:
        if _REGISTER is None:
            _REGISTER = ThreadPoolExecutor(1, thread_name_prefix="sweep-register")
        return _REGISTER.submit(rt.registers.refresh)


class Sweeper:
    """Runs sweeps against one worker's runtime (its windows, sinks, pools and lock)."""

    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime
        self.running = False

    async def handle_command(self, raw: bytes) -> None:
        try:
            cmd = SweepCommand.model_validate_json(raw)
        except Exception as exc:
            event(log, "ignoring invalid command", logging.WARNING, error=str(exc)[:300])
            return
        await self.run_sweep("on_demand", str(cmd.run_id), cmd.requested_at)

    async def run_scheduled_sweep(self) -> None:
        s = self.rt.settings
        hour, minute = s.sweep_hour_minute
        slot = previous_slot(datetime.now(UTC), hour, minute, s.zone)
        await self.run_sweep("schedule", schedule_run_id(slot), slot)

    async def maybe_catch_up(self) -> bool:
        rt = self.rt
        s = rt.settings
        last = await rt._in(rt.aux, rt.aux_sink.last_successful_sweep)
        size = await rt._in(rt.aux, rt.aux_sink.fleet_size)
        now = datetime.now(UTC)
        if not catch_up_due(last, now, timedelta(hours=s.sweep_catch_up_after_hours), size):
            return False
        event(log, "sweep missed; catching up", last_success=last.isoformat() if last else None)
        await self.run_sweep("catch_up", catch_up_run_id(last), now)
        return True

    async def run_sweep(self, trigger: str, run_id: str, requested_at: datetime) -> str | None:
        """Score every known turbine once; returns the final status, None if another process owns it."""
        rt = self.rt
        s = rt.settings
        if not rt.model_ready.is_set():
            await rt.refresh_model()
        register = _read_register_aside(rt)  # overlaps the claim, the load and the windows' gathering
        claimed = await rt._retry(
            "sweep_claim",
            rt.aux_sink.claim_sweep,
            run_id,
            trigger,
            requested_at,
            s.sweep_stale_after_s,
            pool=rt.aux,
        )
        if not claimed:
            event(log, "sweep already claimed; skipping", run_id=run_id, trigger=trigger)
            return None
        t0 = time.perf_counter()
        scorer = rt.holder.scorer
        operational = getattr(rt.holder, "operational", None)
        version = None if scorer is None else scorer.bundle.version

        def routed() -> FleetScorer:
            """Each turbine by the model set its fitted sensors allow (no register: the full model for
            all), with the register read at the start of this sweep and the models taken at ``t0``."""
            if register is not None:
                register.result()  # RegisterHolder.refresh logs a failed read and keeps the last register
            assert scorer is not None
            fleet = rt.routing.scorer()
            if fleet is not None and fleet.full is scorer and fleet.operational is operational:
                return fleet
            return FleetScorer(scorer, operational, rt.registers.register)  # the models changed since t0

        wall = datetime.now(UTC)  # caps each site's data clock; never an as-of time by itself
        self.running = True
        try:
            if scorer is None:
                raise RuntimeError(f"no valid production model: {rt.holder.error}")
            stored = await rt._retry(
                "sweep_load",
                rt.aux_sink.load_all_windows,
                s.telemetry_topic,
                sorted(rt.restored),
                pool=rt.aux,
            )
            load_s = time.perf_counter() - t0
            write = getattr(rt.aux_sink, "write_sweep", None)  # scored and written at once
            write_error: BaseException | None = None
            write_s = 0.0
            loop = asyncio.get_running_loop()
            windows_read: asyncio.Future[Any] = loop.create_future()

            def read_done() -> None:
                if not windows_read.done():
                    windows_read.set_result(None)

            def release() -> None:  # from the aux thread: the windows are no longer read
                loop.call_soon_threadsafe(read_done)

            async with rt.lock:  # owned windows are consistent while the stream waits (~1 s/day)
                if write is None:
                    result = await rt._in(
                        rt.aux,
                        without_cyclic_gc(sweep_fleet),
                        rt.processor,
                        stored,
                        set(rt.restored),
                        routed,
                        wall,
                        run_id,
                    )
                    score_s = time.perf_counter() - t0
                else:
                    task: asyncio.Future[Any] = asyncio.ensure_future(
                        rt._in(
                            rt.aux,
                            without_cyclic_gc(sweep_and_write),
                            rt.processor,
                            stored,
                            set(rt.restored),
                            routed,
                            wall,
                            run_id,
                            write,
                            version,
                            t0,
                            release,
                        )
                    )
                    # the lock is held while the windows are read; the last rows are committed after
                    await asyncio.wait([windows_read, task], return_when=asyncio.FIRST_COMPLETED)
            if write is not None:
                written: WrittenSweep = await task  # the aux thread (and its connection) stays the writer's
                result, score_s, write_error = written.result, written.score_s, written.write_error
            hist_rows, state_rows, counts, site_as_of = (
                result.history_rows,
                result.state_rows,
                result.counts,
                result.site_as_of,
            )
            if write is not None and write_error is None:
                write_s = written.write_s
                rt.metrics.db_write_duration.labels("sweep_finish").observe(write_s)
            else:
                if write_error is not None:  # nothing was committed: the usual write, with its retries
                    event(
                        log,
                        "sweep write failed while scoring; writing the rows again",
                        logging.WARNING,
                        run_id=run_id,
                        error=f"{type(write_error).__name__}: {write_error}"[:500],
                    )
                t_write = time.perf_counter()
                duration_ms = (t_write - t0) * 1000
                await rt._retry(
                    "sweep_finish",
                    without_cyclic_gc(rt.aux_sink.finish_sweep),
                    run_id,
                    "succeeded",
                    len(hist_rows),
                    counts,
                    version,
                    None,
                    duration_ms,
                    hist_rows,
                    state_rows,
                    pool=rt.aux,
                )
                write_s = time.perf_counter() - t_write
            total_ms = (time.perf_counter() - t0) * 1000
            m = rt.metrics
            m.sweeps.labels(trigger, "succeeded").inc()
            m.sweep_duration.observe(total_ms / 1000)
            m.scoring_duration.labels("sweep").observe(score_s)
            m.sweep_last_success.set(time.time())
            for tier, n in counts.items():
                m.turbines_by_tier.labels(tier).set(n)
            event(
                log,
                "scoring",
                operation="sweep",
                trigger=trigger,
                run_id=run_id,
                turbines=len(hist_rows),
                status="ok",
                duration_ms=round(total_ms, 2),
                load_ms=round(load_s * 1000, 2),  # checkpointed windows of partitions not held here
                score_ms=round(score_s * 1000, 2),  # from the start, load included
                write_ms=round(write_s * 1000, 2),  # DB transaction; overlaps the scoring when pipelined
                pipelined=write is not None and write_error is None,
                tier_counts=counts,
                model_version=version,
                data_as_of=_describe_sites(site_as_of, wall),
            )
            return "succeeded"
        except Exception as exc:
            duration_ms = (time.perf_counter() - t0) * 1000
            rt.metrics.sweeps.labels(trigger, "failed").inc()
            event(
                log,
                "scoring",
                logging.ERROR,
                operation="sweep",
                trigger=trigger,
                run_id=run_id,
                turbines=0,
                status="error",
                duration_ms=round(duration_ms, 2),
                error=str(exc)[:500],
            )
            try:
                await rt._in(
                    rt.aux,
                    rt.aux_sink.finish_sweep,
                    run_id,
                    "failed",
                    0,
                    {},
                    version,
                    str(exc)[:2000],
                    duration_ms,
                    [],
                    [],
                )
            except Exception as exc2:  # the run stays 'running' and is retried once stale
                event(log, "could not record failed sweep", logging.ERROR, error=str(exc2)[:300])
            return "failed"
        finally:
            self.running = False
