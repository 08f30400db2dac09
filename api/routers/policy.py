"""``GET /v1/policy``: the risk policy the scorer applies, from :mod:`models.policy` (one source of truth).

Why an endpoint: the page draws the tier bands and legend of its charts, and the planning view its horizon,
from what the policy says instead of a copy of the thresholds in JavaScript.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.responses import Response

from api.deps import SettingsDep
from api.errors import OrjsonResponse
from api.settings import ApiSettings
from common.logging import event

if TYPE_CHECKING:
    from models.policy import PolicyConfig

router = APIRouter()
log = logging.getLogger(__name__)

#: The model's probability window: ``probability`` is P(failure within this many days), as the policy's
#: model reason says ("probability of failure within 7 days"). The planning view's "this week".
PROBABILITY_WINDOW_DAYS = 7.0


class PolicyTier(BaseModel):
    name: Literal["critical", "high", "moderate", "low"]
    min_score: float = Field(description="Lowest score of the tier (inclusive).", examples=[80.0])
    max_score: float = Field(description="Upper bound (exclusive, 100 inclusive for critical).")


class PolicyHorizons(BaseModel):
    probability_days: float = Field(
        description="The model's window: probability = P(failure within this many days).", examples=[7.0]
    )
    ttf_horizon_days: float = Field(description="TTF at or beyond this adds nothing to the score.")
    ttf_urgent_days: float = Field(description="TTF at or below this gives the full TTF weight.")
    ttf_weight: float = Field(description="Weight of the TTF urgency in the score (0-1).")
    planning_days: float = Field(
        description="The planning view lists high/critical turbines and those whose TTF is within this."
    )


class PolicyDataQuality(BaseModel):
    max_staleness_minutes: float
    max_missing_share: float
    min_coverage_hours_24h: int
    key_signals: list[str]
    frozen_key_signal: str = Field(description="`unknown` (tier unknown) or `cap` (tier capped).")
    silent_key_signal: str
    cap_score: float = Field(description="A data-quality issue caps the score at this value.")


class Policy(BaseModel):
    source: str = Field(description="Policy file the API read (the scorer reads COCKPIT_POLICY_PATH too).")
    schema_version: int
    tiers: list[PolicyTier] = Field(description="Highest tier first; below the last floor is `low`.")
    unknown: str = Field(description="When a turbine is `unknown` instead of scored.")
    horizons: PolicyHorizons
    data_quality: PolicyDataQuality
    max_reasons: int


def policy_path(settings: ApiSettings) -> Path | None:
    """The policy file: ``COCKPIT_POLICY_PATH`` when the API settings carry it, else the packaged default."""
    value = getattr(settings, "policy_path", None)
    return Path(value) if value else None


@functools.lru_cache(maxsize=4)
def _load(path: Path | None) -> tuple[PolicyConfig, Path]:
    from models.policy import DEFAULT_POLICY_PATH, load_policy  # pandas/numpy: only when asked

    return load_policy(path).config, path or DEFAULT_POLICY_PATH


def load_config(settings: ApiSettings) -> tuple[PolicyConfig, Path]:
    """(validated policy, its file); 503 naming the file and the problem when it cannot be read."""
    from models.policy import PolicyConfigError

    try:
        return _load(policy_path(settings))
    except PolicyConfigError as exc:
        event(log, "policy unavailable", logging.ERROR, reason=str(exc)[:500])
        raise HTTPException(status_code=503, detail=f"policy unavailable: {exc}") from None


def describe(config: PolicyConfig, source: Path) -> dict[str, Any]:
    """The policy as the page and internal tools read it (pure)."""
    t = config.tiers
    sc = config.score
    dq = config.data_quality
    return {
        "source": str(source),
        "schema_version": config.schema_version,
        "tiers": [
            {"name": "critical", "min_score": t.critical, "max_score": 100.0},
            {"name": "high", "min_score": t.high, "max_score": t.critical},
            {"name": "moderate", "min_score": t.moderate, "max_score": t.high},
            {"name": "low", "min_score": 0.0, "max_score": t.moderate},
        ],
        "unknown": (
            "no model output, no telemetry in the feature window, or a hard data-quality issue "
            f"(last reading older than {dq.max_staleness_minutes:g} min, "
            f"more than {dq.max_missing_share:.0%} of values missing, "
            f"readings in fewer than {dq.min_coverage_hours_24h} of the last 24 h, "
            "a key sensor frozen or silent)"
        ),
        "horizons": {
            "probability_days": PROBABILITY_WINDOW_DAYS,
            "ttf_horizon_days": sc.ttf_horizon_days,
            "ttf_urgent_days": sc.ttf_urgent_days,
            "ttf_weight": sc.ttf_weight,
            "planning_days": PROBABILITY_WINDOW_DAYS,
        },
        "data_quality": {
            "max_staleness_minutes": dq.max_staleness_minutes,
            "max_missing_share": dq.max_missing_share,
            "min_coverage_hours_24h": dq.min_coverage_hours_24h,
            "key_signals": list(dq.key_signals),
            "frozen_key_signal": dq.frozen_key_signal,
            "silent_key_signal": dq.silent_key_signal,
            "cap_score": dq.cap_score,
        },
        "max_reasons": config.reasons.max_reasons,
    }


async def _config(settings: SettingsDep) -> tuple[PolicyConfig, Path]:
    # the first call imports models.policy (numpy, pandas) and reads the file: off the event loop
    return await run_in_threadpool(load_config, settings)


PolicyDep = Annotated[tuple["PolicyConfig", Path], Depends(_config)]


@router.get(
    "/v1/policy",
    response_model=Policy,
    tags=["fleet"],
    summary="The risk policy: tier thresholds, horizons, data-quality rules",
    description=(
        "Read from the policy file the scorer applies (`models/config/policy.yaml` unless "
        "`COCKPIT_POLICY_PATH` says otherwise), validated by `models.policy`. The page draws its tier bands "
        "and legend from `tiers`; the planning view uses `horizons.planning_days`."
    ),
    responses={503: {"description": "The policy file is missing or invalid (named in `detail`)"}},
)
async def get_policy(policy: PolicyDep) -> Response:
    config, source = policy
    return OrjsonResponse(describe(config, source), headers={"Cache-Control": "no-cache"})
