"""Invalid events go to the dead-letter topic with the original payload and a reason; the worker goes on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    consume_all,
    encode,
    new_group,
    publish,
    query,
    recent_fleet_records,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_invalid_events_are_dead_lettered_and_stream_continues(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    db = fresh_database("scorer_dlq")
    records = recent_fleet_records(3, 1.0)
    valid = list(encode(records))
    first, second = valid[: len(valid) // 2], valid[len(valid) // 2 :]
    good = orjson.loads(valid[0][1])
    future = dict(good, event_time=(datetime.now(UTC) + timedelta(days=2)).isoformat())
    ancient = dict(good, event_time="1999-12-31T00:00:00+00:00")  # before the floor (not an age limit)
    missing = {k: v for k, v in good.items() if k != "turbine_id"}
    wrong_type = dict(good, power_kw="lots")
    unknown_version = dict(good, schema_version=99)
    key = good["turbine_id"].encode()
    bad = [
        (key, b"{not json"),
        (key, orjson.dumps(missing)),
        (key, orjson.dumps(wrong_type)),
        (key, orjson.dumps(good).replace(b'"power_kw":', b'"power_kw":NaN,"x":', 1)),
        (key, orjson.dumps(unknown_version)),
        (key, orjson.dumps(future)),
        (key, orjson.dumps(ancient)),
        (key, b'{"schema_version": 1, "power_kw": Infinity}'),
    ]
    worker = start_worker(db, topics, new_group())
    worker.wait_ready()
    publish(kafka_bootstrap, topics.telemetry, first + bad + second)

    last = max(r["event_time"] for r in records)
    wait_for(
        lambda: query(db, "SELECT count(*) FROM telemetry_latest WHERE event_time = %s", (last,))[0][0] == 3,
        60,
        "all turbines' latest event = last produced",
    )
    letters = [orjson.loads(v) for v in consume_all(kafka_bootstrap, topics.dlq, len(bad))]
    assert len(letters) == len(bad)
    codes = sorted(d["code"] for d in letters)
    assert codes == sorted(
        [
            "malformed_json",
            "missing_field",
            "invalid_field",
            "malformed_json",
            "unknown_schema_version",
            "time_in_future",
            "time_too_old",
            "malformed_json",
        ]
    ) or {
        "malformed_json",
        "missing_field",
        "invalid_field",
        "unknown_schema_version",
        "time_in_future",
        "time_too_old",
    } <= set(codes)
    payloads = {d["payload"] for d in letters}
    assert "{not json" in payloads
    for d in letters:
        assert d["reason"] and d["source_topic"] == topics.telemetry and d["source_offset"] is not None
        assert d["key"] == good["turbine_id"] and d["payload_sha256"] and d["payload_size"] > 0
    wait_for(lambda: worker.metric("scorer_dead_letters_total") == len(bad), 15, "dead-letter counter")
    assert query(db, "SELECT count(*) FROM scorer_dead_letters")[0][0] == 0  # all went to the topic
    wait_for(
        lambda: worker.metric("scorer_events_invalid_total") == len(bad),
        15,
        "invalid counter",
    )
    assert worker.proc.poll() is None
    n_state = query(db, "SELECT count(*) FROM turbine_state")[0][0]
    assert n_state == 3
