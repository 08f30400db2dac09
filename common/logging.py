"""Structured JSON logging: one line per event with timestamp, level, component, message and context.

Use ``log.info("sweep finished", extra={"ctx": {"run_id": ..., "turbines": 10}})`` or the
:func:`event` helper; every key of ``ctx`` becomes a top-level field of the JSON line.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "ctx"}


class JsonFormatter(logging.Formatter):
    """Formats records as single-line JSON objects."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = getattr(record, "ctx", None)
        if isinstance(ctx, dict):
            payload.update(ctx)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                payload.setdefault(key, value)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class ConsoleFormatter(logging.Formatter):
    """Human-friendly variant for interactive use; same fields, one line."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        ctx = getattr(record, "ctx", None) or {}
        extras = " ".join(f"{k}={v}" for k, v in ctx.items())
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        line = f"{stamp} {record.levelname:<7} {self.component}: {record.getMessage()} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(component: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (ours and libraries') to stderr in the chosen format; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component) if fmt == "json" else ConsoleFormatter(component))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("kafka", "aiokafka", "urllib3", "httpx", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def event(logger: logging.Logger, message: str, level: int = logging.INFO, **ctx: Any) -> None:
    """Log ``message`` with context fields."""
    logger.log(level, message, extra={"ctx": ctx})
