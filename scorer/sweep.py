"""Fleet sweeps: score every known turbine once (daily schedule, catch-up, on-demand command).

Why a module of its own: the sweep reads the runtime's windows under its lock but has its own
rules (claiming a run in the database, data time of each site, one row per turbine per run), and the
stream path must not grow with them.
"""

from __future__ import annotations

import logging
import time
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
        version = None if scorer is None else scorer.bundle.version
        as_of = datetime.now(UTC)  # full precision: two sweeps in one second must not collide
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

                def compute() -> tuple[list[Any], list[Any], dict[str, int]]:
                    items: list[tuple[str, FeatureWindow]] = []
                    meta: dict[str, tuple[str, datetime | None]] = {}
                    for tid, st in rt.processor.turbines.items():
                        if st.window.last_event_ts is not None:
                            items.append((tid, st.window))
                            meta[tid] = (st.site_id, st.window.as_of)
                    for w in stored:
                        if w.turbine_id in meta or w.partition in owned:
                            continue
                        win = FeatureWindow.from_bytes(w.state)
                        if win.last_event_ts is None:
                            continue
                        items.append((w.turbine_id, win))
                        meta[w.turbine_id] = (w.site_id, win.as_of)
                    assessments = scorer.score(items, now=as_of)
                    hist_rows, state_rows = [], []
                    counts = dict.fromkeys(TIERS, 0)
                    for a in assessments:
                        site, last = meta[a.turbine_id]
                        h, st_row = assessment_rows(a, "sweep", site, last, as_of, run_id)
                        hist_rows.append(h)
                        state_rows.append(st_row)
                        counts[a.tier] = counts.get(a.tier, 0) + 1
                    return hist_rows, state_rows, counts

                hist_rows, state_rows, counts = await rt._in(rt.aux, compute)
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
