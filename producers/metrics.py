"""Prometheus metrics of the producer, on a private registry served with ``--metrics-port``.

Why updated from the progress thread: touching a Prometheus counter per event would cost more than the
send itself; counters are advanced by deltas every refresh and once more at the end.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.metrics import build_info, serve_metrics

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ProducerMetrics:
    def __init__(self, mode: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = {"mode": mode}
        self.sent = Counter(
            "cockpit_producer_events_sent", "Events acknowledged by Kafka", ["mode"], registry=self.registry
        ).labels(**labels)
        self.failed = Counter(
            "cockpit_producer_events_failed",
            "Events Kafka did not acknowledge",
            ["mode"],
            registry=self.registry,
        ).labels(**labels)
        self._rejected = Counter(
            "cockpit_producer_rows_rejected",
            "Source rows that could not be mapped to the contract",
            ["mode", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cockpit_producer_send_latency_seconds",
            "send() to broker acknowledgement (sampled), including linger",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate = Gauge("cockpit_producer_events_per_second", "Recent publish rate", registry=self.registry)
        self.pending = Gauge(
            "cockpit_producer_pending_events", "Sent but not yet acknowledged", registry=self.registry
        )
        self.mode = mode
        self._seen = {"sent": 0, "failed": 0}
        self._seen_rejected: dict[str, int] = {}
        build_info("producer", "0.1.0", registry=self.registry)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        serve_metrics(port, self.registry, addr=addr)

    def update(self, sent: int, failed: int, rejected: dict[str, int], rate: float, pending: int) -> None:
        """Advance counters to absolute totals (idempotent: only the delta is added)."""
        self.sent.inc(max(0, sent - self._seen["sent"]))
        self.failed.inc(max(0, failed - self._seen["failed"]))
        self._seen.update(sent=sent, failed=failed)
        for reason, count in rejected.items():
            delta = count - self._seen_rejected.get(reason, 0)
            if delta > 0:
                self._rejected.labels(mode=self.mode, reason=reason).inc(delta)
                self._seen_rejected[reason] = count
        self.rate.set(rate)
        self.pending.set(pending)
