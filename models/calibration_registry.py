"""Calibrations in the model registry: versioned directories, a sha256, a production pointer.

Layout::

    <registry>/calibrations/<version>/calibration.json   # models.calibration.Calibration.to_dict()
    <registry>/calibrations/<version>/metadata.json      # version, fitted_at, data span, turbines,
                                                         # refused, sha256 of calibration.json
    <registry>/calibrations/PRODUCTION                   # one line: the production calibration
    <registry>/calibrations/HISTORY.jsonl                # every promotion

Why beside the models and as strict: a scorer that loads a half-written or edited calibration judges
every turbine against the wrong normal. Versions are written to a temporary directory and renamed;
every load failure raises :class:`CalibrationRegistryError` naming the path and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.calibration import Calibration, CalibrationError

CALIBRATIONS_DIR = "calibrations"
POINTER = "PRODUCTION"
HISTORY = "HISTORY.jsonl"
DATA = "calibration.json"
METADATA = "metadata.json"


class CalibrationRegistryError(Exception):
    """A calibration registry operation failed; the message names the path and the reason."""


def calibrations_dir(registry_dir: str | Path) -> Path:
    return Path(registry_dir) / CALIBRATIONS_DIR


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _metadata(cal: Calibration, sha: str) -> dict[str, Any]:
    return {
        "version": cal.version,
        "fitted_at": cal.fitted_at,
        "data_start": cal.data_start,
        "data_end": cal.data_end,
        "source": cal.source,
        "air_density": cal.air_density,
        "turbines": sorted(cal.turbines),
        "sensor_sets": {tid: tc.sensor_set for tid, tc in sorted(cal.turbines.items())},
        "refused": dict(cal.refused),
        "requirements": cal.requirements,
        "sha256": {DATA: sha},
    }


def save_calibration(registry_dir: str | Path, cal: Calibration, promote: bool = True) -> Path:
    """Write ``cal`` as a new version (atomic); with ``promote`` make it the production calibration."""
    base = calibrations_dir(registry_dir)
    base.mkdir(parents=True, exist_ok=True)
    final = base / cal.version
    if final.exists():
        raise CalibrationRegistryError(f"{final}: calibration version already exists")
    data = json.dumps(cal.to_dict(), indent=1, allow_nan=True).encode("utf-8")
    tmp = Path(tempfile.mkdtemp(prefix=f".{cal.version}.", dir=base))
    try:
        (tmp / DATA).write_bytes(data)
        (tmp / METADATA).write_text(json.dumps(_metadata(cal, _sha256(data)), indent=2), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide it from a scorer running as another user
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if promote:
        promote_calibration(registry_dir, cal.version)
    return final


def production_calibration_version(registry_dir: str | Path) -> str | None:
    """The production calibration's version, None when there is none (no pointer)."""
    ptr = calibrations_dir(registry_dir) / POINTER
    if not ptr.is_file():
        return None
    name = ptr.read_text(encoding="utf-8").strip()
    if not name:
        raise CalibrationRegistryError(f"{ptr}: empty production pointer")
    return name


def load_calibration(registry_dir: str | Path, version: str) -> Calibration:
    """Load and verify one version (sha256, format); raises :class:`CalibrationRegistryError`."""
    vdir = calibrations_dir(registry_dir) / version
    if not vdir.is_dir():
        raise CalibrationRegistryError(f"{vdir}: calibration version directory does not exist")
    meta_path, data_path = vdir / METADATA, vdir / DATA
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CalibrationRegistryError(f"{meta_path}: missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationRegistryError(f"{meta_path}: invalid JSON: {exc}") from exc
    try:
        data = data_path.read_bytes()
    except FileNotFoundError as exc:
        raise CalibrationRegistryError(f"{data_path}: missing") from exc
    want = (meta.get("sha256") or {}).get(DATA) if isinstance(meta, dict) else None
    if not want:
        raise CalibrationRegistryError(f"{meta_path}: no sha256 for {DATA}")
    if _sha256(data) != want:
        raise CalibrationRegistryError(f"{data_path}: sha256 mismatch (file changed after it was saved)")
    try:
        cal = Calibration.from_dict(json.loads(data))
    except CalibrationError as exc:
        raise CalibrationRegistryError(f"{data_path}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise CalibrationRegistryError(
            f"{data_path}: unreadable calibration: {type(exc).__name__}: {exc}"
        ) from exc
    if cal.version != version:
        raise CalibrationRegistryError(f"{data_path}: holds version {cal.version!r}, not {version!r}")
    return cal


def load_production_calibration(registry_dir: str | Path) -> Calibration | None:
    """The production calibration, None when none was ever promoted; a broken one raises."""
    version = production_calibration_version(registry_dir)
    if version is None:
        return None
    return load_calibration(registry_dir, version)


def promote_calibration(registry_dir: str | Path, version: str) -> str | None:
    """Point production at ``version`` after verifying it loads; returns the previous version."""
    load_calibration(registry_dir, version)
    base = calibrations_dir(registry_dir)
    previous = production_calibration_version(registry_dir) if (base / POINTER).is_file() else None
    _write_atomic(base / POINTER, version + "\n")
    entry = {
        "at": datetime.now(UTC).isoformat(),
        "action": "promote",
        "version": version,
        "previous": previous,
    }
    with (base / HISTORY).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    return previous


def list_calibrations(registry_dir: str | Path) -> list[dict[str, Any]]:
    """Versions (oldest first) with their metadata and whether each is in production."""
    base = calibrations_dir(registry_dir)
    if not base.is_dir():
        return []
    try:
        prod = production_calibration_version(registry_dir)
    except CalibrationRegistryError:
        prod = None
    out = []
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            meta = json.loads((d / METADATA).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
        out.append(
            {
                "version": d.name,
                "production": d.name == prod,
                "fitted_at": meta.get("fitted_at"),
                "data_start": meta.get("data_start"),
                "data_end": meta.get("data_end"),
                "turbines": len(meta.get("turbines") or []),
                "refused": len(meta.get("refused") or {}),
            }
        )
    return out
