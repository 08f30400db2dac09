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

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from common.contracts import TIERS, SweepCommand
from common.logging import event
from models.features import FeatureWindow
from scorer.processing import assessment_rows
from scorer.schedule import catch_up_due, catch_up_run_id, previous_slot, schedule_run_id

if TYPE_CHECKING:
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer")


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


def _describe_sites(site_as_of: dict[str, datetime], wall: datetime, limit: int = 20) -> dict[str, Any]:
    """Log field: each site's data time and how far behind the wall clock it is (first ``limit``)."""
    return {
        site: {"as_of": t.isoformat(), "behind_wall_s": round((wall - t).total_seconds())}
        for site, t in sorted(site_as_of.items())[:limit]
    }


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
        await rt.refresh_register()
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
        fleet = rt.routing.scorer()  # each turbine by the model set its fitted sensors allow
        version = None if scorer is None else scorer.bundle.version
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
            async with rt.lock:  # owned windows are consistent while the stream waits (~1 s/day)
                owned = set(rt.restored)

                def compute() -> tuple[list[Any], list[Any], dict[str, int], dict[str, datetime]]:
                    entries: list[tuple[str, str, FeatureWindow]] = []
                    seen: set[str] = set()
                    for tid, st in rt.processor.turbines.items():
                        if st.window.last_event_ts is not None:
                            entries.append((tid, st.site_id, st.window))
                            seen.add(tid)
                    for w in stored:
                        if w.turbine_id in seen or w.partition in owned:
                            continue
                        win = FeatureWindow.from_bytes(w.state)
                        if win.last_event_ts is None:
                            continue
                        entries.append((w.turbine_id, w.site_id, win))
                        seen.add(w.turbine_id)
                    plan = plan_sweep(
                        [(tid, site, win.last_event_ts or 0.0) for tid, site, win in entries], wall
                    )
                    windows = {tid: (site, win) for tid, site, win in entries}
                    hist_rows, state_rows = [], []
                    counts = dict.fromkeys(TIERS, 0)
                    for as_of, tids in plan.groups.items():
                        items = [(tid, windows[tid][1]) for tid in tids]
                        for a in (fleet or scorer).score(items, now=as_of):
                            site, win = windows[a.turbine_id]
                            h, st_row = assessment_rows(a, "sweep", site, win.as_of, as_of, run_id)
                            hist_rows.append(h)
                            state_rows.append(st_row)
                            counts[a.tier] = counts.get(a.tier, 0) + 1
                    return hist_rows, state_rows, counts, plan.site_as_of

                hist_rows, state_rows, counts, site_as_of = await rt._in(rt.aux, compute)
            score_s = time.perf_counter() - t0
            duration_ms = (time.perf_counter() - t0) * 1000
            await rt._retry(
                "sweep_finish",
                rt.aux_sink.finish_sweep,
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
