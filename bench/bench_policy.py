"""Policy cost per turbine: the current ``RiskPolicy.assess_batch`` against an older ``models/policy.py``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_policy.py --baseline-rev ede7f40 --registry registry

The baseline module is read with ``git show <rev>:models/policy.py`` into a private module (bench only,
never imported by the product). Same inputs for both: N turbines with features drawn around the
production bundle's normal ranges (1.2% of the values outside, so some indicators are reasons) and
data-quality dicts like the window's (5% with an issue). Reported: best of ``--repeat`` (the variants
take turns), in ms and us per turbine, for the baseline batch path, the baseline per-turbine
``assess`` loop (when the baseline has it), the current batch path, and ``BatchScorer.score_features``
end to end (predict included) with each policy. Ratios within one run on a shared machine; no assertion.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.features import FEATURE_NAMES, KEY_SIGNALS  # noqa: E402
from models.policy import ReasonTable, RiskPolicy, load_policy  # noqa: E402
from models.registry import load_production  # noqa: E402
from models.scoring import BatchScorer  # noqa: E402


def load_old_policy(rev: str, git_dir: str) -> Any:
    src = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{rev}:models/policy.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_policy.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bench_old_policy", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_old_policy"] = mod
    spec.loader.exec_module(mod)
    return mod


def inputs(n: int, ranges: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, len(FEATURE_NAMES)))
    for j, name in enumerate(FEATURE_NAMES):
        r = ranges.get(name)
        if r is not None:
            lo, hi = float(r[0]), float(r[1])
            # 1.2% of the values outside their range; a zero-width range (e.g. alarms [0, 0]) holds its value
            x[:, j] = (lo + hi) / 2 + x[:, j] * (hi - lo) / 5
    dqs = []
    for i in range(n):
        dq: dict[str, Any] = {
            "events_in_window": 5000,
            "events_24h": 1440,
            "last_event_time": "2026-01-01T00:00:00+00:00",
            "seconds_since_last_event": 30.0,
            "history_hours": 168.0,
            "coverage_hours_24h": 24,
            "missing_share_24h": 0.01,
            "spikes_24h": 0,
            "frozen_signals": {},
            "silent_key_signals_24h": [],
            "late_events_dropped": 0,
        }
        u = rng.random()
        if u < 0.01:
            dq["seconds_since_last_event"] = 9000.0
        elif u < 0.02:
            dq["frozen_signals"] = {KEY_SIGNALS[i % len(KEY_SIGNALS)]: 7.5}
        elif u < 0.03:
            dq["silent_key_signals_24h"] = [KEY_SIGNALS[i % len(KEY_SIGNALS)]]
        elif u < 0.04:
            dq["missing_share_24h"] = 0.7
        elif u < 0.05:
            dq["coverage_hours_24h"] = 3
        dqs.append(dq)
    p = rng.beta(0.5, 6.0, n)
    q50 = rng.uniform(0.5, 40.0, n)
    return {"x": x, "dq": dqs, "p": p, "q10": q50 * 0.7, "q50": q50, "q90": q50 * 1.3}


def best(fn: Callable[[], object], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def interleaved(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best time of each function, the functions taking turns (a loaded machine slows all alike)."""
    out = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            out[k] = min(out[k], time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline-rev", default="HEAD", help="git revision of the baseline models/policy.py")
    ap.add_argument("--git-dir", default=str(ROOT / ".git"), help="repository to read the baseline from")
    ap.add_argument("--registry", default="registry", help="registry with a production bundle")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--score-n", type=int, default=1000, help="turbines for score_features end to end")
    args = ap.parse_args()

    bundle = load_production(Path(args.registry))
    ranges = bundle.normal_ranges or {}
    old = load_old_policy(args.baseline_rev, args.git_dir)
    cfg = load_policy().config
    new_pol, old_pol = RiskPolicy(cfg), old.RiskPolicy(old.PolicyConfig.model_validate(cfg.model_dump()))
    new_tab, old_tab = ReasonTable(FEATURE_NAMES, ranges), old.ReasonTable(FEATURE_NAMES, ranges)
    print(f"baseline {args.baseline_rev}; bundle {bundle.version}; best of {args.repeat}")

    def batch(pol: Any, tab: Any, d: dict[str, Any]) -> Callable[[], object]:
        return lambda: pol.assess_batch(
            probability=d["p"],
            ttf_days=d["q50"],
            ttf_low_days=d["q10"],
            ttf_high_days=d["q90"],
            data_quality=d["dq"],
            features=d["x"],
            reasons=tab,
        )

    for n in (int(s) for s in args.sizes.split(",")):
        d = inputs(n, ranges)
        rows = [("baseline assess_batch", batch(old_pol, old_tab, d))]
        if hasattr(old_pol, "assess"):

            def loop(d: dict[str, Any] = d, n: int = n) -> None:
                for i in range(n):
                    old_pol.assess(
                        probability=float(d["p"][i]),
                        ttf_days=float(d["q50"][i]),
                        ttf_low_days=float(d["q10"][i]),
                        ttf_high_days=float(d["q90"][i]),
                        data_quality=d["dq"][i],
                        indicators=dict(zip(FEATURE_NAMES, d["x"][i].tolist(), strict=True)),
                        normal_ranges=ranges,
                    )

            rows.append(("baseline per-turbine assess", loop))
        rows.append(("current assess_batch", batch(new_pol, new_tab, d)))
        times = interleaved([fn for _, fn in rows], args.repeat)
        base = times[0]
        for (label, _), s in zip(rows, times, strict=True):
            print(
                f"  n={n:>6}  {label:<28} {s * 1e3:9.2f} ms  {s / n * 1e6:7.2f} us/turbine  x{s / base:.2f}"
            )

    n = args.score_n
    d = inputs(n, ranges, seed=1)
    ids = [f"WT-{i:05d}" for i in range(n)]
    scorer = BatchScorer(bundle, RiskPolicy(cfg))
    old_scorer = BatchScorer(bundle, RiskPolicy(cfg))
    old_scorer.policy, old_scorer._reasons = old_pol, old_tab  # type: ignore[assignment]
    t_pred = best(lambda: bundle.predict(d["x"]), args.repeat)
    pairs = (("baseline", old_scorer), ("current", scorer))

    def run(sc: BatchScorer) -> Callable[[], object]:
        return lambda: sc.score_features(ids, d["x"], [None] * n, d["dq"])

    times = interleaved([run(sc) for _, sc in pairs], args.repeat)
    for (label, _), s in zip(pairs, times, strict=True):
        print(
            f"  score_features n={n} {label:<9} {s * 1e3:8.2f} ms  {s / n * 1e6:7.2f} us/turbine "
            f"(predict alone {t_pred * 1e3:.2f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
