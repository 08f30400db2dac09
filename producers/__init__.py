"""Publish turbine telemetry to Kafka: live, accelerated, backfill, named scenarios and file replay.

The core (:mod:`producers.publisher`) takes any iterator of contract records, so every mode is just a
different record source plus a pacing policy; delivery guarantees live in one place.
"""
