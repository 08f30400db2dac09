"""Opaque keyset-pagination cursors.

Why opaque: clients must not build cursors themselves, so we are free to change the key layout. The
cursor records the sort it belongs to; reusing it with another sort is a client error (422).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson


class CursorError(ValueError):
    """The cursor is not one we issued (or belongs to another sort)."""


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = orjson.dumps(payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, *, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decode ``token``; every key of ``expect`` must match, otherwise :class:`CursorError`."""
    if not token or len(token) > 1024:
        raise CursorError("invalid cursor")
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise CursorError("invalid cursor") from exc
    if not isinstance(data, dict):
        raise CursorError("invalid cursor")
    for key, value in (expect or {}).items():
        if data.get(key) != value:
            raise CursorError(f"cursor was issued for another {key!r}; restart without cursor")
    return data


def float_key(value: float) -> str:
    """Floats travel as their repr so that infinities (null sentinels) round-trip exactly."""
    return repr(float(value))


def parse_float_key(value: object) -> float:
    if not isinstance(value, str):
        raise CursorError("invalid cursor")
    try:
        return float(value)
    except ValueError as exc:
        raise CursorError("invalid cursor") from exc
