"""Event-level backtest figures: alert episodes, lead times, missed failures, per tier (issue 12).

Pure: a table of assessments (one row per turbine per scoring, as the stream writes them) and a
failures table in, plain dicts out. ``scorer.backtest`` produces the assessments by running the
scorer's own streaming code; this module only counts, so every rule below is unit-tested on tiny
hand-made series.

Definitions (the thresholds live in ``models/config/goals.yaml``):

- an assessment is *at or above* ``high`` when its tier is high or critical, at or above ``critical``
  when it is critical (``unknown`` and lower tiers never are);
- assessments while a turbine is down (from a failure to its repair) are excluded: they neither count
  nor join two episodes;
- an *episode* is a run of consecutive (non-excluded) assessments at or above the tier; it is *true*
  when a failure of that turbine falls within ``horizon_days`` after any of its assessments, otherwise
  it is a *false* episode; false episodes are reported per turbine-year of assessed time;
- the *lead time* of a failure is failure time minus the first assessment at or above the tier inside
  ``[failure - horizon_days, failure)`` (and after the previous repair); none there = *missed*;
- PR-AUC: each assessment's score against "a failure within ``label_days``" (assessments too close to
  the end of the data to know their label, and excluded ones, are left out);
- sources: ``model`` (the scorer's tier and score), ``rules`` (the rule baseline of
  ``models.train.baseline_predict`` turned into a tier by the same risk policy, scored by its rule
  ratio), ``oracle`` (:func:`oracle_tiers` on the simulator's true health index).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.metrics import average_precision_score

ALERT_TIERS: tuple[str, ...] = ("high", "critical")
AT_OR_ABOVE: dict[str, frozenset[str]] = {
    "high": frozenset({"high", "critical"}),
    "critical": frozenset({"critical"}),
}
SOURCES: tuple[str, ...] = ("model", "rules", "oracle")
DEFAULT_GOALS_PATH = Path(__file__).resolve().parent / "config" / "goals.yaml"
DAY_S = 86400.0
YEAR_S = 365.25 * DAY_S


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OracleConfig(_Strict):
    high_health: float = Field(default=0.01, gt=0, le=1)
    critical_health: float = Field(default=0.25, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> OracleConfig:
        if self.critical_health < self.high_health:
            raise ValueError("oracle.critical_health must be >= oracle.high_health")
        return self


class GoalThresholds(_Strict):
    min_median_lead_days: float = Field(default=5.0, ge=0)
    max_false_critical_per_turbine_year: float = Field(default=1.0, ge=0)
    max_relative_gap_to_oracle: float = Field(default=0.10, ge=0, le=1)
    better_than_rules: bool = True


class GoalsConfig(_Strict):
    schema_version: int = 1
    horizon_days: float = Field(default=30.0, gt=0)
    label_days: float = Field(default=7.0, gt=0)
    oracle: OracleConfig = Field(default_factory=OracleConfig)
    goals: GoalThresholds = Field(default_factory=GoalThresholds)


def load_goals(path: str | Path | None = None) -> GoalsConfig:
    """The backtest goals (default ``models/config/goals.yaml``); a bad file names itself and the field."""
    p = Path(path) if path else DEFAULT_GOALS_PATH
    if not p.is_file():
        raise FileNotFoundError(f"{p}: backtest goals file not found")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return GoalsConfig.model_validate(doc)
    except (yaml.YAMLError, ValueError) as exc:
        raise ValueError(f"{p}: invalid backtest goals: {exc}") from exc


# ---------------------------------------------------------------------------------------------- tiers


def oracle_tiers(health: Sequence[float] | np.ndarray, oracle: OracleConfig) -> list[str]:
    """Tier of each true-health value: critical >= critical_health, high >= high_health, else low."""
    h = np.nan_to_num(np.asarray(health, dtype=np.float64), nan=0.0)
    return [
        "critical" if v >= oracle.critical_health else "high" if v >= oracle.high_health else "low"
        for v in h.tolist()
    ]


def rule_assessments(
    baseline: Mapping[str, Any], features: pd.DataFrame, policy: Any
) -> tuple[np.ndarray, list[str]]:
    """(rule score, tier) per feature row: the rule baseline stored with the model version
    (``models.train.baseline_predict``: fixed alarm thresholds + SCADA alarms, with the probability and
    TTF their training frequencies imply) turned into a tier by the same risk policy as the model."""
    from models.train import baseline_predict

    pred = baseline_predict(dict(baseline), features)
    tiers = policy.tiers_for_scores(policy.scores(pred["probability"], pred["ttf_q50"]))
    return np.asarray(pred["score"], dtype=np.float64), list(tiers)


# ---------------------------------------------------------------------------------------------- episodes


def episodes(flags: Sequence[bool] | np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive True values as (first index, last index), in order."""
    f = np.asarray(flags, dtype=bool)
    if not f.any():
        return []
    d = np.diff(np.concatenate(([0], f.astype(np.int8), [0])))
    starts = np.nonzero(d == 1)[0]
    ends = np.nonzero(d == -1)[0] - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _secs(values: Any) -> np.ndarray:
    ts = pd.to_datetime(pd.Series(values), utc=True)
    return ts.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").astype(np.int64) / 1e6


