"""Database unreachable: JSON 503 with a reason (never a stack trace); liveness unaffected."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from tests.integration.api.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dead_client(make_settings: Callable[..., ApiSettings]) -> Iterator[TestClient]:
    dead = f"postgresql://cockpit_reader:cockpit_reader@127.0.0.1:{free_port()}/cockpit"
    settings = make_settings(reader_database_url=dead, db_pool_timeout_seconds=1)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    "path",
    [
        "/v1/turbines",
        "/v1/turbines/WT-001",
        "/v1/turbines/WT-001/history",
        "/v1/fleet/summary",
        "/v1/supervision",
        "/v1/runs",
        "/v1/runs/00000000-0000-4000-8000-000000000000",
    ],
)
def test_data_endpoints_answer_503(dead_client: TestClient, path: str) -> None:
    res = dead_client.get(path)
    assert res.status_code == 503
    body = res.json()
    assert body["detail"] == "database unavailable" and body["reason"]
    assert "Traceback" not in res.text


def test_probes_with_database_down(dead_client: TestClient) -> None:
    assert dead_client.get("/healthz").status_code == 200
    ready = dead_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False
    metrics = dead_client.get("/metrics")
    assert metrics.status_code == 200 and "cockpit_api_database_up 0.0" in metrics.text


def test_validation_still_runs_before_the_database(dead_client: TestClient) -> None:
    assert dead_client.get("/v1/turbines?limit=0").status_code == 422
