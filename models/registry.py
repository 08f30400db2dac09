"""File-system model registry: versioned directories, integrity hashes, a production pointer.

Layout::

    <registry>/<version>/classifier.joblib, ttf_q10.joblib, ttf_q50.joblib, ttf_q90.joblib,
                         normal_model.joblib, metadata.json, model_card.md, *.png
    <registry>/PRODUCTION            # one line: the production version
    <registry>/HISTORY.jsonl         # every promote / rollback, append-only

Why so strict on load: a scorer that silently loads a half-copied or incompatible model produces
plausible but wrong risk scores. Every failure raises :class:`RegistryError` naming the path and reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from models.features import FEATURE_NAMES, WINDOW_FORMAT_VERSION, NormalModel
from models.ttf import TTFQuantile

ARTIFACTS: tuple[str, ...] = ("classifier", "ttf_q10", "ttf_q50", "ttf_q90", "normal_model")
POINTER = "PRODUCTION"
HISTORY = "HISTORY.jsonl"
METADATA = "metadata.json"
REGISTRY_FORMAT = 1


class RegistryError(Exception):
    """A registry operation failed; the message names the path and the reason."""


@dataclass
class ModelBundle:
    """Everything needed to score: the fitted models, the normal-behaviour model and metadata."""

    version: str
    models: dict[str, Any]
    metadata: dict[str, Any]
    path: Path | None = None
    feature_names: tuple[str, ...] = field(default=FEATURE_NAMES)

    @property
    def normal_model(self) -> NormalModel | None:
        return self.models.get("normal_model")

    @property
    def normal_ranges(self) -> dict[str, list[float]]:
        return dict(self.metadata.get("normal_ranges", {}))

    @property
    def model_columns(self) -> np.ndarray | None:
        """Indices into ``FEATURE_NAMES`` of the models' inputs (None = all features)."""
        names = self.metadata.get("model_features")
        if not names:
            return None
        pos = {n: i for i, n in enumerate(self.feature_names)}
        return np.asarray([pos[n] for n in names])

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """ONE predict call per model for the whole batch: probability and TTF quantiles (days).

        ``x`` holds full ``FEATURE_NAMES`` rows; the models' input columns are selected here.
        """
        cols = self.model_columns
        if cols is not None:
            # Column selection by fancy indexing gives a Fortran-ordered copy; made C-ordered once here,
            # so the models' compiled predict takes it as is instead of each call copying it again.
            x = np.ascontiguousarray(x[:, cols])
        if x.shape[0] == 0:
            empty = np.zeros(0)
            return {"probability": empty, "ttf_q10": empty, "ttf_q50": empty, "ttf_q90": empty}
        proba = self.models["classifier"].predict_proba(x)[:, 1]
        horizon = float(self.metadata.get("ttf_horizon_days", 30.0))
        q50 = self.models["ttf_q50"]
        if isinstance(q50, TTFQuantile):  # two-stage TTF: gate + conditional models once for all three
            both = q50.model.quantiles(x, (0.1, 0.5, 0.9))
            q = dict(zip(("ttf_q10", "ttf_q50", "ttf_q90"), both, strict=True))
        else:
            q = {name: self.models[name].predict(x) for name in ("ttf_q10", "ttf_q50", "ttf_q90")}
        stacked = np.clip(np.vstack([q["ttf_q10"], q["ttf_q50"], q["ttf_q90"]]), 0.0, horizon)
        stacked.sort(axis=0)  # quantile crossing guard
        return {"probability": proba, "ttf_q10": stacked[0], "ttf_q50": stacked[1], "ttf_q90": stacked[2]}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def runtime_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


def _minor(v: str) -> tuple[str, ...]:
    return tuple(v.split(".")[:2])


def new_version_name(registry_dir: Path) -> str:
    base = "v" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name, i = base, 1
    while (registry_dir / name).exists():
        i += 1
        name = f"{base}-{i}"
    return name


