"""Poison records and a failing dead-letter topic never stop the stream (real worker, Kafka, PostgreSQL).

One worker serves the three phases (its start-up is the slow part): (1) every poison record of issue 9
on a working dead-letter topic; (2) the dead-letter topic deleted mid-run: letters go to the
PostgreSQL fallback, the stream goes on, readiness says so; (3) the topic is back: the fallback rows are
re-published. In every phase a good event published AFTER the poison is scored, every offset is
accounted for (accepted or dead-lettered with its reason and code) and the worker stays alive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from common.contracts import InvalidEvent, check_record_key, parse_telemetry
from common.topics import TopicSpec, ensure_topics
from tests.integration.scorer.conftest import (
    Topics,
    Worker,
    encode,
    new_group,
    query,
    recent_fleet_records,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration

MAX_TELEMETRY = 4 << 20  # the source topic accepts the 1.5 MB payload (the broker would refuse it otherwise)
DLQ_MAX = 2 << 20  # = COCKPIT_DEAD_LETTER_MAX_MESSAGE_BYTES (default), as common.topics creates it


@pytest.fixture
def poison_topics(kafka_bootstrap: str) -> Iterator[Topics]:
    from kafka import KafkaAdminClient

    tag = uuid.uuid4().hex[:8]
    names = Topics(f"test-poison-{tag}-telemetry", f"test-poison-{tag}-dlq", f"test-poison-{tag}-cmd")
    ensure_topics(
        kafka_bootstrap,
        [
            TopicSpec(names.telemetry, 3, 1, {"max.message.bytes": str(MAX_TELEMETRY)}),
            TopicSpec(names.dlq, 1, 1, {"max.message.bytes": str(DLQ_MAX)}),
            TopicSpec(names.commands, 1, 1, {}),
        ],
    )
    yield names
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        existing = set(admin.list_topics())
        admin.delete_topics([t for t in (names.telemetry, names.dlq, names.commands) if t in existing])
    finally:
        admin.close()


def send(bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes]]) -> list[tuple[int, int]]:
    """Publish in order; returns (partition, offset) of each record."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=MAX_TELEMETRY + 4096)
    try:
        futures = [p.send(topic, key=k, value=v) for k, v in items]
        p.flush(60)
        metas = [f.get(30) for f in futures]
    finally:
        p.close()
    return [(m.partition, m.offset) for m in metas]


def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list[Any]:
    from kafka import KafkaConsumer

    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=16 << 20,
    )
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            out.extend(c)
    finally:
        c.close()
    return out


def expected_code(key: bytes | None, value: bytes) -> str:
    """What the contract says about a record (the worker must dead-letter it with this code)."""
    try:
        ev = parse_telemetry(value, now=datetime.now(UTC))
        check_record_key(ev, key)
    except InvalidEvent as exc:
        return exc.code
    raise AssertionError(f"not a poison record: {value[:80]!r}")


def poison_set(good: dict[str, Any], tag: str) -> list[tuple[bytes | None, bytes]]:
    tid = str(good["turbine_id"])
    t = datetime.fromisoformat(str(good["event_time"])) + timedelta(seconds=7)

    def ev(**changes: Any) -> bytes:
        return orjson.dumps(
            {**good, "event_id": f"{tag}-{uuid.uuid4().hex[:12]}", "event_time": t.isoformat(), **changes}
        )

    return [
        (tid.encode(), b'{"schema_version":' + b"1" * 10 + b',"pad":"' + b"x" * 1_500_000 + b'"}'),  # 1.5 MB
        (tid.encode(), b"\xff" * 700_000),  # non-UTF-8: once a 2.1 MB envelope
        (b"WT\x00P", ev(turbine_id="WT\x00P")),  # NUL in turbine_id
        (tid.encode(), ev(site_id="SITE\x00A")),  # NUL in site_id
        (tid.encode(), b'{"schema_version":[1]}'),  # unhashable: crashed the worker at every restart
        (tid.encode(), b'{"schema_version":{"v":1}}'),
        (tid.encode(), ev(power_kw=[1.0])),
        (tid.encode(), ev(turbine_id={"id": tid})),
        (b"SOMEONE-ELSE", ev()),  # key != turbine_id: once dropped silently as late
        (None, ev()),  # no key
    ]


