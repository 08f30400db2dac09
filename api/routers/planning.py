"""``GET /v1/planning``: the turbines to visit this week, with the energy at stake (JSON or CSV).

Which turbines: tier critical or high, or an expected time to failure within the planning horizon
(``horizons.planning_days`` of ``GET /v1/policy``: the model's probability window, 7 days), ordered by
tier, then time to failure, then score. The selection and the energy estimate are pure functions below;
the handler only reads ``turbine_state`` and ``turbines``.

Energy at stake (an estimate, its assumptions travel with it): rated power x expected downtime, where the
expected downtime is the failure probability within the window x the downtime of an unplanned repair
(``downtime_hours``, 72 h by default). Rated power is an upper bound of what the turbine would produce
(no capacity factor); a turbine without a rated power in the register has no estimate (null).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from api import repository as repo
from api.clock import fleet_clock
from api.deps import DbDep, FreshnessDep, SettingsDep
from api.errors import OrjsonResponse
from api.repository import now_utc
from api.routers.policy import PROBABILITY_WINDOW_DAYS
from api.routes import _clocks
from api.schemas import DataClock, Reason, TierName
from api.validation import SITE_LIST_PATTERN, split_multi

router = APIRouter()

#: Downtime of an unplanned major-component repair (crane, parts, weather window), when not given.
DEFAULT_DOWNTIME_HOURS = 72.0
PLANNING_TIERS = ("critical", "high")
_RANK = {"critical": 0, "high": 1, "moderate": 2, "low": 3, "unknown": 4}
CSV_COLUMNS = (
    "rank",
    "turbine_id",
    "site_id",
    "tier",
    "score",
    "probability",
    "ttf_days",
    "ttf_low_days",
    "ttf_high_days",
    "reason",
    "as_of",
    "stale",
    "rated_power_kw",
    "expected_downtime_hours",
    "energy_at_stake_kwh",
)


class EnergyAssumptions(BaseModel):
    formula: str = Field(
        examples=["rated_power_kw x probability x downtime_hours (probability 1 when unknown)"]
    )
    downtime_hours: float = Field(description="Downtime of one unplanned repair.", examples=[72.0])
    probability_days: float = Field(description="Window of the failure probability.", examples=[7.0])
    notes: list[str]


class PlanningItem(BaseModel):
    rank: int
    turbine_id: str
    site_id: str
    tier: TierName
    score: float
    probability: float | None
    ttf_days: float | None
    ttf_low_days: float | None
    ttf_high_days: float | None
    reasons: list[Reason] = Field(description="Top reasons (at most three); the first is the main one.")
    why: list[Literal["tier", "ttf"]] = Field(
        description="Why it is listed: its tier (critical/high) and/or a TTF within the horizon."
    )
    as_of: datetime | None
    last_event_time: datetime | None
    stale: bool
    rated_power_kw: float | None
    expected_downtime_hours: float | None = Field(description="probability x downtime_hours.")
    energy_at_stake_kwh: float | None = Field(
        description="Estimate: rated power x expected downtime; null without a rated power."
    )


class Planning(DataClock):
    horizon_days: float
    items: list[PlanningItem]
    energy_at_stake_kwh: float = Field(description="Sum over the turbines that have an estimate.")
    turbines_without_estimate: int
    assumptions: EnergyAssumptions
    generated_at: datetime


def selected(row: Mapping[str, Any], horizon_days: float) -> list[str]:
    """Why a turbine belongs to the week's planning ([] = it does not)."""
    why = []
    if row.get("tier") in PLANNING_TIERS:
        why.append("tier")
    ttf = row.get("ttf_days")
    if ttf is not None and ttf <= horizon_days:
        why.append("ttf")
    return why


def energy_estimate(
    rated_power_kw: float | None, probability: float | None, downtime_hours: float
) -> tuple[float, float | None]:
    """(expected downtime in hours, energy at stake in kWh or None without a rated power)."""
    p = 1.0 if probability is None else min(max(float(probability), 0.0), 1.0)
    downtime = p * downtime_hours
    if rated_power_kw is None or rated_power_kw <= 0:
        return downtime, None
    return downtime, rated_power_kw * downtime