def save_version(
    registry_dir: str | Path,
    models: Mapping[str, Any],
    metadata: Mapping[str, Any],
    version: str | None = None,
    extra_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a new version atomically (temp dir + rename); returns its directory."""
    reg = Path(registry_dir)
    reg.mkdir(parents=True, exist_ok=True)
    missing = [a for a in ARTIFACTS if a not in models]
    if missing:
        raise RegistryError(f"{reg}: cannot save version, missing artifacts {missing}")
    version = version or new_version_name(reg)
    final = reg / version
    if final.exists():
        raise RegistryError(f"{final}: version already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=reg))
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700: a scorer running as another user could not read it
    try:
        hashes = {}
        for name in ARTIFACTS:
            fname = f"{name}.joblib"
            joblib.dump(models[name], tmp / fname, compress=3)
            hashes[fname] = sha256_file(tmp / fname)
        for fname, data in (extra_files or {}).items():
            (tmp / fname).write_bytes(data)
        meta = dict(metadata)
        meta.update(
            {
                "registry_format": REGISTRY_FORMAT,
                "version": version,
                "created_at": meta.get("created_at") or datetime.now(UTC).isoformat(),
                "artifacts": hashes,
                "runtime": runtime_versions(),
                "feature_names": list(meta.get("feature_names") or FEATURE_NAMES),
                "window_format_version": WINDOW_FORMAT_VERSION,
            }
        )
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def update_metadata(version_dir: Path, updates: Mapping[str, Any]) -> None:
    """Merge ``updates`` into metadata.json (e.g. evaluation metrics written after training)."""
    path = version_dir / METADATA
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.update(updates)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def list_versions(registry_dir: str | Path) -> list[dict[str, Any]]:
    """Versions (oldest first) with created_at, metrics and whether each is in production."""
    reg = Path(registry_dir)
    if not reg.is_dir():
        return []
    prod = production_version(reg, required=False)
    out = []
    # "calibrations/" holds fleet calibrations (models.calibration_registry), not a model version
    skip = {"calibrations"}
    dirs = (p for p in reg.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in skip)
    for d in sorted(dirs):
        meta_path = d / METADATA
        meta: dict[str, Any] = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                meta = {}
        out.append(
            {
                "version": d.name,
                "created_at": meta.get("created_at"),
                "metrics": meta.get("metrics", {}),
                "production": d.name == prod,
            }
        )
    return out


def production_version(registry_dir: str | Path, required: bool = True) -> str | None:
    reg = Path(registry_dir)
    pointer = reg / POINTER
    if not reg.is_dir():
        if required:
            raise RegistryError(f"{reg}: registry directory does not exist")
        return None
    if not pointer.is_file():
        if required:
            raise RegistryError(f"{pointer}: production pointer missing (run `python -m models promote`)")
        return None
    version = pointer.read_text(encoding="utf-8").strip()
    if not version:
        if required:
            raise RegistryError(f"{pointer}: production pointer is empty")
        return None
    return version


def _check_metadata(vdir: Path, meta: dict[str, Any]) -> None:
    meta_path = vdir / METADATA
    running = sklearn.__version__
    built = str(meta.get("runtime", {}).get("sklearn", "unknown"))
    if _minor(built) != _minor(running):
        raise RegistryError(
            f"{meta_path}: incompatible scikit-learn version: built with {built}, running {running}"
        )
    names = tuple(meta.get("feature_names") or ())
    if names != FEATURE_NAMES:
        diff = next(
            (i for i, (a, b) in enumerate(zip(names, FEATURE_NAMES, strict=False)) if a != b),
            min(len(names), len(FEATURE_NAMES)),
        )
        got = names[diff] if diff < len(names) else "<end>"
        want = FEATURE_NAMES[diff] if diff < len(FEATURE_NAMES) else "<end>"
        raise RegistryError(
            f"{meta_path}: feature mismatch: model has {len(names)} features, code has {len(FEATURE_NAMES)}; "
            f"first difference at position {diff}: {got!r} vs {want!r}"
        )
    unknown = [n for n in meta.get("model_features") or () if n not in FEATURE_NAMES]
    if unknown:
        raise RegistryError(
            f"{meta_path}: feature mismatch: model inputs {unknown[:3]} are not computed by this code"
        )
    if meta.get("window_format_version", WINDOW_FORMAT_VERSION) != WINDOW_FORMAT_VERSION:
        raise RegistryError(f"{meta_path}: window format {meta.get('window_format_version')} unsupported")


def load_version(registry_dir: str | Path, version: str) -> ModelBundle:
    """Load and verify one version; raises :class:`RegistryError` naming the path and the reason."""
    reg = Path(registry_dir)
    if not reg.is_dir():
        raise RegistryError(f"{reg}: registry directory does not exist")
    vdir = reg / version
    if not vdir.is_dir():
        raise RegistryError(f"{vdir}: version directory does not exist")
    meta_path = vdir / METADATA
    if not meta_path.is_file():
        raise RegistryError(f"{meta_path}: metadata file missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{meta_path}: metadata is not valid JSON: {exc}") from exc
    _check_metadata(vdir, meta)
    hashes = meta.get("artifacts") or {}
    models: dict[str, Any] = {}
    for name in ARTIFACTS:
        fname = f"{name}.joblib"
        fpath = vdir / fname
        if not fpath.is_file():
            raise RegistryError(f"{fpath}: artifact file missing")
        expected = hashes.get(fname)
        if expected is None:
            raise RegistryError(f"{fpath}: no sha256 recorded in {METADATA}")
        actual = sha256_file(fpath)
        if actual != expected:
            raise RegistryError(
                f"{fpath}: sha256 mismatch (expected {expected[:12]}..., got {actual[:12]}...)"
            )
        try:
            models[name] = joblib.load(fpath)
        except Exception as exc:  # corrupted despite matching hash / unpicklable classes
            raise RegistryError(f"{fpath}: cannot load artifact: {exc}") from exc
    return ModelBundle(version=version, models=models, metadata=meta, path=vdir)


def load_production(registry_dir: str | Path) -> ModelBundle:
    """Load the version named by ``<registry>/PRODUCTION``."""
    version = production_version(registry_dir, required=True)
    assert version is not None
    return load_version(registry_dir, version)


def _append_history(reg: Path, entry: dict[str, Any]) -> None:
    entry = {"at": datetime.now(UTC).isoformat(), **entry}
    with (reg / HISTORY).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def read_history(registry_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(registry_dir) / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_pointer(reg: Path, version: str) -> None:
    tmp = reg / f".{POINTER}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, reg / POINTER)


def promote(registry_dir: str | Path, version: str) -> str | None:
    """Make ``version`` production after verifying it loads; returns the previous production version."""
    reg = Path(registry_dir)
    load_version(reg, version)
    previous = production_version(reg, required=False)
    _write_pointer(reg, version)
    _append_history(reg, {"action": "promote", "version": version, "previous": previous})
    return previous


def _production_stack(history: list[dict[str, Any]]) -> list[str]:
    stack: list[str] = []
    for entry in history:
        if entry.get("action") == "promote":
            stack.append(entry["version"])
        elif entry.get("action") == "rollback" and stack:
            stack.pop()
    return stack


def rollback(registry_dir: str | Path) -> str:
    """Return production to the version that preceded the current one; returns that version."""
    reg = Path(registry_dir)
    current = production_version(reg, required=True)
    stack = _production_stack(read_history(reg))
    if len(stack) < 2:
        raise RegistryError(f"{reg / HISTORY}: no previous production version to roll back to")
    target = stack[-2]
    load_version(reg, target)
    _write_pointer(reg, target)
    _append_history(reg, {"action": "rollback", "version": target, "previous": current})
    return target
