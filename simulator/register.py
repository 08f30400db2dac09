"""The simulated fleet's own fleet register (``python -m simulator register --out FILE``).

Why: the cockpit shows what the register says about each turbine (rated power, rotor, commissioning
date, fitted sensors). The demo fleet gets one too, built from the same configuration the simulator runs,
so ``make run`` shows its rated power. What the simulator does not model (hub height, coordinates) is left
out rather than invented. Every contract signal is simulated, so every sensor is declared fitted.
"""

from __future__ import annotations

from common.contracts import SIGNALS
from common.fleet import FleetRegister, TurbineSpec
from simulator.config import FleetConfig
from simulator.engine import Simulation

#: Manufacturer shown for simulated turbines (so nobody mistakes them for a real make).
MANUFACTURER = "EnergiTech simulator"


def fleet_register(config: FleetConfig) -> FleetRegister:
    """The register of the fleet ``config`` simulates (same ids, sites and commissioning dates)."""
    turbine = config.turbine
    model = f"simulated {turbine.rated_power_kw / 1000:g} MW, {2 * turbine.rotor_radius_m:g} m rotor"
    specs = [
        TurbineSpec(
            turbine_id=spec.turbine_id,
            site_id=spec.site_id,
            manufacturer=MANUFACTURER,
            model=model,
            rated_power_kw=float(spec.rated_power_kw),
            rotor_diameter_m=float(2 * turbine.rotor_radius_m),
            commissioning_date=spec.commissioned_on,
            fitted_sensors=frozenset(SIGNALS),
        )
        for spec in Simulation(config).specs
    ]
    return FleetRegister.from_specs(specs, source="simulator fleet")


__all__ = ["MANUFACTURER", "fleet_register"]
