"""Streaming risk scorer: faust worker from telemetry to risk scores in PostgreSQL (docs/scorer.md)."""
