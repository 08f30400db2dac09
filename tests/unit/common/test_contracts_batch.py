"""``decode_telemetry_batch`` is ``parse_telemetry`` + ``check_record_key`` per value, column-wise: the
same events and the same refusals (code, reason, field), whatever the values and wherever they sit."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.contracts import (
    SIGNALS,
    InvalidEvent,
    TelemetryEvent,
    check_record_key,
    decode_telemetry_batch,
    make_event_id,
    parse_telemetry,
)
from tests.unit.common.test_contracts_properties import FIELDS, _valid_event, json_values

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _one(raw: object, keys: list[Any] | None, pos: int, **kw: Any) -> Any:
    """parse_telemetry alone (+ check_record_key with keys): the event, or (type, code, field, reason)."""
    try:
        ev = parse_telemetry(raw, now=NOW, **kw)  # type: ignore[arg-type]
        if keys is not None:
            check_record_key(ev, keys[pos])
    except InvalidEvent as exc:
        return (InvalidEvent, exc.code, exc.field, exc.reason)
    except Exception as exc:
        return (type(exc), "", None, str(exc))
    return ev


def _check(values: list[Any], keys: list[Any] | None, **kw: Any) -> None:
    """Every value decided as parse_telemetry (+ the key check) decides it alone."""
    batch = decode_telemetry_batch(values, keys, now=NOW, **kw)
    n = len(batch)
    assert batch.signals.shape == (n, len(SIGNALS)) and batch.signals.dtype == np.float64
    assert batch.ts.shape == (n,) and batch.status_code.shape == (n,)
    errors = dict(batch.errors)
    assert len(errors) == len(batch.errors)
    assert [p for p, _ in batch.errors] == sorted(errors)
    assert sorted([*batch.positions, *errors]) == list(range(len(values)))
    assert batch.positions == sorted(batch.positions)
    for row, pos in enumerate(batch.positions):
        expected = _one(values[pos], keys, pos, **kw)
        assert isinstance(expected, TelemetryEvent), (pos, expected)
        assert batch.event(row) == expected
        assert batch.event_id[row] == expected.event_id and batch.turbine_id[row] == expected.turbine_id
        assert batch.site_id[row] == expected.site_id
        assert batch.event_time[row] == expected.event_time and batch.event_time[row].tzinfo is UTC
        assert batch.ts[row] == expected.event_time.timestamp()
        assert int(batch.status_code[row]) == expected.status_code
        for name, v in zip(SIGNALS, batch.signals[row].tolist(), strict=True):
            got = getattr(expected, name)
            assert (math.isnan(v) and got is None) or v == got, (name, v, got)
    for pos, exc in batch.errors:
        expected = _one(values[pos], keys, pos, **kw)
        assert not isinstance(expected, TelemetryEvent), (pos, values[pos])
        if isinstance(exc, InvalidEvent):
            assert expected == (InvalidEvent, exc.code, exc.field, exc.reason)
        else:
            assert expected == (type(exc), "", None, str(exc))


def _valid(tid: str = "WT-1", when: datetime | None = None, **over: Any) -> dict[str, Any]:
    when = when or NOW - timedelta(minutes=10)
    record: dict[str, Any] = {
        "schema_version": 1,
        "event_id": make_event_id(tid, when),
        "turbine_id": tid,
        "site_id": "S-1",
        "event_time": when.isoformat(),
        **dict.fromkeys(SIGNALS, 12.5),
        "status_code": 0,
    }
    record.update(over)
    return record


def _replace(raw: bytes, field: str, literal: bytes) -> bytes:
    data = orjson.loads(raw)
    data[field] = orjson.Fragment(literal)
    return orjson.dumps(data)


def _without(raw: bytes, *fields: str) -> bytes:
    data = orjson.loads(raw)
    for f in fields:
        del data[f]
    return orjson.dumps(data)


#: Refusals of every kind (and some near misses that are valid), each made from a valid value.
KINDS = (
    lambda raw: raw[: len(raw) // 2],
    lambda raw: _replace(raw, "power_kw", b'"812.5"'),
    lambda raw: _replace(raw, "status_code", b"true"),
    lambda raw: _replace(raw, "status_code", b"1.0"),
    lambda raw: _replace(raw, "vibration_mm_s", b"-3.5"),
    lambda raw: _replace(raw, "vibration_mm_s", b"1e400"),
    lambda raw: raw[:-1] + b',"firmware":"2.1"}',
    lambda raw: _replace(raw, "turbine_id", b'"WT\\u0000001"'),
    lambda raw: _replace(raw, "turbine_id", b'"WT 1"'),
    lambda raw: _replace(raw, "site_id", b'"-S"'),
    lambda raw: _replace(raw, "site_id", b'"S1\\n"'),
    lambda raw: _replace(raw, "event_id", b'"a\\nb"'),
    lambda raw: _replace(raw, "event_id", b'"a/b"'),
    lambda raw: _replace(raw, "event_id", b'""'),
    lambda raw: _replace(raw, "event_id", b'"' + b"x" * 65 + b'"'),
    lambda raw: _without(raw, "site_id"),
    lambda raw: _without(raw, "power_kw", "status_code"),  # valid: optional fields omitted
    lambda raw: _without(raw, "power_kw")[:-1] + b',"rotor_rpm":1.0}',  # one omitted, one twice
    lambda raw: raw[:-1] + b',"power_kw":1.0}',
    lambda raw: raw[:-1] + b',"turbine_id":"WT-2"}',
    lambda raw: _replace(raw, "event_time", b'"2026-03-01T10:00:00"'),
    lambda raw: _replace(raw, "event_time", b'"2026-02-30T10:00:00Z"'),
    lambda raw: _replace(raw, "event_time", b'"2026-03-01 10:00:00+01:00"'),  # valid
    lambda raw: _replace(raw, "event_time", b'"2026-03-01T12:10:00Z"'),  # exactly the future limit: valid
    lambda raw: _replace(raw, "event_time", b'"2026-03-01T12:10:00.000001Z"'),
    lambda raw: _replace(raw, "event_time", b'"2030-01-01T00:00:00Z"'),
    lambda raw: _replace(raw, "event_time", b'"1970-01-01T00:00:00Z"'),
    lambda raw: _replace(raw, "event_time", b'"2000-01-01T00:00:00Z"'),  # the floor itself: valid
    lambda raw: _replace(raw, "event_time", b'"9999-12-31T23:59:59-01:00"'),
    lambda raw: _replace(raw, "schema_version", b"2"),
    lambda raw: _replace(raw, "power_kw", b"null"),  # valid: no value
    lambda raw: b" \n" + raw + b"\n",  # valid: whitespace around
    lambda raw: b"\xef\xbb\xbf" + raw,
    lambda raw: b"[" + raw + b"]",
    lambda raw: raw + b"," + raw,
    lambda raw: b"",
    lambda raw: b"x" * (64 * 1024 + 1),
    lambda raw: raw.decode(),  # text: decided by parse_telemetry
    lambda raw: None,
    lambda raw: bytearray(raw),
)


def test_every_kind_of_value_is_decided_like_parse_telemetry() -> None:
    values: list[Any] = []
    keys: list[Any] = []
    for k in range(4):
        for i, kind in enumerate(KINDS):
            tid = f"WT-{i}"
            raw = orjson.dumps(_valid(tid, NOW - timedelta(minutes=10 * (k + 1))))
            values.append(kind(raw))
            keys.append(tid.encode())
            values.append(raw)  # the valid value beside it
            keys.append(tid.encode())
    _check(values, keys)
    _check(values, None)
    _check(values, keys, max_age=timedelta(hours=1), max_future_skew=timedelta(0))


def test_keys_are_checked_like_check_record_key() -> None:
    raw = orjson.dumps(_valid("WT-1"))
    keys: list[Any] = [
        b"WT-1",
        None,
        b"WT-2",
        b"\xff\xfe",
        bytearray(b"WT-1"),
        memoryview(b"WT-1"),
        "WT-1",
        7,
    ]
    _check([raw] * len(keys), keys)


def test_empty_batch() -> None:
    batch = decode_telemetry_batch([], [], now=NOW)
    assert len(batch) == 0 and batch.errors == [] and batch.signals.shape == (0, len(SIGNALS))


def test_same_times_and_ids_across_a_batch_are_judged_once_each_and_alike() -> None:
    when = NOW - timedelta(minutes=5)
    values = [orjson.dumps(_valid(f"WT-{i % 7}", when, power_kw=float(i))) for i in range(50)]
    values[10] = _replace(values[10], "site_id", b'"bad site"')
    _check(values, [f"WT-{i % 7}".encode() for i in range(50)])


@FAST
@given(st.lists(_valid_event(), min_size=1, max_size=12), st.data())
def test_generated_batches(records: list[dict[str, Any]], data: st.DataObject) -> None:
    values: list[Any] = []
    keys: list[Any] = []
    for record in records:
        action = data.draw(st.sampled_from(("keep", "replace", "omit", "twice", "key")))
        if action == "replace":
            record[data.draw(st.sampled_from((*FIELDS, "extra")))] = data.draw(json_values)
        elif action == "omit":
            record.pop(data.draw(st.sampled_from(FIELDS)), None)
        raw = json.dumps(record).encode()
        if action == "twice":
            field = data.draw(st.sampled_from(FIELDS))
            raw = raw[:-1] + b", " + json.dumps({field: record.get(field)}).encode()[1:]
        key = str(record.get("turbine_id", "")).encode("utf-8", "surrogatepass")
        if action == "key":
            key = data.draw(st.none() | st.binary(max_size=8))
        values.append(raw)
        keys.append(key)
    _check(values, keys)


def test_only_refused_or_unusual_values_take_the_slow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path decides valid values alone (else the batch decoder would be no faster)."""
    import common.contracts as contracts

    seen: list[object] = []
    real = contracts.parse_telemetry

    def counting(raw: object, **kw: Any) -> TelemetryEvent:
        seen.append(raw)
        return real(raw, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(contracts, "parse_telemetry", counting)
    values = [orjson.dumps(_valid(f"WT-{i}", NOW - timedelta(minutes=i))) for i in range(20)]
    values.append(_without(values[0], "power_kw", "status_code"))
    bad = _replace(values[1], "turbine_id", b'"WT 1"')
    values.append(bad)
    batch = decode_telemetry_batch(
        values, [f"WT-{i}".encode() for i in range(20)] + [b"WT-0", b"WT-1"], now=NOW
    )
    assert len(batch) == 21 and [p for p, _ in batch.errors] == [21]
    assert seen == [bad]
    assert math.isnan(batch.signals[20, SIGNALS.index("power_kw")]) and batch.status_code[20] == 0
