"""The app factory: no work at import, OpenAPI buildable without a database, CORS opt-in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from api.app import create_app
from api.settings import ApiSettings

pytestmark = pytest.mark.unit


def test_import_does_no_work() -> None:
    code = "import api.app, api.cli, api.routes; import sys; assert 'uvicorn' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_openapi_without_database() -> None:
    app = create_app(ApiSettings(_env_file=None, reader_database_url="postgresql://x@127.0.0.1:1/x"))  # type: ignore[call-arg]
    spec = app.openapi()
    paths = set(spec["paths"])
    assert {
        "/v1/turbines",
        "/v1/turbines/{turbine_id}",
        "/v1/turbines/{turbine_id}/history",
        "/v1/fleet/summary",
        "/v1/runs",
        "/v1/runs/{run_id}",
        "/v1/sweeps",
        "/v1/supervision",
        "/healthz",
        "/readyz",
    } <= paths
    for path, item in spec["paths"].items():
        for op in item.values():
            assert op.get("summary") or op.get("description"), path
    tier = next(p for p in spec["paths"]["/v1/turbines"]["get"]["parameters"] if p["name"] == "tier")
    assert tier["description"]


def test_cors_is_opt_in() -> None:
    from starlette.middleware.cors import CORSMiddleware

    closed = create_app(ApiSettings(_env_file=None))  # type: ignore[call-arg]
    assert not any(m.cls is CORSMiddleware for m in closed.user_middleware)
    opened = create_app(ApiSettings(_env_file=None, cors_origins=["http://ops.example"]))  # type: ignore[call-arg]
    assert any(m.cls is CORSMiddleware for m in opened.user_middleware)
