"""Promotion gate: may a candidate model version replace production?

The candidate's hold-out figures (``metadata.json`` "metrics", written by ``models.pipeline`` /
``python -m models evaluate``; and the event-level backtest in ``<version>/backtest.json`` when the
version has one) are compared with production's, figure by figure, under the rules of
``models/config/gate.yaml``:

* a **limit**: the worst acceptable value whatever production does (``floor`` for a figure where
  higher is better, ``ceiling`` where lower is better);
* a **tolerance**: how much worse than production the candidate may be, in the figure's own unit.

A figure fails when either is broken; the decision names every failed figure with the candidate's
value, production's, and the tolerance or limit it broke. A hold-out figure the candidate lacks fails
(a version without PR-AUC cannot be judged) unless production lacks it too; a backtest figure is judged
only when the candidate has a backtest (n/a when the backtest could not measure it, e.g. no failure in
its fleet). Without a production version (a fresh registry) only the limits apply, and ``promote``
records the verdict without enforcing it (nothing to protect).

:func:`decide` is pure (figures in, decision out). The few file reads (:func:`load_config`,
:func:`version_figures`) and the history record (:func:`record_decision`) are separate functions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_GATE_PATH = Path(__file__).resolve().parent / "config" / "gate.yaml"
BACKTEST_FILE = "backtest.json"
METADATA_FILE = "metadata.json"
MAX_REASON_CHARS = 500

Source = Literal["metrics", "backtest"]
Status = Literal["pass", "fail", "n/a"]


class GateConfigError(ValueError):
    """Invalid gate file; the message names the file and every offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FigureRule(_Strict):
    """One judged figure: where to read it, which way is better, its limit and tolerance."""

    label: str = Field(min_length=1, max_length=80)
    source: Source = "metrics"
    path: str = Field(
        min_length=1, max_length=200, description="path in the source document, keys separated by '/'"
    )
    better: Literal["higher", "lower"]
    floor: float | None = None
    ceiling: float | None = None
    tolerance: float = Field(ge=0)

    @model_validator(mode="after")
    def _limit_matches_direction(self) -> FigureRule:
        if self.better == "higher" and self.ceiling is not None:
            raise ValueError("a figure where higher is better takes a floor, not a ceiling")
        if self.better == "lower" and self.floor is not None:
            raise ValueError("a figure where lower is better takes a ceiling, not a floor")
        return self

    @property
    def limit(self) -> float | None:
        return self.floor if self.better == "higher" else self.ceiling


class CiPreset(_Strict):
    """The small, fast training run of ``make model-gate`` and its committed reference figures."""

    train: dict[str, float | int | str] = Field(default_factory=dict)
    reference: dict[str, float] = Field(default_factory=dict)


class GateConfig(_Strict):
    schema_version: Literal[1] = 1
    figures: dict[str, FigureRule]
    ci: CiPreset = Field(default_factory=CiPreset)

    @model_validator(mode="after")
    def _reference_names_known(self) -> GateConfig:
        unknown = sorted(set(self.ci.reference) - set(self.figures))
        if unknown:
            raise ValueError(f"ci.reference names figures not in 'figures': {unknown}")
        return self


def load_config(path: str | Path | None = None) -> GateConfig:
    """Load and validate a gate YAML (default: the packaged ``models/config/gate.yaml``)."""
    p = Path(path) if path is not None else DEFAULT_GATE_PATH
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise GateConfigError(f"{p}: gate file not found") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise GateConfigError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise GateConfigError(f"{p}: top level must be a mapping")
    try:
        return GateConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "<root>"
            msg = "unknown key (not allowed)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{loc}: {msg}")
        raise GateConfigError(f"{p}: invalid gate configuration: " + "; ".join(problems)) from exc


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionFigures:
    """What the gate reads of one version: its hold-out metrics and its backtest (None = no backtest)."""

    name: str
    metrics: Mapping[str, Any]
    backtest: Mapping[str, Any] | None = None

    @property
    def holdout_source(self) -> str | None:
        """The hold-out's description, numbers normalised ("days=365" and "days=365.0" are the same)."""
        holdout = self.metrics.get("holdout") if isinstance(self.metrics, Mapping) else None
        src = holdout.get("source") if isinstance(holdout, Mapping) else None
        return re.sub(r"(\d)\.0+\b", r"\1", str(src)) if src else None


