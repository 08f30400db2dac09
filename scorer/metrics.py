"""Prometheus metrics of the scorer, in a registry per app (served by the faust web ``/metrics`` view).

Why a private registry: tests start several apps in one process and the default registry would
refuse duplicate metric names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)


class ScorerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.events_consumed = Counter(
            "scorer_events_consumed_total", "Records consumed from telemetry", registry=r
        )
        self.events_accepted = Counter(
            "scorer_events_accepted_total", "Events applied to windows", registry=r
        )
        self.events_invalid = Counter(
            "scorer_events_invalid_total", "Events sent to the dead-letter topic", ["code"], registry=r
        )
        self.events_duplicate = Counter(
            "scorer_events_duplicate_total", "Duplicate events dropped", registry=r
        )
        self.events_late = Counter(
            "scorer_events_late_total",
            "Events older than the out-of-order tolerance (not in features)",
            registry=r,
        )
        self.events_replay_skipped = Counter(
            "scorer_events_replay_skipped_total", "Records below the checkpointed offset, skipped", registry=r
        )
        self.batch_size = Histogram(
            "scorer_batch_size",
            "Records per micro-batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 20000),
            registry=r,
        )
        self.latency = Histogram(
            "scorer_event_to_score_latency_seconds",
            "Wall clock from the record's Kafka timestamp to the durable write of its score",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_time_lag = Histogram(
            "scorer_event_time_lag_seconds",
            "Wall clock minus event time at processing (large for replays)",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.scoring_duration = Histogram(
            "scorer_scoring_duration_seconds",
            "Batched model call duration",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_write_duration = Histogram(
            "scorer_db_write_duration_seconds",
            "Database write duration",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter("scorer_db_errors_total", "Failed database operations", ["kind"], registry=r)
        self.stream_rescores = Counter(
            "scorer_stream_rescores_total",
            "Touched turbines rescored or left pending by rescore coalescing",
            ["outcome"],
            registry=r,
        )
        self.checkpoint_windows = Counter(
            "scorer_checkpoint_windows_total", "Windows written at checkpoints", registry=r
        )
        self.sweep_duration = Histogram(
            "scorer_sweep_duration_seconds", "Fleet sweep duration", buckets=LATENCY_BUCKETS, registry=r
        )
        self.sweeps = Counter("scorer_sweeps_total", "Fleet sweeps", ["trigger", "status"], registry=r)
        for trigger in ("schedule", "catch_up", "on_demand"):  # exported at 0 from the start, so that the
            for status in ("succeeded", "failed"):  # first failure is an increase (alert SweepFailed)
                self.sweeps.labels(trigger, status)
        self.sweep_last_success = Gauge(
            "scorer_sweep_last_success_timestamp_seconds",
            "Unix time of the last successful sweep",
            registry=r,
        )
        self.turbines_by_tier = Gauge(
            "scorer_turbines_by_tier", "Turbines per risk tier (this worker's view)", ["tier"], registry=r
        )
        self.model_info = Info("scorer_model", "Production model in use", registry=r)
        self.model_loaded = Gauge(
            "scorer_model_loaded", "1 when a valid production model is loaded", registry=r
        )
        self.lag_messages = Gauge(
            "scorer_consumer_lag_messages",
            "Highwater minus next offset to process",
            ["partition"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "scorer_consumer_lag_seconds", "Estimated consumer lag in seconds", registry=r
        )
        self.ready = Gauge("scorer_ready", "1 when the worker is ready", registry=r)
        self.stalled = Gauge(
            "scorer_stalled", "1 when records wait and none was processed for stall_after_s", registry=r
        )
        self.last_progress = Gauge(
            "scorer_last_progress_timestamp_seconds",
            "Unix time a record was last processed or the worker was last caught up",
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "scorer_assigned_partitions", "Telemetry partitions assigned to this worker", registry=r
        )
        # Feature drift (scorer/drift.py): site="*" is this worker's whole population.
        self.feature_drift_psi = Gauge(
            "scorer_feature_drift_psi",
            "PSI of a feature against the production version's reference (this worker's sample)",
            ["feature", "site"],
            registry=r,
        )
        self.feature_drift_max_psi = Gauge(
            "scorer_feature_drift_max_psi", "Largest feature PSI of a site", ["site"], registry=r
        )
        self.feature_drift_features = Gauge(
            "scorer_feature_drift_features",
            "Features per drift severity (none, moderate, significant; thresholds in the scorer settings)",
            ["site", "severity"],
            registry=r,
        )
        self.feature_drift_rows = Gauge(
            "scorer_feature_drift_rows", "Sampled feature rows in the drift window", ["site"], registry=r
        )
        self.feature_drift_reference = Gauge(
            "scorer_feature_drift_reference_available",
            "1 when the production version has a drift reference (drift_reference.json)",
            registry=r,
        )
        self.feature_drift_last_run = Gauge(
            "scorer_feature_drift_last_run_timestamp_seconds", "Unix time of the last drift run", registry=r
        )
