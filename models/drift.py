"""Feature drift: reference distributions of a model version's input features, PSI and KS against them.

Pure (numpy only). A :class:`DriftReference` is built once at training time from the training feature
matrix (:func:`reference_from_matrix`) and stored beside the models as ``drift_reference.json``; the
scorer (scorer/drift.py) compares the feature rows it scored against it.

Per feature the reference holds quantile bin edges (deciles of the finite training values; ties merged)
and the share of training rows in each bin, plus one bin for missing values (NaN or +-inf: a sensor that
goes silent is drift too). Shares are also kept per calendar month (UTC) of the training rows: the
simulator and real sites have seasons, so a January window is compared with January, not with the
whole year (:func:`expected_shares` mixes the months of the sample's rows).

PSI (population stability index) = sum over bins of (a - e) * ln(a / e), shares floored at ``EPS``.
KS is the largest gap between the two cumulative distributions of the finite values, read at the bin
edges (a binned KS: the reference keeps no raw values). Severity thresholds are not defined here: the
caller passes them (scorer settings are their one source of truth).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = 1
FILENAME = "drift_reference.json"
#: Quantile bins per feature (fewer when values tie).
N_BINS = 10
#: Share floor in PSI (an empty bin would make ln(a/e) infinite).
EPS = 1e-4
#: Features that count the window's age, not the turbine's behaviour: they grow with the time the scorer
#: has watched a turbine and can never match a training replay, so they are not compared.
NON_STATIONARY: frozenset[str] = frozenset({"baseline_hours", "coverage_hours_168h"})
#: Rows whose 168 h window holds fewer hours than this are warming up (their 168 h features are not
#: comparable): left out of the reference and of the monitored sample alike (see :func:`warm_mask`).
WARM_COVERAGE_HOURS = 120.0
WARM_COLUMN = "coverage_hours_168h"
#: Fewest training rows of a calendar month for its own shares (else the whole year's are used).
MIN_MONTH_ROWS = 200
SEVERITIES: tuple[str, ...] = ("none", "moderate", "significant")


class DriftReferenceError(ValueError):
    """An unusable reference (file, field, shape); the message names what is wrong and where."""


@dataclass(frozen=True)
class FeatureReference:
    name: str
    edges: np.ndarray  # sorted, unique interior edges; bins (-inf, e0], (e0, e1], ..., (e_k-1, inf), missing
    shares: np.ndarray  # len(edges) + 2: finite bins then the missing bin; sums to 1
    monthly: dict[int, np.ndarray] = field(default_factory=dict)  # month (1-12) -> shares
    by_turbine: np.ndarray | None = None  # (training turbines, bins): each turbine's own shares

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 2


@dataclass(frozen=True)
class DriftReference:
    features: tuple[FeatureReference, ...]
    rows: int
    month_rows: dict[int, int] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "month_rows": {str(m): n for m, n in sorted(self.month_rows.items())},
            "bins": N_BINS,
            "features": [
                {
                    "name": f.name,
                    "edges": [float(e) for e in f.edges],
                    "shares": [round(float(s), 6) for s in f.shares],
                    "monthly": {
                        str(m): [round(float(s), 6) for s in sh] for m, sh in sorted(f.monthly.items())
                    },
                    "by_turbine": None
                    if f.by_turbine is None
                    else [[round(float(s), 5) for s in row] for row in f.by_turbine],
                }
                for f in self.features
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "drift reference") -> DriftReference:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DriftReferenceError(f"{where}: not valid JSON: {exc}") from exc
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "drift reference") -> DriftReference:
        if not isinstance(data, dict):
            raise DriftReferenceError(f"{where}: expected an object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise DriftReferenceError(
                f"{where}: format {data.get('format')!r} unsupported (expected {FORMAT})"
            )
        feats = data.get("features")
        if not isinstance(feats, list) or not feats:
            raise DriftReferenceError(f"{where}: 'features' must be a non-empty list")
        out: list[FeatureReference] = []
        for i, f in enumerate(feats):
            at = f"{where}: features[{i}]"
            if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                raise DriftReferenceError(f"{at}: expected an object with a 'name'")
            at = f"{where}: feature {f['name']!r}"
            try:
                edges = np.asarray(f.get("edges"), dtype=float)
                shares = np.asarray(f.get("shares"), dtype=float)
                monthly = {int(m): np.asarray(v, dtype=float) for m, v in (f.get("monthly") or {}).items()}
            except (TypeError, ValueError) as exc:
                raise DriftReferenceError(f"{at}: edges/shares must be lists of numbers ({exc})") from exc
            if edges.ndim != 1 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
                raise DriftReferenceError(f"{at}: 'edges' must be finite and strictly increasing")
            for label, sh in [("shares", shares), *((f"monthly[{m}]", v) for m, v in monthly.items())]:
                if sh.shape != (len(edges) + 2,):
                    raise DriftReferenceError(
                        f"{at}: '{label}' has {sh.size} values, expected {len(edges) + 2} (bins + missing)"
                    )
                if not np.all(np.isfinite(sh)) or np.any(sh < 0) or abs(float(sh.sum()) - 1.0) > 1e-3:
                    raise DriftReferenceError(f"{at}: '{label}' must be non-negative shares summing to 1")
            if any(not 1 <= m <= 12 for m in monthly):
                raise DriftReferenceError(f"{at}: monthly keys must be months 1-12")
            by_turbine = None
            if f.get("by_turbine") is not None:
                try:
                    by_turbine = np.asarray(f["by_turbine"], dtype=float)
                except (TypeError, ValueError) as exc:
                    raise DriftReferenceError(f"{at}: 'by_turbine' must be lists of numbers") from exc
                if by_turbine.ndim != 2 or by_turbine.shape[1] != len(edges) + 2 or not by_turbine.size:
                    raise DriftReferenceError(
                        f"{at}: 'by_turbine' must hold {len(edges) + 2} shares a turbine"
                    )
                if not np.all(np.isfinite(by_turbine)) or np.any(by_turbine < 0):
                    raise DriftReferenceError(f"{at}: 'by_turbine' shares must be finite and non-negative")
            out.append(FeatureReference(f["name"], edges, shares, monthly, by_turbine))
        rows = data.get("rows")
        if not isinstance(rows, int) or rows <= 0:
            raise DriftReferenceError(f"{where}: 'rows' must be a positive integer")
        try:
            month_rows = {int(m): int(n) for m, n in (data.get("month_rows") or {}).items()}
        except (TypeError, ValueError, AttributeError) as exc:
            raise DriftReferenceError(f"{where}: 'month_rows' must map months to counts") from exc
        return cls(tuple(out), rows, month_rows)


# ---------------------------------------------------------------------------------------------- build
def warm_mask(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Rows whose window is warm (see ``WARM_COVERAGE_HOURS``); all rows when the column is absent."""
    if WARM_COLUMN not in names:
        return np.ones(x.shape[0], dtype=bool)
    cov = x[:, list(names).index(WARM_COLUMN)]
    with np.errstate(invalid="ignore"):
        return np.asarray(cov >= WARM_COVERAGE_HOURS)


