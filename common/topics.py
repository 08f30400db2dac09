"""Kafka topic provisioning: the cockpit's topics, their sizes and retention, created idempotently.

Why: the broker does not auto-create topics, and a consumer or producer started before its topic
exists either fails (the API's sweep command) or waits for a metadata refresh (the scorer). One
module says what the topics are (:func:`cockpit_topics`, from the settings) and one function makes
the cluster match (:func:`ensure_topics`): it creates what is missing, never deletes nor shrinks
anything, and reports an existing topic whose partition count differs from the configuration.
Every call is bounded in time; an unreachable broker raises :class:`TopicError` naming the address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.logging import event
from common.settings import CommonSettings

log = logging.getLogger(__name__)

#: Outcomes returned by :func:`ensure_topics` (the mismatch outcome is a formatted sentence).
CREATED = "created"
EXISTS = "exists"

COMMAND_RETENTION_DAYS = 7
#: Dead letters are rare and unordered: a few partitions are plenty and keep the topic cheap.
DEAD_LETTER_PARTITIONS = 1

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
# Kafka error codes seen in CreateTopics / Metadata answers.
_UNKNOWN_TOPIC = 3
_TOPIC_ALREADY_EXISTS = 36


class TopicError(RuntimeError):
    """Topics could not be checked or created; the message names the broker address and the topics."""


@dataclass(frozen=True)
class TopicSpec:
    """What a topic must look like when it is created (an existing topic is never altered)."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a topic needs a name")
        if self.partitions < 1 or self.replication_factor < 1:
            raise ValueError(f"topic {self.name}: partitions and replication_factor must be >= 1")


def cockpit_topics(settings: CommonSettings) -> list[TopicSpec]:
    """The three topics of the cockpit: telemetry, dead letters, scorer commands."""
    replication = settings.topic_replication_factor
    return [
        TopicSpec(
            name=settings.telemetry_topic,
            partitions=settings.telemetry_partitions,
            replication_factor=replication,
            config=_config(
                retention_ms=round(settings.telemetry_retention_hours * _HOUR_MS),
                max_message_bytes=settings.telemetry_max_message_bytes,
            ),
        ),
        TopicSpec(
            name=settings.dead_letter_topic,
            partitions=DEAD_LETTER_PARTITIONS,
            replication_factor=replication,
            config=_config(
                retention_ms=round(settings.dead_letter_retention_days * _DAY_MS),
                max_message_bytes=settings.dead_letter_max_message_bytes,
            ),
        ),
        TopicSpec(
            name=settings.command_topic,
            partitions=1,  # commands are few and must stay in order
            replication_factor=replication,
            config=_config(retention_ms=COMMAND_RETENTION_DAYS * _DAY_MS, max_message_bytes=1_048_576),
        ),
    ]


def _config(*, retention_ms: int, max_message_bytes: int) -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(max(retention_ms, 1)),
        "max.message.bytes": str(max_message_bytes),
    }


def mismatch_outcome(existing: int, configured: int) -> str:
    return f"exists with {existing} partitions (configured {configured})"


def ensure_topics(
    bootstrap_servers: str, specs: Sequence[TopicSpec], *, timeout_s: float = 30.0
) -> dict[str, str]:
    """Create the missing topics; name -> "created" | "exists" | "exists with N partitions (configured M)".

    Idempotent and safe to run from several processes at once (a concurrent creation counts as
    "exists"). Returns only when every created topic has a leader for each partition, so a consumer
    started right after sees all of them. Raises :class:`TopicError` within about ``timeout_s``.
    """
    if not specs:
        return {}
    names = [spec.name for spec in specs]
    deadline = time.monotonic() + timeout_s
    admin = _admin(bootstrap_servers, timeout_s, what=f"check or create topics {', '.join(names)}")
    try:
        existing = _describe(admin, bootstrap_servers, names)
        outcomes: dict[str, str] = {}
        missing = [spec for spec in specs if spec.name not in existing]
        for spec in specs:
            if spec.name in existing:
                outcomes[spec.name] = _existing_outcome(spec, existing[spec.name])
        if missing:
            outcomes.update(_create(admin, bootstrap_servers, missing, deadline))
            created = [name for name, outcome in outcomes.items() if outcome == CREATED]
            _wait_ready(admin, bootstrap_servers, created, deadline)
            for spec in missing:  # lost a creation race: the other creator's partition count
                if outcomes[spec.name] == EXISTS:
                    count = _describe(admin, bootstrap_servers, [spec.name]).get(spec.name)
                    if count is not None:
                        outcomes[spec.name] = _existing_outcome(spec, count)
        return {name: outcomes[name] for name in names}
    finally:
        _close(admin)


def partition_count(bootstrap_servers: str, topic: str, *, timeout_s: float = 10.0) -> int | None:
    """Partitions of ``topic``, None if there is no such topic; TopicError if Kafka is unreachable."""
    admin = _admin(bootstrap_servers, timeout_s, what=f"describe topic {topic}")
    try:
        return _describe(admin, bootstrap_servers, [topic]).get(topic)
    finally:
        _close(admin)