def test_poison_records_and_a_failing_dead_letter_topic_never_stop_the_stream(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    poison_topics: Topics,
    start_worker: Callable[..., Worker],
) -> None:
    from kafka import KafkaAdminClient

    db = fresh_database("scorer_poison")
    records = recent_fleet_records(2, 0.75, seed=909)
    times = sorted({r["event_time"] for r in records})  # three slices of time, every turbine in each
    cut1, cut2 = times[len(times) // 3], times[2 * len(times) // 3]
    phases = [
        [r for r in records if r["event_time"] < cut1],
        [r for r in records if cut1 <= r["event_time"] < cut2],
        [r for r in records if r["event_time"] >= cut2],
    ]
    worker = start_worker(
        db,
        poison_topics,
        new_group(),
        dead_letter_retry_interval_s=2,
        dead_letter_publish_timeout_s=2,
        dead_letter_publish_attempts=2,
    )
    worker.wait_ready()
    good_sent = 0

    def run_phase(n: int, tag: str) -> tuple[list[tuple[int, int]], list[tuple[bytes | None, bytes]]]:
        nonlocal good_sent
        good = list(encode(phases[n]))
        poison = poison_set(orjson.loads(good[0][1]), tag)
        half = len(good) // 2
        positions = send(kafka_bootstrap, poison_topics.telemetry, good[:half] + poison + good[half:])
        good_sent += len(good)
        last = max(r["event_time"] for r in phases[n])
        try:  # the good events published after the poison are scored
            wait_for(
                lambda: (
                    query(db, "SELECT count(*) FROM telemetry_latest WHERE event_time = %s", (last,))[0][0]
                    == 2
                ),
                90,
                f"phase {n}: the events after the poison are scored",
            )
        except AssertionError:
            print(show(worker))
            raise
        assert worker.proc.poll() is None, show(worker)
        return positions[half : half + len(poison)], poison

    # ---------------------------------------------------------------- phase 1: every poison record
    where1, poison1 = run_phase(0, "p1")
    letters = [orjson.loads(m.value) for m in read_topic(kafka_bootstrap, poison_topics.dlq, len(poison1))]
    by_pos = {(d["source_partition"], d["source_offset"]): d for d in letters}
    assert set(by_pos) == set(where1), "every poison record is on the dead-letter topic, nothing else"
    for pos, (key, value) in zip(where1, poison1, strict=True):
        d = by_pos[pos]
        assert d["code"] == expected_code(key, value), d
        assert (
            d["reason"] and d["payload_size"] == len(value) and d["source_topic"] == poison_topics.telemetry
        )
    codes = {d["code"] for d in letters}
    assert {"key_mismatch", "invalid_field", "unknown_schema_version"} <= codes, codes
    big = [m for m in read_topic(kafka_bootstrap, poison_topics.dlq, len(poison1)) if len(m.value) > 1 << 20]
    assert big and all(len(m.value) <= DLQ_MAX for m in big)  # bounded, and the topic took it
    assert sum(1 for d in letters if d["key"] is None) == 1  # the keyless record
    # Nothing lost: every good event applied once; every record consumed.
    assert query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0] == good_sent
    wait_for(
        lambda: worker.metric("scorer_events_consumed_total") == good_sent + len(poison1), 15, "consumed"
    )
    assert query(db, "SELECT count(*) FROM turbines")[0][0] == 2  # no turbine from a poison record
    assert worker.get("/readyz").status_code == 200, worker.get("/readyz").text

    # ---------------------------------------------------------------- phase 2: the DLQ topic disappears
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_topics([poison_topics.dlq])
        wait_for(lambda: poison_topics.dlq not in admin.list_topics(), 30, "dead-letter topic deleted")
    finally:
        admin.close()
    t0 = time.monotonic()
    where2, poison2 = run_phase(1, "p2")
    stream_s = time.monotonic() - t0
    rows = query(
        db,
        "SELECT source_partition, source_offset, code, reason, published_at, length(envelope) "
        "FROM scorer_dead_letters",
    )
    fallback = {(r[0], r[1]): r for r in rows}
    assert set(fallback) == set(where2), "every letter of phase 2 is in the fallback table"
    for pos, (key, value) in zip(where2, poison2, strict=True):
        row = fallback[pos]
        assert row[2] == expected_code(key, value) and row[3] and row[5] <= DLQ_MAX
    ready = worker.get("/readyz")
    assert "dead letters not published" in ready.text, ready.text  # a reported degradation
    assert worker.metric("scorer_dead_letters_total") >= len(poison1) + len(poison2)
    assert query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0] == good_sent
    print(f"phase 2 (dead-letter topic missing): good events scored {stream_s:.1f} s after publishing")

    # ---------------------------------------------------------------- phase 3: the topic is back
    ensure_topics(kafka_bootstrap, [TopicSpec(poison_topics.dlq, 1, 1, {"max.message.bytes": str(DLQ_MAX)})])
    wait_for(
        lambda: query(db, "SELECT count(*) FROM scorer_dead_letters WHERE published_at IS NULL")[0][0] == 0,
        60,
        "fallback rows re-published",
    )
    republished = [
        orjson.loads(m.value) for m in read_topic(kafka_bootstrap, poison_topics.dlq, len(poison2))
    ]
    assert {(d["source_partition"], d["source_offset"]) for d in republished} >= set(where2)
    wait_for(lambda: "dead letters not published" not in worker.get("/readyz").text, 30, "warning cleared")
    where3, poison3 = run_phase(2, "p3")
    after = read_topic(kafka_bootstrap, poison_topics.dlq, len(poison2) + len(poison3))
    assert {
        (orjson.loads(m.value)["source_partition"], orjson.loads(m.value)["source_offset"]) for m in after
    } >= set(where3)
    assert query(db, "SELECT sum(samples) FROM telemetry_agg")[0][0] == good_sent
    assert worker.proc.poll() is None and worker.get("/readyz").status_code == 200
