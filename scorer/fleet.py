"""The fleet register in the scorer, and the fleet scorer that routes each turbine by its sensors.

Why here and not in the agent: the register lives in PostgreSQL (``common.fleet_store``); reading it is
blocking I/O, so :class:`RegisterHolder.refresh` runs in a thread executor, at the first batch or sweep
and then every ``register_refresh_s``. A register that cannot be read keeps the last one (or none:
every turbine is then scored with the full set, as before the register existed) and says why.

:class:`FleetRouting` hands the stream and the sweep one :class:`models.fleet_scoring.FleetScorer`
built from the production model, the production calibration and the register, rebuilt only when one
of them changes: a promotion or a register import takes effect at the next batch without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.db import connect, redact
from common.fleet import FleetRegister
from common.logging import event
from models.fleet_scoring import FleetScorer

if TYPE_CHECKING:
    from scorer.model import ModelHolder

log = logging.getLogger("scorer")


class RegisterHolder:
    """The fleet register as last read from PostgreSQL (None until a read succeeded)."""

    def __init__(
        self,
        database_url: str,
        refresh_s: float,
        clock: Callable[[], float] = time.monotonic,
        loader: Callable[[str], FleetRegister] | None = None,
    ) -> None:
        self.database_url = database_url
        self.refresh_s = refresh_s
        self.register: FleetRegister | None = None
        self.error: str | None = None
        self.generation = 0  # bumped whenever the register in use changes
        self._clock = clock
        self._loader = loader or _load_from_database
        self._attempted: float | None = None
        self._lock = threading.Lock()

    def due(self) -> bool:
        """A read is due: never tried yet, or ``refresh_s`` passed since the last attempt."""
        last = self._attempted
        return last is None or self._clock() - last >= self.refresh_s

    def refresh(self) -> bool:
        """Read the register (blocking: call it in an executor); True when the one in use changed."""
        with self._lock:
            self._attempted = self._clock()
            try:
                fresh = self._loader(self.database_url)
            except Exception as exc:  # a read failure never stops scoring: keep the last register
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
                if error != self.error:
                    event(
                        log,
                        "fleet register could not be read; keeping the last one",
                        logging.WARNING,
                        error=error,
                        turbines=None if self.register is None else len(self.register.turbines),
                    )
                self.error = error
                return False
            self.error = None
            if self.register is not None and fresh == self.register:
                return False
            self.register = fresh
            self.generation += 1
            fitted = sum(1 for spec in fresh.turbines.values() if spec.fitted_sensors is not None)
            event(
                log,
                "fleet register loaded",
                turbines=len(fresh.turbines),  # from the database: those with fitted sensors only
                with_fitted_sensors=fitted,
                generation=self.generation,
            )
            return True


def _load_from_database(database_url: str) -> FleetRegister:
    from common.fleet_store import load_register

    conn = connect(database_url, autocommit=True)
    try:
        return load_register(conn, declared_sensors_only=True)  # what FleetScorer reads
    except Exception as exc:
        raise RuntimeError(f"reading the fleet register from {redact(database_url)}: {exc}") from exc
    finally:
        conn.close()


class FleetRouting:
    """One FleetScorer for the current model, calibration and register (rebuilt when one changes)."""

    def __init__(self, holder: ModelHolder, registers: RegisterHolder) -> None:
        self.holder = holder
        self.registers = registers
        self._key: tuple[int, int, int] | None = None
        self._scorer: FleetScorer | None = None

    def scorer(self) -> FleetScorer | None:
        """None while there is no production model (the worker is not ready then)."""
        full = self.holder.scorer
        if full is None:
            return None
        operational = self.holder.operational
        key = (id(full), id(operational), self.registers.generation)
        if key != self._key or self._scorer is None:
            self._scorer = FleetScorer(full, operational, self.registers.register)
            self._key = key
        return self._scorer
