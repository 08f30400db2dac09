"""Where a restarted simulator resumes: right after the newest event it already published.

Why: after ``make down && make run`` the demo simulator used to start again ``--days`` back; every event
was older than what the scorer already held for those turbines (rejected as ``late``) for many minutes.
The topic itself is the memory: the newest event time of this fleet's turbine ids in the telemetry topic
is where the previous run stopped. Reading it is bounded in time and records; anything unreadable means
"start fresh", never a crash. A record dated beyond the contract's future limit (``now`` plus
``DEFAULT_MAX_FUTURE_SKEW``: the scorer dead-letters it as ``time_in_future``) is not an event this
fleet published: one such record (seen: a hostile record dated 2099) made the demo simulator resume in
2099 and publish nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from common.contracts import DEFAULT_MAX_FUTURE_SKEW
from common.logging import event

log = logging.getLogger(__name__)

#: Records read per partition and step when walking back from the end of the topic.
CHUNK = 5_000


@dataclass(frozen=True)
class ResumeDecision:
    """The chosen start and why (logged and printed)."""

    start: datetime
    resumed: bool
    reason: str
    newest: datetime | None = None


def choose_start(newest: datetime | None, *, now: datetime, days: float, period_s: int) -> ResumeDecision:
    """Pure choice: one period after ``newest`` if that lies within the ``days`` window, else ``now - days``.

    Both results are aligned down to the period (simulator steps are aligned), so a resumed run continues
    the previous run's grid: no event published twice, no step missing.
    """
    fresh = _floor(now - timedelta(days=days), period_s)
    if newest is None:
        return ResumeDecision(fresh, False, "no earlier event of this fleet in the topic")
    following = _floor(newest, period_s) + timedelta(seconds=period_s)
    if following < fresh:
        return ResumeDecision(
            fresh, False, f"last event {newest.isoformat()} is older than the {days:g}-day window", newest
        )
    return ResumeDecision(following, True, f"last event in the topic: {newest.isoformat()}", newest)


def _floor(value: datetime, period_s: int) -> datetime:
    stamp = int(value.timestamp())
    return datetime.fromtimestamp(stamp - stamp % period_s, UTC)


def _owner_time(
    value: bytes | None, owners: Mapping[str, str], latest: datetime | None = None
) -> tuple[str, datetime] | None:
    """(group, event time) of a telemetry record whose turbine is in ``owners``; None for anything else,
    and for an event time after ``latest`` (the contract's future limit)."""
    if not value:
        return None
    try:
        item = orjson.loads(value)
        if not isinstance(item, dict):
            return None
        group = owners.get(item.get("turbine_id"))  # type: ignore[arg-type]
        raw = item.get("event_time")
        if group is None or not isinstance(raw, str):
            return None
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if latest is not None and when > latest:
        return None
    return group, when


def _event_time(
    value: bytes | None, wanted: Collection[str], latest: datetime | None = None
) -> datetime | None:
    """Event time of a telemetry record of one of ``wanted``'s turbines; None for anything else."""
    found = _owner_time(value, dict.fromkeys(wanted, ""), latest)
    return None if found is None else found[1]


def newest_event_time(
    bootstrap_servers: str,
    topic: str,
    turbine_ids: Collection[str],
    *,
    timeout_s: float = 15.0,
    chunk: int = CHUNK,
    max_records_per_partition: int = 200_000,
    consumer: Any = None,
    now: datetime | None = None,
) -> datetime | None:
    """Newest ``event_time`` of ``turbine_ids`` in ``topic`` (None: absent, empty or none of theirs).

    One group of :func:`newest_event_times`; raises ``KafkaError`` only when the broker cannot be reached.
    """
    return newest_event_times(
        bootstrap_servers,
        topic,
        {"": turbine_ids},
        timeout_s=timeout_s,
        chunk=chunk,
        max_records_per_partition=max_records_per_partition,
        consumer=consumer,
        now=now,
    )[""]


def newest_event_times(
    bootstrap_servers: str,
    topic: str,
    groups: Mapping[str, Collection[str]],
    *,
    timeout_s: float = 15.0,
    chunk: int = CHUNK,
    max_records_per_partition: int = 200_000,
    consumer: Any = None,
    now: datetime | None = None,
) -> dict[str, datetime | None]:
    """Newest ``event_time`` of each group of turbine ids in ``topic`` (None: none of that group's), in
    ONE read of the topic whatever the number of groups (e.g. every replay prefix at once).

    Reads every partition backwards from its end, ``chunk`` records at a time, until every group has been
    seen in that partition (a group's newest event is in the latest chunk that holds one of its events:
    other producers, e.g. an incident replay, may have written after it), the start of the partition,
    ``max_records_per_partition`` or ``timeout_s``. A group never found costs a full (bounded) read; one
    read per group cost a full read each. Records dated after ``now`` (the wall clock by default) plus the
    contract's future limit are skipped. Raises ``KafkaError`` only when the broker cannot be reached.
    """
    from kafka import KafkaConsumer, TopicPartition

    latest = (now or datetime.now(UTC)) + DEFAULT_MAX_FUTURE_SKEW

    owners = {tid: name for name, ids in groups.items() for tid in ids}
    newest: dict[str, datetime | None] = dict.fromkeys(groups)
    own = consumer is None
    if own:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            client_id="cockpit-producer-resume",
            request_timeout_ms=int(max(timeout_s, 5) * 1000) + 1000,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    read = 0
    try:
        ids = consumer.partitions_for_topic(topic)
        if not ids or not owners:
            return newest
        partitions = [TopicPartition(topic, p) for p in sorted(ids)]
        first = consumer.beginning_offsets(partitions)
        end = consumer.end_offsets(partitions)
        for tp in partitions:
            upper = end[tp]
            floor = max(first[tp], end[tp] - max_records_per_partition)
            missing = set(groups)
            while upper > floor and missing and time.monotonic() < deadline:
                lower = max(floor, upper - chunk)
                found = _scan(consumer, tp, lower, upper, owners, deadline, latest)
                read += upper - lower
                for name, when in found.items():
                    if name in missing:
                        missing.discard(name)
                        current = newest[name]
                        newest[name] = when if current is None or when > current else current
                upper = lower
        if time.monotonic() >= deadline:
            event(log, "resume scan ran out of time", logging.WARNING, topic=topic, timeout_s=timeout_s)
        event(
            log,
            "topic scanned for newest events",
            topic=topic,
            groups=len(groups),
            records=read,
            seconds=round(time.monotonic() - started, 3),
        )
        return newest
    finally:
        if own:
            consumer.close()


def _scan(
    consumer: Any,
    tp: Any,
    lower: int,
    upper: int,
    owners: Mapping[str, str],
    deadline: float,
    latest: datetime | None = None,
) -> dict[str, datetime]:
    """Newest event time per group among offsets ``[lower, upper)`` of one partition."""
    consumer.assign([tp])
    consumer.seek(tp, lower)
    newest: dict[str, datetime] = {}
    position = lower
    while position < upper and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=500, max_records=chunk_size(upper - position))
        for record in batches.get(tp, []):
            if record.offset >= upper:
                break
            found = _owner_time(record.value, owners, latest)
            if found is not None:
                name, when = found
                if name not in newest or when > newest[name]:
                    newest[name] = when
        position = consumer.position(tp)
    return newest


def chunk_size(remaining: int) -> int:
    return max(1, min(remaining, 50_000))
