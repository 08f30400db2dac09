"""Production model holder: load at start, hot-swap when the registry's PRODUCTION pointer changes.

Why a holder instead of loading in the agent: loading (joblib + hash checks) takes a while and runs
in an executor; the agent just picks up ``holder.scorer`` at the start of each batch, so a promotion
takes effect on the next batch without a restart, and a broken new version keeps the old one running.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from common.logging import event
from models.calibration import Calibration
from models.calibration_registry import calibrations_dir, load_calibration, production_calibration_version
from models.operational import OperationalScorer
from models.policy import RiskPolicy
from models.registry import RegistryError, load_version, production_version
from models.scoring import BatchScorer

log = logging.getLogger(__name__)


class ModelHolder:
    def __init__(self, registry_dir: Path, policy: RiskPolicy) -> None:
        self.registry_dir = registry_dir
        self.policy = policy
        self.scorer: BatchScorer | None = None
        self.error: str | None = None
        # The fleet's own calibration (optional: without one, operational-only turbines cannot be scored).
        self.calibration: Calibration | None = None
        self.operational: OperationalScorer | None = None
        self.calibration_error: str | None = None
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        return None if self.scorer is None else self.scorer.bundle.version

    @property
    def calibration_version(self) -> str | None:
        return None if self.calibration is None else self.calibration.version

    def refresh(self) -> bool:
        """Load the production model and calibration if they changed; True when either was installed."""
        with self._lock:
            model = self._refresh_model()
            calibration = self._refresh_calibration()
            return model or calibration

    def _refresh_calibration(self) -> bool:
        """Same rules as the model: a new production calibration is picked up, a broken one keeps the
        current one. No pointer at all means no calibration (operational turbines are not scored)."""
        where = calibrations_dir(self.registry_dir)
        try:
            wanted = production_calibration_version(self.registry_dir)
            if wanted is None:
                if self.calibration is None and self.calibration_error is None:
                    event(log, "no production calibration", logging.WARNING, path=str(where))
                if self.calibration is None:
                    self.calibration_error = f"{where}: no production calibration"
                return False
            if wanted == self.calibration_version:
                return False
            cal = load_calibration(self.registry_dir, wanted)
            operational = OperationalScorer(self.policy, cal)
        except Exception as exc:  # a broken promotion keeps the current calibration
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
            if error != self.calibration_error:
                event(
                    log,
                    "production calibration failed to load; keeping the current one",
                    logging.ERROR,
                    error=error,
                    current=self.calibration_version,
                )
            self.calibration_error = error
            return False
        previous = self.calibration_version
        self.calibration, self.operational, self.calibration_error = cal, operational, None
        event(log, "calibration loaded", calibration_version=cal.version, previous=previous)
        return True

    def _refresh_model(self) -> bool:
        """Load the production model version if the pointer names another one."""
        try:
            wanted = production_version(self.registry_dir, required=True)
        except RegistryError as exc:
            self.error = str(exc)
            if self.scorer is None:
                event(log, "no production model", logging.ERROR, error=self.error)
            return False
        if wanted == self.version:
            return False
        try:
            bundle = load_version(self.registry_dir, str(wanted))
        except RegistryError as exc:
            self.error = str(exc)
            event(
                log,
                "production model failed to load; keeping the current one",
                logging.ERROR,
                error=self.error,
                current=self.version,
            )
            return False
        previous = self.version
        self.scorer = BatchScorer(bundle, self.policy)
        self.error = None
        event(log, "model loaded", model_version=bundle.version, previous=previous)
        return True
