"""POST /v1/sweeps end to end: auth, then the command read back from the real Kafka topic."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer

from api.app import create_app
from api.settings import ApiSettings
from common.contracts import SweepCommand
from tests.integration.api.conftest import API_KEY, free_port

pytestmark = pytest.mark.integration


def test_sweep_requires_key(client: TestClient) -> None:
    res = client.post("/v1/sweeps")
    assert res.status_code == 401 and res.headers["www-authenticate"] == "ApiKey"
    assert client.post("/v1/sweeps", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/v1/sweeps", headers={"X-API-Key": API_KEY + "x"}).status_code == 401


def test_sweep_publishes_command(client: TestClient, kafka_bootstrap: str, command_topic: str) -> None:
    res = client.post("/v1/sweeps", headers={"X-API-Key": API_KEY})
    assert res.status_code == 202, res.text
    body = res.json()
    run_id = uuid.UUID(body["run_id"])
    assert body["link"] == f"/v1/runs/{run_id}" and res.headers["location"] == body["link"]
    assert body["status"] == "requested"

    consumer = KafkaConsumer(
        command_topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=60000,
        group_id=None,
    )
    mine = []
    try:
        for msg in consumer:
            if orjson.loads(msg.value).get("command") != "sweep":
                continue  # the topic also carries other commands (repairs from the interventions tests)
            command = SweepCommand.model_validate_json(msg.value)
            if command.run_id == run_id:
                mine.append(command)
                assert msg.key == str(run_id).encode()
                break
    finally:
        consumer.close()
    assert len(mine) == 1
    assert mine[0].command == "sweep" and mine[0].requested_by == "api"
    # the API never writes: the run does not exist until the scorer creates it
    assert client.get(body["link"]).status_code == 404


def test_sweeps_disabled_without_key(make_settings: Callable[..., ApiSettings]) -> None:
    with TestClient(create_app(make_settings(api_key=None))) as c:
        res = c.post("/v1/sweeps", headers={"X-API-Key": "anything"})
        assert res.status_code == 503
        assert res.json()["detail"] == "sweeps disabled: COCKPIT_API_KEY not configured"


def test_sweep_kafka_down_is_503(make_settings: Callable[..., ApiSettings]) -> None:
    settings = make_settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_timeout_seconds=2)
    with TestClient(create_app(settings)) as c:
        res = c.post("/v1/sweeps", headers={"X-API-Key": API_KEY})
        assert res.status_code == 503 and res.json()["detail"] == "kafka unavailable"
        ready = c.get("/readyz")  # Kafka serves sweeps only: the API still serves reads
        assert ready.status_code == 200 and set(ready.json()["checks"]) == {"database"}, ready.text