def _failure_table(failures: pd.DataFrame) -> pd.DataFrame:
    """turbine_id, failure_s, repair_s, component (``component`` or the simulator's ``mode``)."""
    if failures is None or failures.empty:
        return pd.DataFrame({"turbine_id": [], "failure_s": [], "repair_s": [], "component": []})
    comp = failures["component"] if "component" in failures else failures.get("mode", "")
    out = pd.DataFrame(
        {
            "turbine_id": failures["turbine_id"].astype(str).to_numpy(),
            "failure_s": _secs(failures["failure_time"]),
            "repair_s": _secs(failures["repair_time"]),
            "component": pd.Series(comp).astype(str).to_numpy()
            if not isinstance(comp, str)
            else [comp] * len(failures),
        }
    )
    return out.sort_values(["turbine_id", "failure_s"], kind="stable").reset_index(drop=True)


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _iso(s: float) -> str:
    return pd.Timestamp(s, unit="s", tz="UTC").isoformat()


def backtest_report(
    assessments: pd.DataFrame,
    failures: pd.DataFrame,
    goals: GoalsConfig | None = None,
    sources: Sequence[str] = SOURCES,
) -> dict[str, Any]:
    """All figures of the backtest.

    ``assessments``: ``turbine_id``, ``time`` (UTC) and, per source, ``<source>_tier`` and
    ``<source>_score`` (a source without its columns is skipped). ``failures``: ``turbine_id``,
    ``failure_time``, ``repair_time`` (and ``component`` or ``mode``).
    """
    g = goals or GoalsConfig()
    horizon = g.horizon_days * DAY_S
    label = g.label_days * DAY_S
    srcs = [s for s in sources if f"{s}_tier" in assessments.columns]
    a = assessments.assign(_t=_secs(assessments["time"]), turbine_id=assessments["turbine_id"].astype(str))
    a = a.sort_values(["turbine_id", "_t"], kind="stable").reset_index(drop=True)
    fails = _failure_table(failures)
    per_source: dict[str, dict[str, Any]] = {
        s: {t: {"leads": [], "missed": 0, "episodes": 0, "false": 0} for t in ALERT_TIERS} for s in srcs
    }
    pr_y: list[np.ndarray] = []
    pr_scores: dict[str, list[np.ndarray]] = {s: [] for s in srcs}
    details: list[dict[str, Any]] = []
    span_s = 0.0
    end_all = float(a["_t"].max()) if len(a) else 0.0
    for tid, grp in a.groupby("turbine_id", sort=True):
        t = grp["_t"].to_numpy()
        t_first, t_last = float(t[0]), float(t[-1])
        span_s += t_last - t_first
        ft = fails[fails["turbine_id"] == tid]
        f_s, r_s = ft["failure_s"].to_numpy(), ft["repair_s"].to_numpy()
        excluded = np.zeros(len(t), dtype=bool)
        for f, r in zip(f_s.tolist(), r_s.tolist(), strict=True):
            excluded |= (t >= f) & (t < r)
        # label of each assessment: next failure strictly after it within label_days
        nxt = np.searchsorted(f_s, t, side="right")
        has = nxt < len(f_s)
        ttf = np.full(len(t), np.inf)
        ttf[has] = f_s[nxt[has]] - t[has]
        y = ttf <= label
        known = (y | (t_last - t >= label)) & ~excluded
        pr_y.append(y[known])
        for s in srcs:
            pr_scores[s].append(grp[f"{s}_score"].to_numpy(dtype=np.float64)[known])
        # failures inside the assessed span
        in_span = [(i, f) for i, f in enumerate(f_s.tolist()) if t_first < f <= t_last]
        fail_rows: dict[int, dict[str, Any]] = {
            i: {
                "turbine_id": tid,
                "failure_time": _iso(f),
                "component": str(ft["component"].iloc[i]),
                "lead_days": {s: {} for s in srcs},
            }
            for i, f in in_span
        }
        for s in srcs:
            tiers = grp[f"{s}_tier"].astype(str).to_numpy()
            for tier in ALERT_TIERS:
                flag = np.isin(tiers, list(AT_OR_ABOVE[tier])) & ~excluded
                acc = per_source[s][tier]
                for i0, i1 in episodes(flag):
                    acc["episodes"] += 1
                    lo, hi = t[i0], t[i1] + horizon
                    if not ((f_s >= lo) & (f_s <= hi)).any():
                        acc["false"] += 1
                for i, f in in_span:
                    prev_repair = float(r_s[i - 1]) if i > 0 else -math.inf
                    win = (t >= max(f - horizon, prev_repair)) & (t < f) & flag
                    if win.any():
                        lead = (f - float(t[np.argmax(win)])) / DAY_S
                        acc["leads"].append(lead)
                        fail_rows[i]["lead_days"][s][tier] = round(lead, 3)
                    else:
                        acc["missed"] += 1
                        fail_rows[i]["lead_days"][s][tier] = None
        details.extend(fail_rows[i] for i, _ in in_span)
    turbine_years = span_s / YEAR_S
    y_all = np.concatenate(pr_y) if pr_y else np.zeros(0, dtype=bool)
    out_sources: dict[str, Any] = {}
    for s in srcs:
        sc = np.concatenate(pr_scores[s]) if pr_scores[s] else np.zeros(0)
        ok = np.isfinite(sc)
        pr = (
            float(average_precision_score(y_all[ok], sc[ok]))
            if ok.any() and 0 < y_all[ok].sum() < ok.sum()
            else None
        )
        tiers_out = {}
        for tier in ALERT_TIERS:
            acc = per_source[s][tier]
            leads = acc["leads"]
            tiers_out[tier] = {
                "detected": len(leads),
                "missed": acc["missed"],
                "median_lead_days": _median(leads),
                "mean_lead_days": float(np.mean(leads)) if leads else None,
                "episodes": acc["episodes"],
                "false_episodes": acc["false"],
                "false_episodes_per_turbine_year": acc["false"] / turbine_years
                if turbine_years > 0
                else None,
            }
        out_sources[s] = {"pr_auc": pr, "tiers": tiers_out}
    report: dict[str, Any] = {
        "definitions": {
            "horizon_days": g.horizon_days,
            "label_days": g.label_days,
            "oracle": g.oracle.model_dump(),
            "episode": "consecutive assessments at or above the tier (down time excluded); false when no "
            f"failure follows within {g.horizon_days:g} days of any of its assessments",
            "lead_time": f"failure time minus the first assessment at or above the tier within "
            f"{g.horizon_days:g} days before it; none = missed",
            "oracle_definition": "tier from thresholds on the simulator's true health index (critical >= "
            f"{g.oracle.critical_health:g}, high >= {g.oracle.high_health:g}) at the same assessment "
            "times, same episode logic",
        },
        "turbines": int(a["turbine_id"].nunique()),
        "turbine_years": round(turbine_years, 4),
        "assessments": len(a),
        "data_end": _iso(end_all) if len(a) else None,
        "failures": len(details),
        "sources": out_sources,
        "failures_detail": details,
    }
    report["goals"] = check_goals(report, g)
    return report


