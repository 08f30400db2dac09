"""Named incident scenarios, version-controlled as YAML files next to this module.

Why files: a demo or a bug report can say "run ``gearbox_bearing_failure``" and everybody gets the
same turbines, the same incident and the same numbers (the seed is part of the scenario).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from common import config_files
from simulator.config import ConfigError, FleetConfig
from simulator.fleet import Fleet

SCENARIO_DIR = Path(__file__).resolve().parent


class UnknownScenarioError(LookupError):
    """Raised for a scenario name that has no YAML file; the message lists the available names."""

    def __init__(self, name: str, available: list[str]) -> None:
        names = ", ".join(available) or "(none)"
        super().__init__(f"unknown scenario {name!r}; available scenarios: {names}")
        self.name = name
        self.available = available


class Scenario(BaseModel):
    """A named, reproducible simulation: description plus a complete :class:`FleetConfig`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    config: FleetConfig

    def fleet(self) -> Fleet:
        """The simulated fleet of this scenario."""
        return Fleet(self.config)


def list_scenarios() -> list[str]:
    """Names of the bundled scenarios, sorted."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario_file(path: str | Path) -> Scenario:
    """Load a scenario YAML file from anywhere (e.g. a customer's incident reproduction)."""
    data = config_files.read_yaml(path, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a mapping with name, description and config")
    return config_files.parse_config(data, Scenario, ConfigError, str(path), "simulator configuration")


def load_scenario(name: str) -> Scenario:
    """Load a bundled scenario by name (or a ``.yaml`` path)."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return load_scenario_file(name)
    path = SCENARIO_DIR / f"{name}.yaml"
    if "/" in name or "\\" in name or not path.is_file():
        raise UnknownScenarioError(name, list_scenarios())
    scenario = load_scenario_file(path)
    if scenario.name != name:
        raise ConfigError(f"{path}: scenario name {scenario.name!r} does not match its file name")
    return scenario


__all__ = ["Scenario", "UnknownScenarioError", "list_scenarios", "load_scenario", "load_scenario_file"]