def _admin(bootstrap_servers: str, timeout_s: float, *, what: str) -> Any:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    timeout_ms = max(int(timeout_s * 1000), 100)
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            client_id="cockpit-topics",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            reconnect_backoff_max_ms=1000,
        )
    except (KafkaError, OSError, ValueError) as exc:
        raise TopicError(
            f"Kafka unreachable at {bootstrap_servers}: could not {what} within {timeout_s:g} s ({exc})"
        ) from None


def _close(admin: Any) -> None:
    try:
        admin.close()
    except Exception:  # closing is best effort; the work is done or already failed
        log.debug("admin client close failed", exc_info=True)


def _describe(admin: Any, bootstrap_servers: str, names: Sequence[str]) -> dict[str, int]:
    """name -> partition count of the topics among ``names`` that exist."""
    from kafka.errors import KafkaError

    try:
        described = admin.describe_topics(list(names))
    except (KafkaError, OSError) as exc:
        raise TopicError(
            f"Kafka at {bootstrap_servers}: could not describe topics {', '.join(names)} ({exc})"
        ) from None
    found: dict[str, int] = {}
    for item in described:
        name = item.get("name") or item.get("topic")
        code = item.get("error_code", 0)
        if name not in names:
            continue
        if code == 0:
            found[name] = len(item.get("partitions") or [])
        elif code != _UNKNOWN_TOPIC:
            raise TopicError(
                f"Kafka at {bootstrap_servers}: topic {name} answered {_error_name(code)} when described"
            )
    return found


def _existing_outcome(spec: TopicSpec, count: int) -> str:
    if count == spec.partitions:
        return EXISTS
    event(
        log,
        "topic exists with a different partition count; keeping it",
        logging.WARNING,
        topic=spec.name,
        partitions=count,
        configured=spec.partitions,
    )
    return mismatch_outcome(count, spec.partitions)


def _create(
    admin: Any, bootstrap_servers: str, specs: Sequence[TopicSpec], deadline: float
) -> dict[str, str]:
    from kafka.errors import KafkaError

    request = {
        spec.name: {
            "num_partitions": spec.partitions,
            "replication_factor": spec.replication_factor,
            "configs": dict(spec.config),
        }
        for spec in specs
    }
    timeout_ms = max(int((deadline - time.monotonic()) * 1000), 1000)
    try:
        answer = admin.create_topics(request, timeout_ms=timeout_ms, raise_errors=False)
    except (KafkaError, OSError) as exc:
        raise TopicError(
            f"Kafka at {bootstrap_servers}: could not create topics {', '.join(request)} ({exc})"
        ) from None
    outcomes: dict[str, str] = {}
    for item in answer.get("topics", []):
        name, code = item.get("name"), item.get("error_code", 0)
        if name not in request:
            continue
        if code == 0:
            outcomes[name] = CREATED
            spec = next(s for s in specs if s.name == name)
            fields: dict[str, Any] = {"topic": name, "partitions": spec.partitions, **_config_fields(spec)}
            event(log, "topic created", **fields)
        elif code == _TOPIC_ALREADY_EXISTS:
            outcomes[name] = EXISTS
        else:
            message = item.get("error_message") or ""
            raise TopicError(
                f"Kafka at {bootstrap_servers}: creating topic {name} failed with "
                f"{_error_name(code)} {message}".rstrip()
            )
    absent = [name for name in request if name not in outcomes]
    if absent:
        raise TopicError(f"Kafka at {bootstrap_servers}: no answer for topics {', '.join(absent)}")
    return outcomes


def _wait_ready(admin: Any, bootstrap_servers: str, names: Sequence[str], deadline: float) -> None:
    """Wait until each new topic has a leader for every partition (KRaft propagates it asynchronously)."""
    if not names:
        return
    from kafka.errors import KafkaError

    remaining_ms = max(int((deadline - time.monotonic()) * 1000), 1000)
    try:
        admin.wait_for_topics(list(names), timeout_ms=remaining_ms)
    except (KafkaError, OSError) as exc:
        raise TopicError(
            f"Kafka at {bootstrap_servers}: topics {', '.join(names)} were created "
            f"but have no leader yet ({exc})"
        ) from None


def _config_fields(spec: TopicSpec) -> dict[str, str]:
    return {key.replace(".", "_"): value for key, value in spec.config.items()}


def _error_name(code: int) -> str:
    from kafka.errors import for_code

    try:
        return str(for_code(code).__name__)
    except Exception:
        return f"error {code}"


def describe_outcomes(outcomes: Mapping[str, str], specs: Sequence[TopicSpec]) -> list[str]:
    """One line per topic; a created one shows what it was created with (partitions, retention, size)."""
    by_name = {spec.name: spec for spec in specs}
    lines = []
    for name, outcome in outcomes.items():
        spec = by_name.get(name)
        if spec is None or outcome != CREATED:  # an existing topic keeps its own settings
            lines.append(f"{name}: {outcome}")
            continue
        retention_h = int(spec.config.get("retention.ms", "0")) / _HOUR_MS
        lines.append(
            f"{name}: {outcome} ({spec.partitions} partition{'s' if spec.partitions != 1 else ''}, "
            f"replication {spec.replication_factor}, retention {retention_h:g} h, "
            f"max message {spec.config.get('max.message.bytes', '?')} B)"
        )
    return lines