# ---------------------------------------------------------------------------------------------- goals


def _get(report: Mapping[str, Any], source: str, tier: str, key: str) -> Any:
    return report.get("sources", {}).get(source, {}).get("tiers", {}).get(tier, {}).get(key)


def check_goals(report: Mapping[str, Any], goals: GoalsConfig | None = None) -> list[dict[str, Any]]:
    """Each goal of ``goals.yaml`` as ``{goal, value, target, met}`` (met None: not measurable here)."""
    g = (goals or GoalsConfig()).goals
    out: list[dict[str, Any]] = []
    srcs = report.get("sources", {})

    def add(goal: str, value: Any, target: str, met: bool | None) -> None:
        out.append({"goal": goal, "value": value, "target": target, "met": met})

    for tier in ALERT_TIERS:
        v = _get(report, "model", tier, "median_lead_days")
        add(
            f"median first {tier} warning before failure (days)",
            v,
            f">= {g.min_median_lead_days:g}",
            None if v is None and not report.get("failures") else (v or 0.0) >= g.min_median_lead_days,
        )
    v = _get(report, "model", "critical", "false_episodes_per_turbine_year")
    add(
        "false critical episodes per turbine-year",
        v,
        f"<= {g.max_false_critical_per_turbine_year:g}",
        None if v is None else v <= g.max_false_critical_per_turbine_year,
    )
    gap = g.max_relative_gap_to_oracle
    if "oracle" in srcs:
        m, o = srcs.get("model", {}).get("pr_auc"), srcs["oracle"].get("pr_auc")
        add(
            f"PR-AUC within {gap:.0%} of the oracle",
            m,
            f">= {(1 - gap) * o:.3f} (oracle {o:.3f})" if o is not None else "oracle n/a",
            None if m is None or o is None else m >= (1 - gap) * o,
        )
        for tier in ALERT_TIERS:
            mv, ov = (_get(report, s, tier, "median_lead_days") for s in ("model", "oracle"))
            add(
                f"median {tier} lead time within {gap:.0%} of the oracle",
                mv,
                f">= {(1 - gap) * ov:.1f} (oracle {ov:.1f})" if ov is not None else "oracle n/a",
                None if ov is None else (mv or 0.0) >= (1 - gap) * ov,
            )
    if g.better_than_rules and "rules" in srcs:
        worse = rules_comparison(report)
        add(
            "better than the rules on every figure",
            ", ".join(worse) or "none worse",
            "no figure worse, PR-AUC higher",
            not worse,
        )
    return out


