"""API-key check for the only write-like operation (triggering a sweep)."""

from __future__ import annotations

import hmac

from pydantic import SecretStr


class SweepsDisabled(Exception):
    """No key is configured: refusing is safer than accepting anyone."""


def check_api_key(configured: SecretStr | None, presented: str | None) -> bool:
    """True when ``presented`` equals the configured key (constant-time); raises when none configured."""
    if configured is None or not configured.get_secret_value():
        raise SweepsDisabled("sweeps disabled: COCKPIT_API_KEY not configured")
    if not presented:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), configured.get_secret_value().encode("utf-8"))
