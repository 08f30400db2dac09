"""Pure parts of the API: cursors, API-key check, settings errors, parameter validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from api.cursor import CursorError, decode_cursor, encode_cursor, float_key, parse_float_key
from api.security import SweepsDisabled, check_api_key
from api.settings import ApiSettings, ClientSettings
from api.validation import (
    MAX_BUCKETS,
    ParamError,
    check_bucket_count,
    choose_bucket,
    format_bucket,
    parse_bucket,
    parse_tiers,
    resolve_range,
    split_multi,
)
from common.settings import SettingsError, load_settings

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------------------------------ cursors
@given(
    st.dictionaries(
        st.text(max_size=5),
        st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=20), st.booleans()),
        max_size=5,
    )
)
def test_cursor_round_trip(payload: dict[str, object]) -> None:
    token = encode_cursor(payload)
    assert "=" not in token and "/" not in token and "+" not in token  # URL-safe, unpadded
    assert decode_cursor(token) == payload


@given(st.floats(allow_nan=False))
def test_float_keys_round_trip_exactly(value: float) -> None:
    assert parse_float_key(float_key(value)) == value


@pytest.mark.parametrize("token", ["", "%%%", "bm90IGpzb24", encode_cursor([1, 2]), "x" * 2000])  # type: ignore[list-item]
def test_bad_cursor_is_rejected(token: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(token)


def test_cursor_bound_to_its_sort() -> None:
    token = encode_cursor({"s": "score", "o": "desc", "i": "WT-1"})
    assert decode_cursor(token, expect={"s": "score"})["i"] == "WT-1"
    with pytest.raises(CursorError, match="another 's'"):
        decode_cursor(token, expect={"s": "ttf"})


def test_parse_float_key_rejects_non_strings() -> None:
    with pytest.raises(CursorError):
        parse_float_key(1.5)
    with pytest.raises(CursorError):
        parse_float_key("abc")


# ------------------------------------------------------------------------------------------ API key
def test_api_key_check() -> None:
    key = SecretStr("s3cret-key")
    assert check_api_key(key, "s3cret-key") is True
    assert check_api_key(key, "s3cret-kez") is False
    assert check_api_key(key, "") is False
    assert check_api_key(key, None) is False
    assert check_api_key(key, "s3cret-key-longer") is False
    assert check_api_key(key, "clé-unicode") is False


@pytest.mark.parametrize("configured", [None, SecretStr("")])
def test_no_configured_key_disables_sweeps(configured: SecretStr | None) -> None:
    with pytest.raises(SweepsDisabled, match="COCKPIT_API_KEY not configured"):
        check_api_key(configured, "anything")


# ------------------------------------------------------------------------------------------ settings
def test_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COCKPIT_API_KEY", raising=False)
    s = ApiSettings(_env_file=None)  # type: ignore[call-arg]
    assert s.port == 8000 and s.cors_origins == [] and s.api_key is None
    assert s.reader_database_url.startswith("postgresql://cockpit_reader:")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_API_KEY", "abc")
    monkeypatch.setenv("COCKPIT_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("COCKPIT_PORT", "9001")
    s = load_settings(ApiSettings)
    assert s.api_key is not None and s.api_key.get_secret_value() == "abc"
    assert s.cors_origins == ["http://a.example", "http://b.example"] and s.port == 9001
    assert "abc" not in repr(s)


@pytest.mark.parametrize(
    ("env", "value", "names"),
    [
        ("COCKPIT_PORT", "70000", "COCKPIT_PORT"),
        ("COCKPIT_STALE_AFTER_MINUTES", "-1", "COCKPIT_STALE_AFTER_MINUTES"),
        ("COCKPIT_DB_POOL_MAX_SIZE", "1", "COCKPIT_DB_POOL_MAX_SIZE"),
    ],
)
def test_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, names: str
) -> None:
    monkeypatch.setenv(env, value)
    if env == "COCKPIT_DB_POOL_MAX_SIZE":
        monkeypatch.setenv("COCKPIT_DB_POOL_MIN_SIZE", "4")
    with pytest.raises(SettingsError) as info:
        load_settings(ApiSettings)
    assert names in str(info.value) and isinstance(info.value, SystemExit)


def test_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_API_URL", "http://10.0.0.5:8000")
    monkeypatch.setenv("COCKPIT_API_KEY", "k")
    c = ClientSettings()
    assert c.api_url == "http://10.0.0.5:8000" and c.api_key is not None


# ------------------------------------------------------------------------------------------ parameters
def test_tiers_repeat_and_comma() -> None:
    assert split_multi(["critical,high", "high", " low ", ""]) == ["critical", "high", "low"]
    assert parse_tiers(["Critical", "unknown"]) == ["critical", "unknown"]
    assert parse_tiers(None) == []
    with pytest.raises(ParamError) as info:
        parse_tiers(["critical,severe"])
    assert info.value.field == "tier" and "severe" in info.value.message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60), ("10m", 600), ("15min", 900), ("1h", 3600), ("6h", 21600), ("1d", 86400)],
)
def test_parse_bucket(text: str, seconds: int) -> None:
    assert parse_bucket(text).total_seconds() == seconds
    assert parse_bucket(format_bucket(parse_bucket(text))) == parse_bucket(text)


@pytest.mark.parametrize("text", ["", "1", "h", "1w", "0m", "1.5h", "400d", "-1h", "1 month"])
def test_parse_bucket_rejects(text: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_bucket(text)
    assert info.value.field == "bucket"


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        (timedelta(hours=12), "10m"),
        (timedelta(days=1), "10m"),
        (timedelta(days=7), "30m"),
        (timedelta(days=30), "3h"),
        (timedelta(days=90), "6h"),
        (timedelta(days=400), "1d"),
    ],
)
def test_choose_bucket(span: timedelta, expected: str) -> None:
    assert format_bucket(choose_bucket(span)) == expected


def test_bucket_count_limit() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    check_bucket_count(start, start + timedelta(minutes=MAX_BUCKETS), timedelta(minutes=1))
    with pytest.raises(ParamError):
        check_bucket_count(start, start + timedelta(minutes=MAX_BUCKETS + 1), timedelta(minutes=1))


def test_resolve_range() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    start, end = resolve_range(
        None, None, default_span=timedelta(days=30), max_span=timedelta(days=90), now=now
    )
    assert (start, end) == (now - timedelta(days=30), now)
    naive = datetime(2026, 2, 1)
    start, _ = resolve_range(
        naive, None, default_span=timedelta(days=1), max_span=timedelta(days=90), now=now
    )
    assert start.tzinfo is UTC
    with pytest.raises(ParamError, match="before end") as info:
        resolve_range(now, now, default_span=timedelta(days=1), max_span=timedelta(days=90))
    assert info.value.field == "start"
    with pytest.raises(ParamError, match="too long") as info:
        resolve_range(
            now - timedelta(days=91), now, default_span=timedelta(days=1), max_span=timedelta(days=90)
        )
    assert info.value.field == "end"
    with pytest.raises(ParamError):  # end near datetime.min: default start would overflow
        resolve_range(
            None, datetime(1, 1, 2, tzinfo=UTC), default_span=timedelta(days=30), max_span=timedelta(days=90)
        )


# ------------------------------------------------------------------------------------------ caches
def test_ttl_cache_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.repository as repo

    clock = [100.0]
    monkeypatch.setattr(repo.time, "monotonic", lambda: clock[0])
    cache = repo.TtlCache(ttl=60)
    assert cache.get("k") is None
    cache.put("k", [1])
    clock[0] += 59
    assert cache.get("k") == [1]
    clock[0] += 2
    assert cache.get("k") is None
    assert repo.TtlCache(ttl=0).get("k") is None


def test_sort_expressions_put_nulls_last() -> None:
    from api.repository import _sort_expr

    assert _sort_expr("score", "desc") == "s.score"
    assert "'-Infinity'" in _sort_expr("probability", "desc")
    assert "'Infinity'" in _sort_expr("ttf", "asc") and "-Infinity" not in _sort_expr("ttf", "asc")