def rules_comparison(report: Mapping[str, Any]) -> list[str]:
    """Names of the figures on which the model is worse than the rules (PR-AUC must be strictly higher)."""
    srcs = report.get("sources", {})
    worse: list[str] = []
    m_pr, r_pr = srcs.get("model", {}).get("pr_auc"), srcs.get("rules", {}).get("pr_auc")
    if r_pr is not None and (m_pr is None or m_pr <= r_pr):
        worse.append("PR-AUC")
    for tier in ALERT_TIERS:
        md, rd = (_get(report, s, tier, "detected") or 0 for s in ("model", "rules"))
        if md < rd:
            worse.append(f"{tier} failures warned")
        ml, rl = (_get(report, s, tier, "median_lead_days") for s in ("model", "rules"))
        if rl is not None and (ml is None or ml < rl):
            worse.append(f"median {tier} lead time")
        # a tier the rules never warn a failure on (they have no "critical"): its false-alarm count is
        # no yardstick (silence has none), the model already does better there by warning at all
        mf, rf = (_get(report, s, tier, "false_episodes_per_turbine_year") for s in ("model", "rules"))
        if rd == 0 and md > 0:
            continue
        if mf is not None and rf is not None and mf > rf:
            worse.append(f"false {tier} episodes")
    return worse