def plan(
    rows: Iterable[Mapping[str, Any]], horizon_days: float, downtime_hours: float
) -> list[dict[str, Any]]:
    """The week's planning from current assessments (pure): selected, ordered, ranked, with the estimate."""
    picked = []
    for row in rows:
        why = selected(row, horizon_days)
        if why:
            picked.append((row, why))
    picked.sort(
        key=lambda rw: (
            _RANK.get(str(rw[0]["tier"]), 9),
            rw[0]["ttf_days"] if rw[0]["ttf_days"] is not None else float("inf"),
            -float(rw[0]["score"] or 0.0),
            str(rw[0]["turbine_id"]),
        )
    )
    out = []
    for rank, (row, why) in enumerate(picked, start=1):
        downtime, energy = energy_estimate(row.get("rated_power_kw"), row.get("probability"), downtime_hours)
        out.append(
            {
                **row,
                "rank": rank,
                "why": why,
                "expected_downtime_hours": round(downtime, 2),
                "energy_at_stake_kwh": None if energy is None else round(energy, 1),
            }
        )
    return out


def assumptions(downtime_hours: float) -> dict[str, Any]:
    return {
        "formula": "rated_power_kw x probability x downtime_hours (probability 1 when unknown)",
        "downtime_hours": downtime_hours,
        "probability_days": PROBABILITY_WINDOW_DAYS,
        "notes": [
            "estimate, not a forecast: energy the turbine could not produce if it failed now",
            "rated power is an upper bound (no capacity factor, no wind forecast)",
            f"downtime of one unplanned repair: {downtime_hours:g} h (query parameter downtime_hours)",
            "no estimate for a turbine without a rated power in the fleet register",
        ],
    }


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(items: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        reasons = item.get("reasons") or []
        first = reasons[0] if reasons and isinstance(reasons[0], dict) else {}
        values = {
            **item,
            "reason": first.get("text") or first.get("indicator"),
            "stale": "true" if item.get("stale") else "false",
        }
        writer.writerow([_csv_cell(values.get(c)) for c in CSV_COLUMNS])
    return buf.getvalue()


@router.get(
    "/v1/planning",
    response_model=Planning,
    tags=["fleet"],
    summary="Turbines to visit this week: critical/high or TTF within the horizon, with the energy at stake",
    description=(
        "Current assessments whose tier is critical or high, or whose expected time to failure is within "
        "`days` (default: the policy's `horizons.planning_days`, 7), ordered by tier, TTF, score. "
        "`energy_at_stake_kwh` is an estimate: rated power x failure probability x `downtime_hours` "
        "(assumptions in `assumptions`). `format=csv`: the same rows as CSV (UTF-8, comma, header row)."
    ),
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"},
        503: {"description": "Database unavailable"},
    },
)
async def get_planning(
    db: DbDep,
    settings: SettingsDep,
    freshness: FreshnessDep,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
    days: Annotated[
        float | None, Query(gt=0, le=30, description="TTF horizon in days (default: the policy's, 7)")
    ] = None,
    downtime_hours: Annotated[
        float, Query(gt=0, le=2000, description="Downtime of one unplanned repair (energy estimate)")
    ] = DEFAULT_DOWNTIME_HOURS,
    site: Annotated[
        list[Annotated[str, Field(pattern=SITE_LIST_PATTERN)]] | None,
        Query(description="Site id(s); repeat or comma-separate"),
    ] = None,
) -> Response:
    horizon = days if days is not None else PROBABILITY_WINDOW_DAYS
    sites = split_multi(site)
    fresh = await freshness.get()
    clocks = _clocks(settings, fresh)
    found = await repo.planning_rows(db, PLANNING_TIERS, horizon, sites, clocks)
    items = plan(found, horizon, downtime_hours)
    if format == "csv":
        day = now_utc().strftime("%Y-%m-%d")
        return Response(
            to_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="planning-{day}.csv"'},
        )
    estimated = [i["energy_at_stake_kwh"] for i in items if i["energy_at_stake_kwh"] is not None]
    return OrjsonResponse(
        {
            "horizon_days": horizon,
            "items": items,
            "energy_at_stake_kwh": round(sum(estimated), 1),
            "turbines_without_estimate": len(items) - len(estimated),
            "assumptions": assumptions(downtime_hours),
            **fleet_clock(clocks).as_dict(),
            "generated_at": now_utc(),
        }
    )