def _lookup(doc: Mapping[str, Any] | None, path: str) -> float | None:
    node: Any = doc
    for part in path.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    value = float(node)
    return value if math.isfinite(value) else None


def figure_value(rule: FigureRule, figures: VersionFigures) -> float | None:
    doc = figures.metrics if rule.source == "metrics" else figures.backtest
    return _lookup(doc, rule.path)


def reference_figures(config: GateConfig, name: str = "ci reference") -> VersionFigures:
    """The committed ``ci.reference`` figures as a stand-in production (see :func:`decide`)."""
    metrics: dict[str, Any] = {}
    backtest: dict[str, Any] = {}
    for key, value in config.ci.reference.items():
        rule = config.figures[key]
        target = metrics if rule.source == "metrics" else backtest
        node = target
        *parents, leaf = rule.path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return VersionFigures(name=name, metrics=metrics, backtest=backtest or None)


# --------------------------------------------------------------------------------------------------
# Decision (pure)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    figure: str
    label: str
    better: str
    candidate: float | None
    production: float | None
    tolerance: float
    limit: float | None
    status: Status
    reason: str


@dataclass(frozen=True)
class GateDecision:
    candidate: str
    production: str | None
    checks: tuple[Check, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    def summary(self) -> str:
        if self.passed and self.production is None:
            return f"gate passed: {self.candidate} is within every floor and ceiling"
        if self.passed:
            return f"gate passed: {self.candidate} may replace {self.production}"
        return f"gate refused {self.candidate}: " + "; ".join(c.reason for c in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "production": self.production,
            "passed": self.passed,
            "checks": [asdict(c) for c in self.checks],
            "warnings": list(self.warnings),
        }


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _check(name: str, rule: FigureRule, cand: VersionFigures, prod: VersionFigures | None) -> Check:
    c = figure_value(rule, cand)
    p = figure_value(rule, prod) if prod is not None else None
    limit = rule.limit

    def make(status: Status, reason: str) -> Check:
        return Check(name, rule.label, rule.better, c, p, rule.tolerance, limit, status, reason)

    if rule.source == "backtest" and cand.backtest is None:
        return make("n/a", f"{rule.label}: candidate has no {BACKTEST_FILE}; not judged")
    if c is None and rule.source == "backtest":
        return make("n/a", f"{rule.label}: not measured in the candidate's {BACKTEST_FILE} ({rule.path})")
    if c is None and prod is not None and p is None:
        return make("n/a", f"{rule.label}: neither version has it; not judged")
    if c is None:
        where = METADATA_FILE + ' "metrics"' if rule.source == "metrics" else BACKTEST_FILE
        return make("fail", f"{rule.label} ({name}): missing from the candidate's {where} at {rule.path!r}")
    higher = rule.better == "higher"
    if limit is not None and (c < limit if higher else c > limit):
        kind = "floor" if higher else "ceiling"
        return make("fail", f"{rule.label} ({name}): candidate {_fmt(c)} is beyond the {kind} {_fmt(limit)}")
    if p is not None:
        worse_by = (p - c) if higher else (c - p)
        if worse_by > rule.tolerance + 1e-12:
            return make(
                "fail",
                f"{rule.label} ({name}): candidate {_fmt(c)} vs production {_fmt(p)} is worse by "
                f"{_fmt(worse_by)}, more than the tolerance {_fmt(rule.tolerance)}",
            )
        return make("pass", f"{rule.label}: within tolerance of production")
    return make("pass", f"{rule.label}: within the limit (no production figure to compare)")


def decide(config: GateConfig, candidate: VersionFigures, production: VersionFigures | None) -> GateDecision:
    """Judge every figure of ``config`` (pure: no file or registry access)."""
    checks = tuple(_check(name, rule, candidate, production) for name, rule in config.figures.items())
    warnings: list[str] = []
    if production is None:
        warnings.append("no production version: only the floors and ceilings apply")
    elif (
        candidate.holdout_source
        and production.holdout_source
        and (candidate.holdout_source != production.holdout_source)
    ):
        warnings.append(
            f"hold-outs differ (candidate: {candidate.holdout_source}; production: "
            f"{production.holdout_source}): the figures are not measured on the same fleet"
        )
    return GateDecision(
        candidate=candidate.name,
        production=production.name if production is not None else None,
        checks=checks,
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------------------------------
# File side (registry directory)
# --------------------------------------------------------------------------------------------------


class GateInputError(ValueError):
    """A version's figures cannot be read; names the file and the reason."""


def version_figures(version_dir: Path) -> VersionFigures:
    """Read ``metadata.json`` "metrics" and, when present, ``backtest.json`` of one version directory."""
    meta_path = version_dir / METADATA_FILE
    if not version_dir.is_dir():
        raise GateInputError(f"{version_dir}: version directory does not exist")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GateInputError(f"{meta_path}: metadata file missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{meta_path}: metadata is not valid JSON: {exc}") from exc
    metrics = meta.get("metrics") if isinstance(meta, dict) else None
    backtest: Mapping[str, Any] | None = None
    bt_path = version_dir / BACKTEST_FILE
    if bt_path.is_file():
        try:
            loaded = json.loads(bt_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GateInputError(f"{bt_path}: backtest is not valid JSON: {exc}") from exc
        backtest = loaded if isinstance(loaded, dict) else None
    return VersionFigures(
        name=version_dir.name, metrics=metrics if isinstance(metrics, dict) else {}, backtest=backtest
    )


def gate_version(
    registry_dir: str | Path,
    version: str,
    config: GateConfig,
    against: VersionFigures | None = None,
) -> GateDecision:
    """Gate ``version`` of a registry against its production version (or ``against`` when given)."""
    from models.registry import production_version

    reg = Path(registry_dir)
    candidate = version_figures(reg / version)
    production = against
    prod = production_version(reg, required=False) if against is None else None
    note = None
    if prod is not None and prod != version:
        try:
            production = version_figures(reg / prod)
        except GateInputError as exc:  # a broken production must not block the version that replaces it
            note = f"production version {prod} unreadable ({exc}): only the floors and ceilings apply"
    decision = decide(config, candidate, production)
    if prod == version:
        note = f"{version} is the production version: only the floors and ceilings apply"
    return replace(decision, warnings=(note,)) if note else decision


def check_reason(reason: str | None) -> str:
    """The ``--reason`` of a forced promotion: required, one line, printable, bounded."""
    text = (reason or "").strip()
    if not text:
        raise ValueError('--force needs --reason "..." (why the gate is overridden; kept in the history)')
    if len(text) > MAX_REASON_CHARS:
        raise ValueError(f"--reason is {len(text)} characters; at most {MAX_REASON_CHARS}")
    bad = next((ch for ch in text if not ch.isprintable()), None)
    if bad is not None:
        raise ValueError(f"--reason contains a control character {bad!r}; write it on one line")
    return text


def record_decision(
    registry_dir: str | Path,
    decision: GateDecision,
    *,
    forced: bool,
    reason: str | None = None,
    enforced: bool = True,
) -> None:
    """Append the gate's decision to ``HISTORY.jsonl`` (before the promote entry it allows).

    ``decision``: passed | refused | forced (``--force``, with its reason) | first (a refused verdict not
    enforced: no production version to protect).
    """
    from models.registry import _append_history

    verdict = "passed" if decision.passed else "forced" if forced else "refused" if enforced else "first"
    entry: dict[str, Any] = {
        "action": "gate",
        "version": decision.candidate,
        "production": decision.production,
        "decision": verdict,
        "failed": [c.figure for c in decision.failed],
    }
    if forced:
        entry["reason"] = reason
    _append_history(Path(registry_dir), entry)
