"""Shared kernel of the cockpit: event contracts, settings, database access, logging and metrics.

It never imports faust or FastAPI, so every service (and every pure core) can depend on it.
"""
