"""HTTP API, web cockpit and CLI client of the predictive-maintenance cockpit (read-only on the database)."""

__version__ = "0.1.0"
