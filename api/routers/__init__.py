"""Routers added beside :mod:`api.routes`, one module per concern (policy, planning)."""
