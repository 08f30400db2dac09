"""Pure validation of query parameters (unit-tested): tiers, time ranges and bucket sizes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from common.contracts import IDENTIFIER_PATTERN, TIERS

BUCKET_PATTERN = r"^\s*(\d{1,6})\s*(m|min|h|d)\s*$"
_BUCKET = re.compile(BUCKET_PATTERN)
_TIER_NAME = "(critical|high|moderate|low|unknown)"
#: One ``tier`` query value: a tier or a comma list of tiers (documented in the OpenAPI schema).
TIER_LIST_PATTERN = rf"^\s*{_TIER_NAME}(\s*,\s*{_TIER_NAME})*\s*$"
#: One or more site ids (the contract's identifier rule), comma-separated; blanks around commas allowed.
_SITE_ID = IDENTIFIER_PATTERN.removeprefix("^").removesuffix("$")
SITE_LIST_PATTERN = rf"^\s*{_SITE_ID}(\s*,\s*{_SITE_ID})*\s*$"
_UNIT = {"m": 60, "min": 60, "h": 3600, "d": 86400}
MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKET = timedelta(days=366)
MAX_BUCKETS = 5000
#: Candidate sizes for an automatic bucket, smallest first.
AUTO_BUCKETS = ("10m", "30m", "1h", "3h", "6h", "12h", "1d", "7d", "30d")
AUTO_TARGET = 400


class ParamError(ValueError):
    """A query parameter is invalid; ``field`` names it for the 422 body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def split_multi(values: list[str] | None) -> list[str]:
    """``?tier=a&tier=b`` and ``?tier=a,b`` mean the same; blanks are dropped, order kept, no duplicates."""
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def parse_tiers(values: list[str] | None) -> list[str]:
    tiers = [t.lower() for t in split_multi(values)]
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise ParamError("tier", f"unknown tier {unknown[0]!r}; expected one of {', '.join(TIERS)}")
    return tiers


def parse_bucket(text: str) -> timedelta:
    """'10m', '1h', '1d' -> timedelta; bounded so that a request cannot ask for absurd buckets."""
    match = _BUCKET.match(text)
    if not match:
        raise ParamError("bucket", "bucket must look like 10m, 1h or 1d (minutes, hours, days)")
    size = timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
    if size < MIN_BUCKET or size > MAX_BUCKET:
        raise ParamError("bucket", "bucket must be between 1m and 366d")
    return size


def format_bucket(size: timedelta) -> str:
    seconds = int(size.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600)):
        if seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds // 60}m"


def choose_bucket(span: timedelta) -> timedelta:
    """Smallest standard bucket giving at most ~400 points over ``span``."""
    for text in AUTO_BUCKETS:
        size = parse_bucket(text)
        if span / size <= AUTO_TARGET:
            return size
    return parse_bucket(AUTO_BUCKETS[-1])


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are read as UTC (the API speaks UTC only)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def resolve_range(
    start: datetime | None,
    end: datetime | None,
    *,
    default_span: timedelta,
    max_span: timedelta,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """Fill defaults (end = now, start = end - default_span) and check start < end, span <= max."""
    try:
        end_utc = as_utc(end) if end is not None else (now or datetime.now(UTC))
        start_utc = as_utc(start) if start is not None else end_utc - default_span
    except (OverflowError, ValueError) as exc:
        raise ParamError("start", f"time out of range: {exc}") from exc
    if start_utc >= end_utc:
        raise ParamError("start", "start must be before end")
    if end_utc - start_utc > max_span:
        raise ParamError("end", f"range too long: at most {max_span.days} days")
    return start_utc, end_utc


def check_bucket_count(start: datetime, end: datetime, size: timedelta) -> None:
    if (end - start) / size > MAX_BUCKETS:
        raise ParamError("bucket", f"bucket too small for this range: more than {MAX_BUCKETS} points")
