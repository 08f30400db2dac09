"""``GET /v1/models``: the model registry as the API can read it (lineage, issue 12).

The versions with their hold-out figures, which one is in production and since when (the registry's
``HISTORY.jsonl``), and the production fleet calibration. The registry directory is
``COCKPIT_REGISTRY_DIR`` (:class:`common.settings.RegistrySettings`, the scorer's setting); the layout is
read through :mod:`models.registry` and :mod:`models.calibration_registry` (imported on first call: they
pull numpy/scikit-learn, which the API does not need otherwise). 503 naming the directory when it cannot
be read.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import SettingsDep
from common.logging import event

router = APIRouter()
log = logging.getLogger(__name__)

#: Hold-out figures copied from each version's metadata (the rest of "metrics" stays in the model card).
FIGURES = (
    "pr_auc",
    "recall_at_precision_0.9",
    "brier",
    "ttf_mae_le14_days",
    "ttf_interval_coverage_le14",
)
#: History entries returned (newest last): promotions, rollbacks and gate decisions.
HISTORY_LIMIT = 20


class ModelFigures(BaseModel):
    pr_auc: float | None = None
    recall_at_precision_0_9: float | None = Field(default=None, alias="recall_at_precision_0.9")
    brier: float | None = None
    ttf_mae_le14_days: float | None = None
    ttf_interval_coverage_le14: float | None = None

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class ModelVersion(BaseModel):
    version: str
    created_at: str | None = Field(description="When the version was trained (UTC, ISO 8601).")
    production: bool
    promoted_at: str | None = Field(description="Last time it was made production (promote or rollback).")
    holdout: str | None = Field(description="The hold-out fleet its figures were measured on.")
    model: ModelFigures = Field(description="Hold-out figures of the model.")
    baseline: ModelFigures = Field(description="Same figures of the rule baseline on the same hold-out.")
    backtest: bool = Field(description="The version has an event-level backtest (backtest.json).")


class HistoryEntry(BaseModel):
    at: str | None
    action: str
    version: str | None
    previous: str | None = None
    decision: str | None = Field(default=None, description="Gate entries: passed | refused | forced.")
    reason: str | None = Field(default=None, description="Gate entries: why the gate was overridden.")


class Models(BaseModel):
    registry: str = Field(description="Registry directory the API read (COCKPIT_REGISTRY_DIR).")
    production: str | None = Field(description="Production version (None: nothing promoted yet).")
    promoted_at: str | None = Field(description="When the production version was made production.")
    calibration_version: str | None = Field(description="Production fleet calibration (None: none).")
    versions: list[ModelVersion] = Field(description="Oldest first.")
    history: list[HistoryEntry] = Field(description=f"Last {HISTORY_LIMIT} registry events, oldest first.")


def _figures(d: Any) -> ModelFigures:
    d = d if isinstance(d, dict) else {}
    vals = {k: d.get(k) for k in FIGURES}
    ok = {k: float(v) for k, v in vals.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return ModelFigures.model_validate({k: v if math.isfinite(v) else None for k, v in ok.items()})


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def read_models(registry_dir: Path) -> dict[str, Any]:
    """The registry's content (blocking file reads: run in the threadpool). 503 when unreadable."""
    from models.calibration_registry import CalibrationRegistryError, production_calibration_version
    from models.registry import list_versions, production_version, read_history

    reg = Path(registry_dir)
    if not reg.is_dir() or not os.access(reg, os.R_OK | os.X_OK):
        what = "does not exist" if not reg.exists() else "is not a readable directory"
        raise HTTPException(
            status_code=503,
            detail=f"model registry unavailable: {reg.resolve()} {what} (COCKPIT_REGISTRY_DIR)",
        )
    try:
        rows = list_versions(reg)
        prod = production_version(reg, required=False)
        history = read_history(reg)
        try:
            calibration = production_calibration_version(reg)
        except CalibrationRegistryError:
            calibration = None
    except (OSError, ValueError) as exc:  # permissions, a torn HISTORY line (JSONDecodeError)
        raise HTTPException(
            status_code=503,
            detail=f"model registry unavailable: {reg.resolve()}: {type(exc).__name__}: {exc}",
        ) from None
    promoted: dict[str, str] = {}
    for h in history:
        if isinstance(h, dict) and h.get("action") in ("promote", "rollback") and h.get("version"):
            promoted[str(h["version"])] = str(h.get("at"))
    versions = []
    for r in rows:
        metrics: dict[str, Any] = r["metrics"] if isinstance(r.get("metrics"), dict) else {}
        holdout: dict[str, Any] = metrics["holdout"] if isinstance(metrics.get("holdout"), dict) else {}
        versions.append(
            ModelVersion(
                version=r["version"],
                created_at=_str(r.get("created_at")),
                production=bool(r.get("production")),
                promoted_at=promoted.get(r["version"]),
                holdout=_str(holdout.get("source")),
                model=_figures(metrics.get("model")),
                baseline=_figures(metrics.get("baseline")),
                backtest=(reg / r["version"] / "backtest.json").is_file(),
            )
        )
    entries = [
        HistoryEntry(
            at=_str(h.get("at")),
            action=str(h.get("action")),
            version=_str(h.get("version")),
            previous=_str(h.get("previous")),
            decision=_str(h.get("decision")),
            reason=_str(h.get("reason")),
        )
        for h in history[-HISTORY_LIMIT:]
        if isinstance(h, dict)
    ]
    return Models(
        registry=str(reg),
        production=prod,
        promoted_at=promoted.get(prod) if prod else None,
        calibration_version=calibration,
        versions=versions,
        history=entries,
    ).model_dump(by_alias=True)


@router.get(
    "/v1/models",
    response_model=Models,
    tags=["models"],
    summary="Model versions, their hold-out figures, the production version and calibration",
    responses={503: {"description": "The registry directory cannot be read (named in the detail)."}},
)
async def models(settings: SettingsDep) -> dict[str, Any]:
    try:
        return await run_in_threadpool(read_models, settings.registry_dir)
    except HTTPException as exc:
        event(log, "model registry unavailable", logging.ERROR, reason=str(exc.detail)[:500])
        raise