def _bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each value: 0..len(edges) for finite values, len(edges)+1 for missing (NaN, +-inf)."""
    idx = np.searchsorted(edges, values, side="left")
    return np.where(np.isfinite(values), idx, len(edges) + 1)


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    counts = np.bincount(_bin_index(edges, values), minlength=len(edges) + 2).astype(float)
    total = counts.sum()
    return counts / total if total > 0 else counts


def _months(times: Any) -> np.ndarray:
    """Calendar month (1-12, UTC) of epoch seconds or datetime64 values."""
    t = np.asarray(times)
    if np.issubdtype(t.dtype, np.datetime64):
        m = t.astype("datetime64[M]").astype(int)
    else:
        m = np.asarray(t, dtype=float).astype("datetime64[s]").astype("datetime64[M]").astype(int)
    return np.asarray(m % 12 + 1, dtype=int)


def months_of(epoch_seconds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Calendar months (1-12, UTC) of epoch seconds: the key of the monthly shares."""
    return _months(np.asarray(epoch_seconds, dtype=float))


def reference_from_matrix(
    x: np.ndarray,
    names: Sequence[str],
    times: Any = None,
    groups: Any = None,
    n_bins: int = N_BINS,
) -> DriftReference:
    """Reference distributions of the columns ``names`` of ``x`` (the training feature matrix).

    ``times`` (epoch seconds or datetime64, one per row) adds per-month shares; ``groups`` (the turbine
    of each row) adds each training turbine's own shares, from which :func:`noise_floor` tells how much
    PSI a healthy group of k turbines shows by chance. Warming-up rows and
    the non-stationary counters are left out. Raises :class:`DriftReferenceError` on a shape mismatch
    or when no usable row remains.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise DriftReferenceError(
            f"feature matrix of shape {x.shape} does not match {len(names)} feature names"
        )
    keep = warm_mask(x, names)
    x = x[keep]
    months = _months(np.asarray(times)[keep]) if times is not None and len(keep) else None
    group_idx = None
    if groups is not None:
        _, group_idx = np.unique(np.asarray(groups)[keep].astype(str), return_inverse=True)
    if x.shape[0] == 0:
        raise DriftReferenceError(
            "no training rows to build a drift reference from (empty, or every window still warming up)"
        )
    month_rows: dict[int, int] = {}
    if months is not None:
        ms, counts = np.unique(months, return_counts=True)
        month_rows = {int(m): int(c) for m, c in zip(ms, counts, strict=True)}
    qs = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    feats: list[FeatureReference] = []
    for j, name in enumerate(names):
        if name in NON_STATIONARY:
            continue
        col = x[:, j]
        finite = col[np.isfinite(col)]
        edges = np.unique(np.quantile(finite, qs)) if finite.size else np.zeros(0)
        monthly: dict[int, np.ndarray] = {}
        if months is not None:
            for m, n in month_rows.items():
                if n >= MIN_MONTH_ROWS:
                    monthly[m] = _shares(edges, col[months == m])
        by_turbine = None
        if group_idx is not None and group_idx.size:
            n_groups = int(group_idx.max()) + 1
            tc = np.zeros((n_groups, len(edges) + 2))
            np.add.at(tc, (group_idx, _bin_index(edges, col)), 1.0)
            by_turbine = tc / np.maximum(tc.sum(axis=1, keepdims=True), 1.0)
        feats.append(FeatureReference(str(name), edges, _shares(edges, col), monthly, by_turbine))
    return DriftReference(tuple(feats), int(x.shape[0]), month_rows)


# ---------------------------------------------------------------------------------------------- compare
def _columns(reference: DriftReference, sample: np.ndarray, names: Sequence[str] | None) -> np.ndarray:
    s = np.asarray(sample, dtype=float)
    if s.ndim != 2:
        raise ValueError(f"sample must be a 2-D matrix, got shape {s.shape}")
    if names is None:
        if s.shape[1] != len(reference.features):
            raise ValueError(f"sample has {s.shape[1]} columns, the reference {len(reference.features)}")
        return s
    pos = {n: i for i, n in enumerate(names)}
    missing = [f.name for f in reference.features if f.name not in pos]
    if missing:
        raise ValueError(f"sample lacks reference features {missing[:3]}")
    return s[:, [pos[f.name] for f in reference.features]]


def expected_shares(feature: FeatureReference, months: np.ndarray | None) -> np.ndarray:
    """Reference shares for a sample whose rows fall in ``months`` (a mix of the months' own shares)."""
    if months is None or not feature.monthly or len(months) == 0:
        return feature.shares
    ms, counts = np.unique(months, return_counts=True)
    mix = np.zeros_like(feature.shares)
    for m, c in zip(ms, counts, strict=True):
        mix += c * feature.monthly.get(int(m), feature.shares)
    return np.asarray(mix / counts.sum())


def _psi(actual: np.ndarray, expected: np.ndarray) -> float:
    a = np.maximum(actual, EPS)
    e = np.maximum(expected, EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def _ks(actual: np.ndarray, expected: np.ndarray) -> float:
    fa, fe = actual[:-1], expected[:-1]  # finite bins only
    sa, se = fa.sum(), fe.sum()
    if sa <= 0 or se <= 0:
        return math.nan
    return float(np.max(np.abs(np.cumsum(fa) / sa - np.cumsum(fe) / se)))


def compare(
    reference: DriftReference,
    sample: np.ndarray,
    names: Sequence[str] | None = None,
    months: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(PSI, KS) per reference feature of ``sample`` (rows; columns ``names`` or the reference order).

    ``months`` (1-12 per row) selects the seasonal shares. An empty sample gives NaN everywhere.
    """
    s = _columns(reference, sample, names)
    n_feat = len(reference.features)
    psi_out = np.full(n_feat, np.nan)
    ks_out = np.full(n_feat, np.nan)
    if s.shape[0] == 0:
        return psi_out, ks_out
    for j, f in enumerate(reference.features):
        actual = _shares(f.edges, s[:, j])
        expected = expected_shares(f, months)
        psi_out[j] = _psi(actual, expected)
        ks_out[j] = _ks(actual, expected)
    return psi_out, ks_out


def psi(
    reference: DriftReference,
    sample: np.ndarray,
    names: Sequence[str] | None = None,
    months: np.ndarray | None = None,
) -> np.ndarray:
    """PSI per reference feature (see :func:`compare`)."""
    return compare(reference, sample, names, months)[0]


def ks(
    reference: DriftReference,
    sample: np.ndarray,
    names: Sequence[str] | None = None,
    months: np.ndarray | None = None,
) -> np.ndarray:
    """Binned KS statistic per reference feature (see :func:`compare`)."""
    return compare(reference, sample, names, months)[1]


def noise_floor(
    reference: DriftReference, k: int, draws: int = 200, quantile: float = 1.0, seed: int = 0
) -> np.ndarray:
    """PSI per feature that a healthy group of ``k`` turbines shows by chance (0 without turbine shares).

    Why: most features are persistent per turbine (its own offsets, its own sensors), so a site of a
    few turbines never spreads over the fleet's distribution: its PSI is high although nothing changed.
    The floor is the ``quantile`` (default: the largest) of the PSI of ``draws`` random groups of ``k``
    training turbines against the whole training fleet; drift is judged on the PSI above it.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(len(reference.features))
    for j, f in enumerate(reference.features):
        t = f.by_turbine
        if t is None or k <= 0:
            continue
        n = t.shape[0]
        replace = k >= n
        idx = np.stack([rng.choice(n, size=k, replace=replace) for _ in range(draws)])
        mix = t[idx].mean(axis=1)  # (draws, bins)
        a = np.maximum(mix, EPS)
        e = np.maximum(f.shares, EPS)
        vals = np.sum((a - e) * np.log(a / e), axis=1)
        out[j] = float(np.quantile(vals, quantile))
    return out


def severity(value: float, moderate: float, significant: float) -> str:
    """``none`` / ``moderate`` / ``significant`` for a PSI; NaN (not computable) is ``none``."""
    if not moderate <= significant:
        raise ValueError(f"PSI thresholds out of order: moderate {moderate} > significant {significant}")
    if not math.isfinite(value) or value < moderate:
        return "none"
    return "moderate" if value < significant else "significant"


def reference_files(dataset: Any) -> dict[str, bytes]:
    """``{FILENAME: json}`` of a training dataset (``models.train.train``'s third value: the
    ``FEATURE_NAMES`` columns and ``time``), for ``save_version(extra_files=...)``."""
    from models.features import FEATURE_NAMES

    names = [n for n in FEATURE_NAMES if n in dataset.columns]
    groups = dataset["turbine_id"].to_numpy() if "turbine_id" in dataset.columns else None
    times = None
    if "time" in dataset.columns:
        import pandas as pd

        times = pd.to_datetime(dataset["time"], utc=True).dt.tz_localize(None).to_numpy("datetime64[s]")
    try:
        ref = reference_from_matrix(dataset[names].to_numpy(float), names, times, groups)
    except DriftReferenceError:  # no warm window at all (a few days of history): no reference, the
        return {}  # version still trains; the scorer reports drift as not available for it
    return {FILENAME: ref.to_json().encode()}
