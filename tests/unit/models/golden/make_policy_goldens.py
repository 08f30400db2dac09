"""Generate the policy golden files ``tests/unit/models/golden/policy_*.json`` (re-runnable).

    .venv/bin/python -m tests.unit.models.golden.make_policy_goldens          # rewrite the goldens
    .venv/bin/python -m tests.unit.models.golden.make_policy_goldens --check  # compare, write nothing

What they pin: for deterministic inputs (seeded random draws plus hand-written cases), the score, tier
and exact reasons list (indicator, text, value, range, order) that ``RiskPolicy.assess_batch`` gives.
They were first written on 2026-11-29 from the code BEFORE the per-turbine reference path
(``RiskPolicy.assess`` + ``build_reasons``) was removed, and at that time every case was also checked
against that reference (the ``_reference`` cross-check below runs whenever the reference exists).
Regenerate them only for an intended change of policy behaviour, and review the diff.

Each file holds one policy configuration, one set of normal ranges and its cases. Features are given
for the reason indicators only (every other feature is 0.0: the policy never reads them). Non-finite
numbers are written as JSON ``NaN`` / ``Infinity`` (Python's ``json`` reads them back); ``null`` for a
probability or TTF means "no value" and is passed to the policy as NaN.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, KEY_SIGNALS, NBM_TARGETS
from models.policy import PolicyConfig, ReasonTable, RiskPolicy, load_policy

HERE = Path(__file__).resolve().parent
FIXED = (
    "vibration_mm_s__max_24h",
    "pitch_hydraulic_pressure_bar__mean_24h",
    "power_curve_resid_24h",
    "alarms_24h",
)
REASON_COLS = [
    n for n in FEATURE_NAMES if n.endswith(("__resid_24h", "__slope_72h", "__resid_slope_72h")) or n in FIXED
]
GOOD_DQ: dict[str, Any] = {
    "events_in_window": 1000,
    "events_24h": 400,
    "last_event_time": "2026-01-01T00:00:00+00:00",
    "seconds_since_last_event": 60.0,
    "history_hours": 160.0,
    "coverage_hours_24h": 24,
    "missing_share_24h": 0.01,
    "spikes_24h": 0,
    "frozen_signals": {},
    "silent_key_signals_24h": [],
    "late_events_dropped": 0,
}


# ---------------------------------------------------------------------------------------------- running
def feature_matrix(cases: list[dict[str, Any]]) -> np.ndarray:
    col = {n: i for i, n in enumerate(FEATURE_NAMES)}
    x = np.zeros((len(cases), len(FEATURE_NAMES)))
    for i, c in enumerate(cases):
        for name, v in c["features"].items():
            x[i, col[name]] = v
    return x


def _arr(cases: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([math.nan if c[key] is None else c[key] for c in cases], dtype=np.float64)


def run_batch(golden: dict[str, Any]) -> list[dict[str, Any]]:
    """What the policy gives for every case of a golden file (``expected`` entries)."""
    policy = RiskPolicy(PolicyConfig.model_validate(golden["config"]))
    cases = golden["cases"]
    table = ReasonTable(FEATURE_NAMES, golden["normal_ranges"])
    decisions = policy.assess_batch(
        probability=_arr(cases, "probability"),
        ttf_days=_arr(cases, "ttf_days"),
        ttf_low_days=_arr(cases, "ttf_low_days"),
        ttf_high_days=_arr(cases, "ttf_high_days"),
        data_quality=[c["data_quality"] for c in cases],
        features=feature_matrix(cases),
        reasons=table,
    )
    return [{"score": d.score, "tier": d.tier, "reasons": d.reasons} for d in decisions]


def _reference(golden: dict[str, Any], got: list[dict[str, Any]]) -> None:
    """Cross-check with the per-turbine reference path while it exists (it did when the goldens were made)."""
    policy = RiskPolicy(PolicyConfig.model_validate(golden["config"]))
    assess = getattr(policy, "assess", None)
    if assess is None:
        return
    x = feature_matrix(golden["cases"])
    for i, c in enumerate(golden["cases"]):
        ref = assess(
            probability=float(_arr([c], "probability")[0]),
            ttf_days=float(_arr([c], "ttf_days")[0]),
            ttf_low_days=float(_arr([c], "ttf_low_days")[0]),
            ttf_high_days=float(_arr([c], "ttf_high_days")[0]),
            data_quality=c["data_quality"],
            indicators=dict(zip(FEATURE_NAMES, x[i].tolist(), strict=True)),
            normal_ranges=golden["normal_ranges"],
        )
        mine = {"score": ref.score, "tier": ref.tier, "reasons": ref.reasons}
        if dumps(mine) != dumps(got[i]):
            raise SystemExit(f"{c['name']}: batch path and per-turbine reference disagree:\n{mine}\n{got[i]}")


def render(golden: dict[str, Any]) -> str:
    """The file text: header keys first, then one case per line (small, readable diffs)."""
    head = {k: v for k, v in golden.items() if k != "cases"}
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [']
    lines += [json.dumps(c, ensure_ascii=False) + "," for c in golden["cases"]]
    lines[-1] = lines[-1][:-1]
    return "\n".join(lines) + "\n]}\n"


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- inputs
def _case(
    name: str,
    p: float | None = 0.3,
    ttf: float | None = 30.0,
    lo: float | None = None,
    hi: float | None = None,
    dq: Any = None,
    features: dict[str, float] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "probability": p,
        "ttf_days": ttf,
        "ttf_low_days": (ttf - 1.0 if ttf is not None and math.isfinite(ttf) else ttf) if lo is None else lo,
        "ttf_high_days": (ttf + 1.0 if ttf is not None and math.isfinite(ttf) else ttf) if hi is None else hi,
        "data_quality": dict(GOOD_DQ) if dq is None else dq,
        "features": features or {},
    }


def _dq(**change: Any) -> dict[str, Any]:
    out = {**GOOD_DQ, **change}
    for k, v in change.items():
        if v is _DROP:
            del out[k]
    return out


_DROP = object()


def hand_cases() -> list[dict[str, Any]]:
    """One case per rule and boundary (ranges: every reason column [-2, 2], see ``base_ranges``)."""
    c: list[dict[str, Any]] = []
    for p in (0.0, 0.1999, 0.2, 0.4999, 0.5, 0.7999, 0.8, 1.0, 0.123456, -0.5, 1.5, 1e-300):
        c.append(_case(f"probability {p}", p=p))
    for q in (math.nan, math.inf, -math.inf, None):
        c.append(_case(f"probability not finite {q}", p=q))
    for t in (None, math.nan, math.inf, -math.inf, 0.0, 1.0, 2.0, 5.5, 29.999999999, 30.0, 45.0, -5.0, 1e300):
        c.append(_case(f"ttf {t}", p=0.05, ttf=t))
    c.append(_case("ttf bounds missing", p=0.05, ttf=3.0, lo=math.nan, hi=math.nan))
    c.append(_case("ttf bounds inf", p=0.05, ttf=3.0, lo=-math.inf, hi=math.inf))
    # ---------------------------------------------------------------- data quality, one rule at a time
    dq_cases: list[tuple[str, Any]] = [
        ("dq empty", {}),
        ("dq null", None),
        ("dq events 0", _dq(events_in_window=0)),
        ("dq events missing", _dq(events_in_window=_DROP)),
        ("dq last_event_time null", _dq(last_event_time=None)),
        ("dq last_event_time missing", _dq(last_event_time=_DROP)),
        ("dq no data but stale too", _dq(events_in_window=0, seconds_since_last_event=99999.0)),
        ("dq only the two required keys", {"events_in_window": 3, "last_event_time": "x"}),
        ("dq stale at limit", _dq(seconds_since_last_event=7200.0)),
        ("dq stale just over", _dq(seconds_since_last_event=7200.01)),
        ("dq stale int", _dq(seconds_since_last_event=90000)),
        ("dq stale inf", _dq(seconds_since_last_event=math.inf)),
        ("dq stale nan", _dq(seconds_since_last_event=math.nan)),
        ("dq stale null", _dq(seconds_since_last_event=None)),
        ("dq stale negative", _dq(seconds_since_last_event=-50.0)),
        ("dq missing share at limit", _dq(missing_share_24h=0.5)),
        ("dq missing share over", _dq(missing_share_24h=0.51)),
        ("dq missing share int 1", _dq(missing_share_24h=1)),
        ("dq missing share nan", _dq(missing_share_24h=math.nan)),
        ("dq missing share null", _dq(missing_share_24h=None)),
        ("dq missing share absent", _dq(missing_share_24h=_DROP)),
        ("dq coverage at limit", _dq(coverage_hours_24h=6)),
        ("dq coverage under", _dq(coverage_hours_24h=5)),
        ("dq coverage zero", _dq(coverage_hours_24h=0)),
        ("dq coverage float", _dq(coverage_hours_24h=5.0)),
        ("dq coverage nan", _dq(coverage_hours_24h=math.nan)),
        ("dq coverage -inf", _dq(coverage_hours_24h=-math.inf)),
        ("dq silent key", _dq(silent_key_signals_24h=["vibration_mm_s"])),
        ("dq silent two keys", _dq(silent_key_signals_24h=["main_bearing_temp_c", "gearbox_oil_temp_c"])),
        ("dq silent duplicate", _dq(silent_key_signals_24h=["converter_temp_c", "converter_temp_c"])),
        ("dq silent non key", _dq(silent_key_signals_24h=["ambient_temp_c", "power_kw"])),
        ("dq silent mixed", _dq(silent_key_signals_24h=["power_kw", "vibration_mm_s"])),
        ("dq silent null", _dq(silent_key_signals_24h=None)),
        ("dq frozen key", _dq(frozen_signals={"gearbox_bearing_temp_c": 6.0})),
        ("dq frozen two keys", _dq(frozen_signals={"vibration_mm_s": 4.25, "main_bearing_temp_c": 12})),
        ("dq frozen non key", _dq(frozen_signals={"power_kw": 5.0, "wind_speed_ms": 3.0})),
        ("dq frozen mixed", _dq(frozen_signals={"power_kw": 5.0, "converter_temp_c": 0.05})),
        ("dq frozen null", _dq(frozen_signals=None)),
        (
            "dq every rule",
            _dq(
                seconds_since_last_event=100000.0,
                missing_share_24h=0.9,
                coverage_hours_24h=1,
                silent_key_signals_24h=["vibration_mm_s"],
                frozen_signals={"gearbox_oil_temp_c": 30.0},
            ),
        ),
    ]
    for name, dq in dq_cases:
        for p in (0.95, 0.1, math.nan):
            c.append(_case(f"{name} / p={p}", p=p, ttf=10.0, dq=dq))
    # ---------------------------------------------------------------- reasons, one kind at a time
    r = "gearbox_bearing_temp_c"
    feats: list[tuple[str, dict[str, float]]] = [
        ("resid above, slope in range", {f"{r}__resid_24h": 12.0, f"{r}__resid_slope_72h": 1.0}),
        ("resid above, slope rising", {f"{r}__resid_24h": 12.0, f"{r}__resid_slope_72h": 3.5}),
        ("resid above, slope falling", {f"{r}__resid_24h": 2.5, f"{r}__resid_slope_72h": -7.25}),
        ("resid above, slope nan", {f"{r}__resid_24h": 2.5, f"{r}__resid_slope_72h": math.nan}),
        ("resid at range edge", {f"{r}__resid_24h": 2.0}),
        ("resid cooler than expected", {f"{r}__resid_24h": -9.0}),
        ("vibration resid", {"vibration_mm_s__resid_24h": 4.0, "vibration_mm_s__resid_slope_72h": 5.0}),
        ("slope rising", {"main_bearing_temp_c__slope_72h": 3.0}),
        ("slope falling", {"converter_temp_c__slope_72h": -6.0}),
        ("pressure slope", {"pitch_hydraulic_pressure_bar__slope_72h": -2.5}),
        ("fixed vibration peak", {"vibration_mm_s__max_24h": 6.66}),
        ("fixed pressure low", {"pitch_hydraulic_pressure_bar__mean_24h": -3.0}),
        ("fixed power curve", {"power_curve_resid_24h": -4.0}),
        ("fixed alarms (no unit)", {"alarms_24h": 7.0}),
        ("tie: equal exceedances keep candidate order", {n: 3.0 for n in REASON_COLS}),
        ("nan everywhere", {n: math.nan for n in REASON_COLS}),
        ("inf everywhere", {n: math.inf for n in REASON_COLS}),
        ("-inf everywhere", {n: -math.inf for n in REASON_COLS}),
        ("huge values", {n: 1e308 for n in REASON_COLS}),
        ("huge negative values", {n: -1e308 for n in REASON_COLS}),
        ("tiny values", {n: 1e-300 for n in REASON_COLS}),
        (
            "rounding of values",
            {f"{r}__resid_24h": 2.345, "alarms_24h": 2.005, "vibration_mm_s__max_24h": 2.055},
        ),
        ("special-range columns", {n: 5.0 for n in SPECIAL_RANGES}),
        ("special-range columns below", {n: -5.0 for n in SPECIAL_RANGES}),
    ]
    for name, f in feats:
        c.append(_case(f"reasons: {name}", p=0.4, features=f))
    # ---------------------------------------------------------------- trend trust (history_hours)
    trend = {
        f"{r}__resid_24h": 5.0,
        f"{r}__resid_slope_72h": 4.0,
        "main_bearing_temp_c__slope_72h": 9.0,
        "alarms_24h": 3.0,
    }
    for h in (_DROP, None, math.nan, math.inf, -math.inf, 0.0, 24.0, 53.99, 54.0, 54.01, 500.0, -1.0):
        label = "absent" if h is _DROP else h
        c.append(_case(f"trend trust history_hours={label}", p=0.4, dq=_dq(history_hours=h), features=trend))
    c.append(
        _case(
            "trend trust on a no-data row",
            p=0.4,
            dq=_dq(events_in_window=0, history_hours=10.0),
            features=trend,
        )
    )
    return c


#: Columns of the default file with unusual ranges (others: [-2, 2]).
SPECIAL_RANGES: dict[str, list[float]] = {
    "generator_winding_temp_c__resid_24h": [math.nan, 1.0],
    "generator_winding_temp_c__slope_72h": [-1.0, math.inf],
    "converter_temp_c__resid_24h": [1.0, 1.0],  # zero width: 1e-6
    "generator_bearing_temp_c__resid_24h": [0.5, 0.5 + 1e-9],  # tiny width: 1e-6
    "pitch_hydraulic_pressure_bar__mean_24h": [-math.inf, 0.0],
}
#: Reason columns without a normal range in the default file (never a reason).
NO_RANGE = ("generator_bearing_temp_c__slope_72h",)


def base_ranges() -> dict[str, list[float]]:
    out = {n: [-2.0, 2.0] for n in REASON_COLS if n not in NO_RANGE}
    out.update(SPECIAL_RANGES)
    out["unrelated_feature"] = [0.0, 1.0]
    return out


def random_ranges(rng: np.random.Generator) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for name in REASON_COLS:
        r = rng.random()
        if r < 0.1:
            continue
        lo = float(rng.choice([-2.0, -1.0, 0.0, 0.5]))
        hi = lo + float(rng.choice([0.0, 1e-9, 1.0, 2.0, 4.0]))
        if r < 0.13:
            lo = math.nan
        elif r < 0.16:
            hi = math.inf
        out[name] = [lo, hi]
    return out


def random_features(rng: np.random.Generator, grid: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in REASON_COLS:
        u = rng.random()
        if u < 0.05:
            v = math.nan
        elif u < 0.06:
            v = math.inf
        elif u < 0.07:
            v = -math.inf
        elif u < 0.1 or not grid:
            v = round(float(rng.normal(0, 5)), 6)
        else:
            v = float(rng.choice(np.arange(-6.0, 8.0, 0.5)))
        out[name] = v
    return out


def random_dq(rng: np.random.Generator) -> Any:
    r = rng.random()
    if r < 0.04:
        return {}
    if r < 0.07:
        return {"events_in_window": 0, "last_event_time": None, "history_hours": 0.0}
    dq: dict[str, Any] = dict(GOOD_DQ)
    dq.update(
        events_in_window=int(rng.integers(1, 1000)),
        seconds_since_last_event=[0.0, 600.0, 7200.0, 7201.0, 90000.0, None][int(rng.integers(6))],
        missing_share_24h=[0.0, 0.2, 0.5, 0.51, 1.0, None][int(rng.integers(6))],
        coverage_hours_24h=[0, 5, 6, 24, None][int(rng.integers(5))],
        history_hours=[None, 0.0, 12.5, 53.99, 54.0, 120.0, 700.0][int(rng.integers(7))],
    )
    if rng.random() < 0.25:
        k = int(rng.integers(1, 3))
        dq["frozen_signals"] = {
            str(s): round(float(rng.uniform(0.1, 48)), 2)
            for s in rng.choice([*KEY_SIGNALS, "wind_speed_ms"], k)
        }
    if rng.random() < 0.25:
        k = int(rng.integers(1, 3))
        dq["silent_key_signals_24h"] = [str(s) for s in rng.choice([*KEY_SIGNALS, "ambient_temp_c"], k)]
    if rng.random() < 0.05:
        del dq["history_hours"]
    return dq


def random_cases(rng: np.random.Generator, n: int, prefix: str, grid: bool = True) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        p_draw = [0.0, 0.05, 0.2, 0.5, 0.8, 1.0, 0.123456, math.nan][int(rng.integers(8))]
        p = float(rng.random()) if rng.random() < 0.3 else p_draw
        ttf = [0.0, 1.0, 2.0, 5.5, 29.999999999, 30.0, 45.0, math.nan, math.inf, None][int(rng.integers(10))]
        lo = None if ttf is None else ttf - float(rng.random())
        hi = None if ttf is None else ttf + float(rng.random())
        out.append(
            _case(
                f"{prefix} {i}",
                p=p,
                ttf=ttf,
                lo=lo,
                hi=hi,
                dq=random_dq(rng),
                features=random_features(rng, grid),
            )
        )
    return out


def goldens() -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(20261129)
    default = load_policy().config
    variant = PolicyConfig.model_validate(
        {
            "reasons": {"max_reasons": 5},
            "data_quality": {"frozen_key_signal": "cap", "silent_key_signal": "cap"},
            "score": {"ttf_weight": 1.0},
        }
    )
    ties = PolicyConfig.model_validate(
        {
            "reasons": {"max_reasons": 10},
            "data_quality": {"silent_key_signal": "ignore", "key_signals": list(NBM_TARGETS[:3])},
            "tiers": {"critical": 90.0, "high": 60.0, "moderate": 10.0},
        }
    )
    hand = hand_cases()
    return {
        "policy_default.json": {
            "about": "packaged policy.yaml; one case per rule and boundary, then seeded random cases",
            "config": default.model_dump(mode="json"),
            "normal_ranges": base_ranges(),
            "cases": hand + random_cases(rng, 200, "random"),
        },
        "policy_variants.json": {
            "about": "frozen/silent key sensors cap (no unknown), 5 reasons, ttf weight 1; random ranges",
            "config": variant.model_dump(mode="json"),
            "normal_ranges": random_ranges(rng),
            "cases": hand + random_cases(rng, 120, "random", grid=False),
        },
        "policy_ties.json": {
            "about": "every range [0, 1]: equal exceedances tie (candidate order kept); silent ignored",
            "config": ties.model_dump(mode="json"),
            "normal_ranges": {n: [0.0, 1.0] for n in REASON_COLS},
            "cases": hand + random_cases(rng, 120, "random"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = ap.parse_args(argv)
    bad = 0
    for fname, golden in goldens().items():
        got = run_batch(golden)
        _reference(golden, got)
        for case, exp in zip(golden["cases"], got, strict=True):
            case["expected"] = exp
        text = render(golden)
        path = HERE / fname
        if args.check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            print(f"{path}: {'same' if same else 'DIFFERS'} ({len(golden['cases'])} cases)")
            bad += not same
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: {len(golden['cases'])} cases written")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