# ---------------------------------------------------------------------------------------------- output


def _f(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """Rows of the backtest table: source, tier, warned/failures, median and mean lead, false episodes."""
    rows = []
    n = report.get("failures", 0)
    for s, d in report.get("sources", {}).items():
        for tier in ALERT_TIERS:
            t = d["tiers"][tier]
            rows.append(
                [
                    s,
                    tier,
                    f"{t['detected']}/{n}",
                    _f(t["median_lead_days"]),
                    _f(t["mean_lead_days"]),
                    str(t["false_episodes"]),
                    _f(t["false_episodes_per_turbine_year"], 2),
                    _f(d.get("pr_auc"), 3),
                ]
            )
    return rows


TABLE_HEADER = [
    "source",
    "tier",
    "failures warned",
    "median lead (d)",
    "mean lead (d)",
    "false episodes",
    "false / turbine-year",
    "PR-AUC",
]


def markdown_table(report: Mapping[str, Any]) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report)]
    return "\n".join(lines)


def goals_markdown(report: Mapping[str, Any]) -> str:
    lines = ["| Goal | Value | Target | Met |", "|---|---|---|---|"]
    for g in report.get("goals", []):
        met = "n/a" if g["met"] is None else ("yes" if g["met"] else "NO")
        v = g["value"]
        shown = _f(v, 3) if isinstance(v, float) or v is None else str(v)
        lines.append(f"| {g['goal']} | {shown} | {g['target']} | {met} |")
    return "\n".join(lines)


def card_section(report: Mapping[str, Any], plot: str | None = None) -> str:
    """The model card's "Event-level backtest" section (figures and goals, each met or not)."""
    d = report.get("definitions", {})
    src = report.get("source", "?")
    pic = f"\n![lead times]({plot})\n" if plot else ""
    return f"""## Event-level backtest
Replayed through the scorer's streaming code (`python -m models backtest`): {src};
{report.get("turbines", "?")} turbines, {_f(report.get("turbine_years"), 2)} turbine-years,
{report.get("assessments", "?")} assessments, {report.get("failures", "?")} failures.
Episode: {d.get("episode", "?")}.
Oracle: {d.get("oracle_definition", "?")}. Rules: the rule baseline above through the same risk policy.

{markdown_table(report)}

### Goals
{goals_markdown(report)}
{pic}"""


def plot_lead_times(report: Mapping[str, Any], path: Path) -> None:
    """Lead time of each failure per source and tier (missed failures drawn at 0 with an x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels: list[str] = []
    details = report.get("failures_detail", [])
    for row, (s, tier) in enumerate((s, t) for s in report.get("sources", {}) for t in ALERT_TIERS):
        labels.append(f"{s} {tier}")
        leads = [f["lead_days"].get(s, {}).get(tier) for f in details]
        got = [v for v in leads if v is not None]
        missed = sum(v is None for v in leads)
        jitter = np.linspace(-0.15, 0.15, max(len(got), 1))[: len(got)]
        ax.scatter(got, row + jitter, s=12, alpha=0.7)
        if missed:
            ax.scatter([0.0] * missed, [row] * missed, marker="x", color="red", s=25)
        med = _get(report, s, tier, "median_lead_days")
        if med is not None:
            ax.plot([med, med], [row - 0.3, row + 0.3], color="black")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("days of warning before failure (bar: median, x: missed)")
    ax.set_title("Event-level backtest - lead times")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
