"""No valid production model: the worker starts, reports not-ready naming the path, consumes nothing;
once a version is promoted it becomes ready and processes what waited in Kafka (nothing lost)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    encode,
    new_group,
    publish,
    query,
    recent_fleet_records,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_starts_not_ready_without_model_then_catches_up(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
    tiny_registry: Path,
    tmp_path: Path,
) -> None:
    db = fresh_database("scorer_nomodel")
    registry = tmp_path / "empty-registry"
    registry.mkdir()
    worker = start_worker(db, topics, new_group(), registry=registry)

    def not_ready() -> dict | None:
        try:
            r = worker.get("/readyz")
        except Exception:
            return None
        return r.json() if r.status_code == 503 else None

    body = wait_for(not_ready, 60, "503 from /readyz")
    assert str(registry / "PRODUCTION") in body["problems"][0]
    records = recent_fleet_records(2, 0.5, seed=707)
    publish(kafka_bootstrap, topics.telemetry, encode(records))
    wait_for(lambda: '"waiting for a valid production model before consuming"' in worker.log(), 30, "waiting")
    assert query(db, "SELECT count(*) FROM telemetry_latest")[0][0] == 0

    version = (tiny_registry / "PRODUCTION").read_text().strip()
    shutil.copytree(tiny_registry / version, registry / version)
    (registry / "PRODUCTION").write_text(version + "\n")
    worker.wait_ready(30)
    last = max(r["event_time"] for r in records)
    wait_for(
        lambda: query(db, "SELECT count(*) FROM telemetry_latest WHERE event_time = %s", (last,))[0][0] == 2,
        60,
        "events processed after the model appeared",
    )
    assert query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0] == len(records)
