"""One small trained model registry for every integration test that needs a production model.

Why shared: training even the small fleet takes 30 s idle and minutes on busy CI cores; the scorer,
operations, onboarding and deployment tests all need the same thing, so the session trains it once
(``integration_registry_dir`` in tests/integration/conftest.py) and each user checks it still loads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TRAIN_SNIPPET = """
import sys
from pathlib import Path
from models.pipeline import train_and_register
from models.train import TrainSettings
settings = TrainSettings(n_turbines=16, days=365, seed=7, holdout_turbines=2, holdout_days=20,
                         holdout_seed=1007, sample_every_hours=4.0, threads=1)
train_and_register(Path(sys.argv[1]), settings, promote_if="always")
"""
CHECK_SNIPPET = "import sys; from models.registry import load_production; load_production(sys.argv[1])"


def ensure_compatible(registry: Path) -> Path:
    """Make sure the production version loads with the code a worker subprocess will import now.

    Why a subprocess: ``models`` is developed in parallel in the same tree; a version trained earlier in
    the session can stop matching the feature list. Then a new version is trained and promoted (the
    same thing an operator does).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ok = (
        subprocess.run(
            [sys.executable, "-c", CHECK_SNIPPET, str(registry)], cwd=ROOT, env=env, capture_output=True
        ).returncode
        == 0
    )
    if not ok:
        subprocess.run(
            [sys.executable, "-c", TRAIN_SNIPPET, str(registry)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    return registry
