"""Prometheus helpers shared by the services (no web framework here)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Info, start_http_server


def serve_metrics(port: int, registry: CollectorRegistry | None = None, addr: str = "127.0.0.1") -> None:
    """Expose ``/metrics`` on a background thread (used by CLI processes such as producers)."""
    if registry is None:
        start_http_server(port, addr=addr)
    else:
        start_http_server(port, addr=addr, registry=registry)


def build_info(component: str, version: str, registry: CollectorRegistry | None = None) -> Info:
    """``cockpit_build_info{component=...,version=...}`` so dashboards can tell what runs."""
    from prometheus_client import REGISTRY

    info = Info(
        f"cockpit_{component}_build",
        f"Build information of the {component}",
        registry=registry if registry is not None else REGISTRY,
    )
    info.info({"component": component, "version": version})
    return info
