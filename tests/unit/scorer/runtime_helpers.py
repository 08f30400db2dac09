"""A ScorerRuntime without faust, Kafka or PostgreSQL: fake sinks, an empty fleet register, no model.

Without a model the processor still validates, deduplicates, updates windows and builds the turbine,
latest and aggregate rows; scores are not needed to test acks, retries and restores.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from common.contracts import SIGNALS, make_event_id
from common.settings import load_settings
from models.policy import load_policy
from scorer.fleet import RegisterHolder
from scorer.ingest import FetchedBatch
from scorer.model import ModelHolder
from scorer.processing import RawRecord
from scorer.runtime import ScorerRuntime
from scorer.settings import ScorerSettings
from tests.unit.scorer.fakes import FakeCommitter, FakeSink

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def make_runtime(tmp_path: Path, sink: FakeSink | None = None) -> tuple[ScorerRuntime, FakeSink]:
    """A runtime on fakes; the offsets its checkpoints ack are in ``committed(rt)``."""
    from common.fleet import FleetRegister

    settings = load_settings(
        ScorerSettings,
        registry_dir=str(tmp_path),
        db_retry_max_backoff_s=0.01,
        telemetry_topic="telemetry",
        consumer_group="unit",
    )
    sink = sink or FakeSink()
    registers = RegisterHolder("", 3600.0, loader=lambda _url: FleetRegister(turbines={}))
    rt = ScorerRuntime(
        settings, ModelHolder(tmp_path, load_policy()), sink=sink, aux_sink=FakeSink(), registers=registers
    )
    rt.model_ready.set()  # no model in tmp_path: the stream runs without scoring
    rt.committer = FakeCommitter()
    return rt, sink


def committed(rt: ScorerRuntime) -> list[dict[int, int]]:
    """Every ack_offsets call of the runtime's checkpoints (partition -> next offset), in order."""
    assert isinstance(rt.committer, FakeCommitter)
    return rt.committer.acks


def reading(tid: str, minute: int, value: float = 50.0) -> bytes:
    t = T0 + timedelta(minutes=minute)
    d: dict[str, Any] = {
        "schema_version": 1,
        "event_id": make_event_id(tid, t),
        "turbine_id": tid,
        "site_id": "SITE-U",
        "event_time": t.isoformat(),
    }
    d.update(dict.fromkeys(SIGNALS, None))
    d.update(
        {"power_kw": 1000.0, "wind_speed_ms": 8.0, "ambient_temp_c": 10.0, "gearbox_bearing_temp_c": value}
    )
    d["status_code"] = 0
    return orjson.dumps(d)


def records(specs: list[tuple[str, int]], partition: int = 0, start: int = 0) -> list[RawRecord]:
    """One record per (turbine, minute) on ``partition`` from offset ``start``."""
    return [
        RawRecord(partition, start + i, 1.0, reading(tid, minute), "telemetry", tid.encode())
        for i, (tid, minute) in enumerate(specs)
    ]


def events(
    specs: list[tuple[str, int]], partition: int = 0, start: int = 0, generation: int | None = None
) -> list[FetchedBatch]:
    """A micro-batch of one fetched batch: one record per (turbine, minute) on ``partition``."""
    return [FetchedBatch(generation, records(specs, partition, start))]
