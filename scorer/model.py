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
        self._lock = threading.Lock()

    @property
    def version(self) -> str | None:
        return None if self.scorer is None else self.scorer.bundle.version

    def refresh(self) -> bool:
        """Load the production version if it changed; True when a new version was installed."""
        with self._lock:
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
