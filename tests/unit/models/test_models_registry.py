"""Registry: save/load, integrity checks with a precise message for EVERY failure, promote/rollback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models import registry as R
from models.features import FEATURE_NAMES
from models.registry import RegistryError, load_production, load_version, promote, rollback

pytestmark = pytest.mark.unit


def test_round_trip_and_metadata(registry: Path) -> None:
    bundle = load_version(registry, "v1")
    meta = bundle.metadata
    assert meta["version"] == "v1"
    assert meta["feature_names"] == list(FEATURE_NAMES)
    assert set(meta["artifacts"]) == {f"{a}.joblib" for a in R.ARTIFACTS}
    assert all(len(h) == 64 for h in meta["artifacts"].values())
    assert {"python", "sklearn", "numpy"} <= set(meta["runtime"])
    assert meta["created_at"]
    out = bundle.predict(np.zeros((3, len(FEATURE_NAMES))))
    assert out["probability"].shape == (3,)
    assert np.all(out["ttf_q10"] <= out["ttf_q50"]) and np.all(out["ttf_q50"] <= out["ttf_q90"])


def test_promote_rollback_history(registry: Path) -> None:
    assert promote(registry, "v1") is None
    assert promote(registry, "v2") == "v1"
    assert load_production(registry).version == "v2"
    assert rollback(registry) == "v1"
    assert load_production(registry).version == "v1"
    with pytest.raises(RegistryError, match="no previous production version"):
        rollback(registry)
    actions = [(h["action"], h["version"]) for h in R.read_history(registry)]
    assert actions == [("promote", "v1"), ("promote", "v2"), ("rollback", "v1")]
    listed = {v["version"]: v["production"] for v in R.list_versions(registry)}
    assert listed == {"v1": True, "v2": False}


def test_missing_registry_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(RegistryError, match=r"nope: registry directory does not exist"):
        load_production(missing)
    with pytest.raises(RegistryError, match=r"nope: registry directory does not exist"):
        load_version(missing, "v1")


def test_missing_pointer(registry: Path) -> None:
    with pytest.raises(RegistryError, match=r"PRODUCTION: production pointer missing"):
        load_production(registry)


def test_empty_pointer(registry: Path) -> None:
    (registry / "PRODUCTION").write_text("\n")
    with pytest.raises(RegistryError, match=r"PRODUCTION: production pointer is empty"):
        load_production(registry)


def test_pointer_to_missing_version(registry: Path) -> None:
    (registry / "PRODUCTION").write_text("v9\n")
    with pytest.raises(RegistryError, match=r"v9: version directory does not exist"):
        load_production(registry)


def test_missing_metadata(registry: Path) -> None:
    (registry / "v1" / "metadata.json").unlink()
    with pytest.raises(RegistryError, match=r"v1/metadata.json: metadata file missing"):
        load_version(registry, "v1")


def test_corrupt_metadata(registry: Path) -> None:
    (registry / "v1" / "metadata.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"metadata.json: metadata is not valid JSON"):
        load_version(registry, "v1")


def test_missing_artifact(registry: Path) -> None:
    (registry / "v1" / "ttf_q90.joblib").unlink()
    with pytest.raises(RegistryError, match=r"v1/ttf_q90.joblib: artifact file missing"):
        load_version(registry, "v1")


def test_hash_mismatch(registry: Path) -> None:
    shutil.copy(registry / "v2" / "ttf_q10.joblib", registry / "v1" / "classifier.joblib")
    with pytest.raises(RegistryError, match=r"v1/classifier.joblib: sha256 mismatch"):
        load_version(registry, "v1")


def test_hash_missing_in_metadata(registry: Path) -> None:
    path = registry / "v1" / "metadata.json"
    meta = json.loads(path.read_text())
    del meta["artifacts"]["classifier.joblib"]
    path.write_text(json.dumps(meta))
    with pytest.raises(RegistryError, match=r"classifier.joblib: no sha256 recorded"):
        load_version(registry, "v1")


def _edit_meta(registry: Path, **changes: object) -> None:
    path = registry / "v1" / "metadata.json"
    meta = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "sklearn":
            meta["runtime"]["sklearn"] = value
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))


def test_incompatible_sklearn(registry: Path) -> None:
    _edit_meta(registry, sklearn="0.24.2")
    with pytest.raises(
        RegistryError, match=r"metadata.json: incompatible scikit-learn version: built with 0.24.2"
    ):
        load_version(registry, "v1")


def test_feature_mismatch(registry: Path) -> None:
    names = list(FEATURE_NAMES)
    names[3] = "something_else"
    _edit_meta(registry, feature_names=names)
    with pytest.raises(RegistryError, match=r"feature mismatch: .* position 3: 'something_else'"):
        load_version(registry, "v1")
    _edit_meta(registry, feature_names=list(FEATURE_NAMES)[:-1])
    with pytest.raises(RegistryError, match=r"feature mismatch: model has \d+ features"):
        load_version(registry, "v1")


def test_promote_refuses_broken_version(registry: Path) -> None:
    (registry / "v2" / "normal_model.joblib").write_bytes(b"x")
    with pytest.raises(RegistryError, match=r"v2/normal_model.joblib: sha256 mismatch"):
        promote(registry, "v2")
    assert not (registry / "PRODUCTION").exists()


def test_save_refuses_incomplete_or_duplicate(registry: Path, tiny_bundle_models: dict) -> None:
    with pytest.raises(RegistryError, match="missing artifacts"):
        R.save_version(registry, {"classifier": 1}, {})
    with pytest.raises(RegistryError, match="v1: version already exists"):
        R.save_version(registry, tiny_bundle_models, {}, version="v1")
    assert not [p for p in registry.iterdir() if p.name.startswith(".v")]


def test_unknown_model_feature(registry: Path) -> None:
    _edit_meta(registry, model_features=["gearbox_bearing_temp_c__resid_dev_24h", "not_a_feature"])
    with pytest.raises(RegistryError, match=r"feature mismatch: model inputs \['not_a_feature'\]"):
        load_version(registry, "v1")


def test_cli_list_promote_rollback(registry: Path) -> None:
    from typer.testing import CliRunner

    from models.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["promote", "v1", "--registry", str(registry)]).exit_code == 0
    assert runner.invoke(app, ["promote", "v2", "--registry", str(registry)]).exit_code == 0
    res = runner.invoke(app, ["list", "--registry", str(registry), "--json"])
    assert res.exit_code == 0 and '"production": true' in res.output
    assert runner.invoke(app, ["rollback", "--registry", str(registry)]).exit_code == 0
    assert load_production(registry).version == "v1"
    bad = runner.invoke(app, ["promote", "v9", "--registry", str(registry)])
    assert bad.exit_code == 2
