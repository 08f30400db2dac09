"""Per-event cost of ``parse_telemetry`` beside ``orjson.loads`` of the same bytes (the floor), same run.

    .venv/bin/python bench/bench_contracts.py                    # 20,000 simulator events, best of 5
    .venv/bin/python bench/bench_contracts.py --events 50000 --repeat 7

Two inputs, both from the simulator through the producers' serialiser (``encode_record``: the bytes the
scorer reads from Kafka):
- ``valid``: every event valid;
- ``mix 5%``: the same events with 5 % replaced by realistic refused ones (truncated JSON, a string or a
  boolean for a number, an out-of-range value, an unknown field, a NUL in the turbine id, a missing field,
  a field given twice, a time without offset, a time in the future or before the floor), spread evenly.

For each: microseconds per event of ``parse_telemetry`` (refusals caught as ``InvalidEvent``) and of
``orjson.loads`` on the same list, their ratio (what validation costs over bare decoding), and the
events/s of one core. Times are the CPU time of the benchmark thread, best of ``--repeat`` rounds (the
machine is shared: CPU time ignores waiting for a core, the minimum is the least disturbed, and the two
are timed in alternate rounds). The count of each refusal code is printed so two
runs (before / after a change) can be checked to refuse alike.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from common.contracts import InvalidEvent, parse_telemetry
from producers.serialize import encode_record
from simulator.config import FleetConfig
from simulator.fleet import Fleet

#: Wall clock of the run: one day after the simulated week (no event is in the future).
NOW = datetime(2024, 1, 9, tzinfo=UTC)


def simulator_values(events: int, turbines: int = 100) -> list[bytes]:
    days = max(1.0, events / (turbines * 144) + 0.1)  # 10-minute readings
    fleet = Fleet(FleetConfig(n_turbines=turbines, duration_days=days, seed=7))
    out: list[bytes] = []
    for record in fleet.iter_records():
        out.append(encode_record(record)[1])
        if len(out) == events:
            break
    return out


def _replace(raw: bytes, field: str, literal: bytes) -> bytes:
    """``raw`` with the value of ``field`` replaced by the JSON ``literal`` (raw is compact orjson)."""
    data = orjson.loads(raw)
    data[field] = orjson.Fragment(literal)
    return orjson.dumps(data)


def _without(raw: bytes, field: str) -> bytes:
    data = orjson.loads(raw)
    del data[field]
    return orjson.dumps(data)


#: Realistic refusals, each a function of one valid value.
INVALID_KINDS: tuple[Callable[[bytes], bytes], ...] = (
    lambda raw: raw[: len(raw) // 2],  # cut in transit
    lambda raw: _replace(raw, "power_kw", b'"812.5"'),  # a string for a number
    lambda raw: _replace(raw, "status_code", b"true"),  # a boolean for an integer
    lambda raw: _replace(raw, "vibration_mm_s", b"-3.5"),  # out of range
    lambda raw: raw[:-1] + b',"firmware":"2.1"}',  # unknown field
    lambda raw: _replace(raw, "turbine_id", b'"WT\\u0000001"'),  # NUL in an identifier
    lambda raw: _without(raw, "site_id"),  # missing field
    lambda raw: raw[:-1] + b',"power_kw":1.0}',  # a field given twice
    lambda raw: _replace(raw, "event_time", b'"2024-01-02T10:00:00"'),  # no offset
    lambda raw: _replace(raw, "event_time", b'"2030-01-01T00:00:00Z"'),  # in the future
    lambda raw: _replace(raw, "event_time", b'"1970-01-01T00:00:00Z"'),  # before the floor
)


def with_invalid(values: list[bytes], share: float) -> list[bytes]:
    out = list(values)
    step = max(1, round(1 / share))
    for n, i in enumerate(range(step // 2, len(out), step)):
        out[i] = INVALID_KINDS[n % len(INVALID_KINDS)](out[i])
    return out


def parse_all(values: list[bytes]) -> Counter[str]:
    codes: Counter[str] = Counter()
    parse = parse_telemetry
    for value in values:
        try:
            parse(value, now=NOW)
        except InvalidEvent as exc:
            codes[exc.code] += 1
    return codes


def loads_all(values: list[bytes]) -> None:
    loads = orjson.loads
    for value in values:
        with contextlib.suppress(orjson.JSONDecodeError):
            loads(value)


def timed(fn: Callable[[list[bytes]], object], values: list[bytes]) -> float:
    """CPU seconds of this thread (not wall time): other processes on a shared machine do not count."""
    gc.collect()
    started = time.thread_time()
    fn(values)
    return time.thread_time() - started


def best_pair(repeat: int, values: list[bytes]) -> tuple[float, float]:
    """Best time of ``parse_all`` and of ``loads_all``, rounds interleaved so both see the same load."""
    parse_s = floor_s = float("inf")
    for _ in range(repeat):
        floor_s = min(floor_s, timed(loads_all, values))
        parse_s = min(parse_s, timed(parse_all, values))
    return parse_s, floor_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--invalid-share", type=float, default=0.05)
    args = parser.parse_args()

    valid = simulator_values(args.events)
    mixed = with_invalid(valid, args.invalid_share)
    size = sum(map(len, valid)) / len(valid)
    print(f"{len(valid)} simulator events, {size:.0f} bytes each on average; best of {args.repeat} rounds")
    accepted = parse_all(valid)
    if accepted:
        raise SystemExit(f"valid simulator events were refused: {dict(accepted)}")
    codes = parse_all(mixed)
    print(f"mix: {sum(codes.values())} refused ({args.invalid_share:.0%}): {dict(sorted(codes.items()))}")
    header = ("input", "parse_telemetry", "orjson.loads", "ratio", "events/s (1 core)")
    print(f"{header[0]:<10} {header[1]:>18} {header[2]:>14} {header[3]:>7} {header[4]:>18}")
    for label, values in (("valid", valid), ("mix 5%", mixed)):
        parse_s, floor_s = best_pair(args.repeat, values)
        per_parse = parse_s / len(values) * 1e6
        per_floor = floor_s / len(values) * 1e6
        print(
            f"{label:<10} {per_parse:>15.2f} us {per_floor:>11.2f} us {parse_s / floor_s:>6.1f}x"
            f" {len(values) / parse_s:>18,.0f}"
        )


if __name__ == "__main__":
    main()
