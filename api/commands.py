"""Publishing sweep commands to the scorer's command topic.

Why lazy: importing or starting the API must not need Kafka; the producer is created on the first
POST /v1/sweeps (in a worker thread, kafka-python is blocking) and reused afterwards.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from common.contracts import SweepCommand
from common.logging import event

log = logging.getLogger(__name__)


class KafkaUnavailable(RuntimeError):
    """The command could not be delivered (no broker, timeout)."""


class CommandPublisher:
    def __init__(self, bootstrap_servers: str, topic: str, timeout: float = 10.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout = timeout
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get_producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer

                config: dict[str, Any] = {
                    "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()],
                    "acks": "all",
                    "retries": 3,
                    "linger_ms": 0,
                    "client_id": "cockpit-api",
                    "request_timeout_ms": int(self.timeout * 1000),
                    "max_block_ms": int(self.timeout * 1000),
                }
                if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:  # kafka-python >= 3
                    config["bootstrap_timeout_ms"] = int(self.timeout * 1000)
                try:
                    self._producer = KafkaProducer(**config)
                except Exception as exc:
                    raise KafkaUnavailable(f"kafka not reachable at {self.bootstrap_servers}: {exc}") from exc
            return self._producer

    def publish(self, command: SweepCommand) -> None:
        """Send and wait for the broker acknowledgement (acks=all): 202 must mean 'queued'."""
        producer = self._get_producer()
        try:
            future = producer.send(self.topic, key=str(command.run_id).encode(), value=command.to_json())
            meta = future.get(timeout=self.timeout)
        except Exception as exc:
            raise KafkaUnavailable(f"could not publish to {self.topic}: {exc}") from exc
        event(
            log,
            "sweep command published",
            run_id=str(command.run_id),
            topic=self.topic,
            partition=meta.partition,
            offset=meta.offset,
        )

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close(timeout=2)
                finally:
                    self._producer = None


def kafka_reachable(bootstrap_servers: str, timeout: float = 1.0) -> tuple[bool, str]:
    """Cheap readiness probe: can we open a TCP connection to one of the brokers?"""
    errors = []
    for server in (s.strip() for s in bootstrap_servers.split(",")):
        if not server:
            continue
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return True, f"broker {server} reachable"
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    return False, "; ".join(errors) or "no bootstrap server configured"
