"""Strict YAML configuration files (simulator fleets, replay mappings, policies): one way to load them.

Why shared: every configuration file the cockpit reads must reject unknown keys and report each problem
on its own line with its dotted path, so that whoever edits the YAML finds the faulty key at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def format_validation_error(exc: ValidationError, source: str, what: str) -> str:
    """``source: invalid <what> (N problem(s)):`` then one ``- dotted.path: message`` line per problem."""
    lines = [f"{source}: invalid {what} ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = "unknown key (not allowed)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, model: type[M], error: type[Exception], source: str, what: str) -> M:
    """Validate a mapping into ``model`` or raise ``error`` with the readable message."""
    if not isinstance(data, dict):
        raise error(f"{source}: expected a mapping of settings (YAML object), got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(exc, source, what)) from None


def read_yaml(path: str | Path, error: type[Exception], what: str = "YAML") -> Any:
    """The parsed YAML document of ``path`` (None for an empty file), or ``error`` naming the file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
