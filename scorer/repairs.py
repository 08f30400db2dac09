"""Repairs: a turbine just repaired is judged on its condition since the repair (issue 12, point 6).

When the maintenance team records an intervention as done with finding ``failure_confirmed`` or
``preventive_replacement`` (``POST /v1/turbines/{id}/interventions``), the API publishes a
:class:`RepairCommand` on the scorer's command topic. The worker consuming it:

1. drops from the turbine's feature window every hour before ``done_at`` (event/data time) with
   :meth:`models.features.FeatureWindow.drop_before`; readings from before the repair that arrive later
   are ignored too (the window keeps the repair time);
2. rescores the turbine at once (as of its newest event, like the stream) and writes that assessment
   (``score_history`` trigger ``manual`` + ``turbine_state``) with a first reason saying
   "repaired on <done_at> (<component>): history before the repair ignored";
3. checkpoints at once, so a restart restores the repaired window.

Idempotence: ``drop_before`` with a time not after the window's repair time changes nothing, so a replay of
the command topic (or a command replayed after a restore from a checkpoint that already holds the repair)
neither clears post-repair data nor writes a second row (``score_history`` keys on time + trigger). An
older repair than the one applied is a no-op; a newer one moves the floor forward.

Why here and not in the stream path: a repair is rare and acts on one turbine; the stream stays as it is.
Limitation: the command topic has one partition, so the worker that consumes it applies the repair; with
several workers, a turbine held in another worker's memory is repaired there only after that worker's next
restore of it (docs/scorer.md).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from common.contracts import REPAIR_FINDINGS, RepairCommand  # noqa: F401  (re-exported)
from common.logging import event

if TYPE_CHECKING:
    from models.features import FeatureWindow
    from models.scoring import RiskAssessment
    from scorer.runtime import ScorerRuntime

log = logging.getLogger("scorer")

REPAIR_INDICATOR = "repair"


def command_name(raw: bytes) -> str | None:
    """The ``command`` field of a command-topic record (None when it is not a JSON object with one)."""
    try:
        data = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return None
    value = data.get("command") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def repair_reason(done_at: datetime, component: str | None) -> dict[str, Any]:
    """The reason that says why a just-repaired turbine's score dropped (first reason of the assessment)."""
    when = done_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    what = f" ({component})" if component else ""
    return {
        "indicator": REPAIR_INDICATOR,
        "text": f"repaired on {when}{what}: history before the repair ignored",
        "value": done_at.astimezone(UTC).isoformat(),
        "normal_range": None,
    }


def annotate(assessment: RiskAssessment, done_at: datetime, component: str | None) -> RiskAssessment:
    """Put the repair reason first (once) and record the repair time in the data quality."""
    reasons = [r for r in assessment.reasons if r.get("indicator") != REPAIR_INDICATOR]
    assessment.reasons = [repair_reason(done_at, component), *reasons]
    assessment.data_quality["repaired_at"] = done_at.astimezone(UTC).isoformat()
    return assessment


def _window_seconds() -> float:
    """Span of a feature window; imported on use (the API imports this module and does not load numpy)."""
    from models.features import BIN_SECONDS, N_BINS

    return float(N_BINS * BIN_SECONDS)


def annotate_from_window(assessment: RiskAssessment, window: FeatureWindow) -> RiskAssessment:
    """Stream path: while the window still reaches back to the repair (its 7 days), the reason says so.

    For the stream scoring loop (``scorer/processing.py``), one call per assessment; no-op without a repair.
    """
    floor = window.repaired_before
    if floor is None or assessment.as_of is None:
        return assessment
    if assessment.as_of.timestamp() - floor > _window_seconds():
        return assessment
    return annotate(assessment, datetime.fromtimestamp(floor, UTC), None)


class RepairHandler:
    """Applies repair commands to one worker's runtime (its windows, lock, sinks and pools)."""

    def __init__(self, runtime: ScorerRuntime) -> None:
        self.rt = runtime

    async def handle_raw(self, raw: bytes) -> None:
        """Parse and apply; a bad command is logged and skipped (never raises: the agent would ack it)."""
        try:
            cmd = RepairCommand.model_validate_json(raw)
        except Exception as exc:
            event(log, "ignoring invalid repair command", logging.WARNING, error=str(exc)[:300])
            return
        try:
            await self.apply(cmd)
        except Exception as exc:
            event(
                log,
                "repair command failed",
                logging.ERROR,
                turbine_id=cmd.turbine_id,
                intervention_id=str(cmd.intervention_id),
                error=f"{type(exc).__name__}: {str(exc)[:400]}",
            )

    async def apply(self, cmd: RepairCommand) -> str:
        """Returns what happened: ``applied``, ``already_applied`` or ``unknown_turbine``."""
        from scorer.processing import BatchOutcome, assessment_rows

        rt = self.rt
        t0 = time.perf_counter()
        tid = cmd.turbine_id
        done_ts = cmd.done_at.timestamp()
        if tid not in rt.processor.turbines:  # not in memory: restore its checkpoint first
            stored, marks = await rt._retry("restore", rt.sink.load_turbines, [tid])
            async with rt.lock:  # into the worker's window store, like the stream's restores
                if tid not in rt.processor.turbines:
                    await rt._in(rt.compute, rt.processor.restore, stored, marks)
        async with rt.lock:
            st = rt.processor.turbines.get(tid)
            if st is None:
                event(
                    log,
                    "repair command for a turbine this scorer has no window of",
                    logging.WARNING,
                    turbine_id=tid,
                    intervention_id=str(cmd.intervention_id),
                )
                return "unknown_turbine"
            window = st.window
            before = window.repaired_before
            if before is not None and before >= done_ts:
                outcome = "already_applied"
                hours = 0
            else:
                hours = window.drop_before(done_ts)
                rt.processor.dirty.add(tid)
                outcome = "applied"
            out = BatchOutcome()
            last_ts = window.last_event_ts
            # Rescore (and say why) only when the repair reaches into the window: a repair recorded long
            # after the fact changes nothing the current assessment is based on.
            if outcome == "applied" and last_ts is not None and done_ts > last_ts - _window_seconds():
                as_of = window.as_of
                assert as_of is not None
                fleet = rt.routing.scorer()
                scorer = rt.holder.scorer
                assessments: list[Any] = []
                if fleet is not None:
                    assessments = await rt._in(rt.compute, fleet.score, [(tid, window)], None)
                elif scorer is not None:
                    assessments = await rt._in(rt.compute, scorer.score, [(tid, window)], as_of)
                for a in assessments:
                    annotate(a, cmd.done_at, cmd.component)
                    hist, state = assessment_rows(a, "manual", st.site_id, as_of, as_of)
                    out.history_rows.append(hist)
                    out.state_rows.append(state)
                    out.tiers[tid] = a.tier
                    st.last_tier = a.tier
                    out.turbines_scored += 1
                    out.model_version = a.model_version or None
        if out.state_rows:
            await rt._retry("repair_write", rt.sink.write_batch, out, (time.perf_counter() - t0) * 1000)
        if outcome == "applied":
            await rt.checkpoint()  # the repaired window is durable before the command is acknowledged
        event(
            log,
            "repair applied" if outcome == "applied" else "repair already applied",
            turbine_id=tid,
            intervention_id=str(cmd.intervention_id),
            done_at=cmd.done_at.isoformat(),
            finding=cmd.finding,
            hours_cleared=hours,
            tier=out.tiers.get(tid),
            duration_ms=round((time.perf_counter() - t0) * 1000, 2),
        )
        return outcome
