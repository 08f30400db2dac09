"""Simulator throughput: export rows/s (the training-data path) and iter_records records/s (producers).

Plain script, prints figures: ``python bench/bench_simulator.py [--turbines 20 --days 730]``.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.config import FleetConfig
from simulator.export import export_history
from simulator.fleet import Fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turbines", type=int, default=20)
    parser.add_argument("--days", type=float, default=730.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stream-records", type=int, default=500_000)
    args = parser.parse_args()

    config = FleetConfig(n_turbines=args.turbines, duration_days=args.days, seed=args.seed, preset="training")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "history.parquet"
        result = export_history(config, out)
        size_mb = out.stat().st_size / 1e6
    print(
        f"export   {args.turbines} turbines x {args.days:g} days: {result.rows:,} rows in "
        f"{result.seconds:.2f} s = {result.rows / result.seconds:,.0f} rows/s ({size_mb:.0f} MB parquet)"
    )

    fleet = Fleet(config)
    started = time.perf_counter()
    n = sum(1 for _ in itertools.islice(fleet.iter_records(), args.stream_records))
    elapsed = time.perf_counter() - started
    print(f"records  {n:,} dicts in {elapsed:.2f} s = {n / elapsed:,.0f} records/s")

    started = time.perf_counter()
    big = Fleet(FleetConfig(n_turbines=10_000, duration_days=365))
    init = time.perf_counter() - started
    first = list(itertools.islice(big.iter_records(), 10_000))
    step = time.perf_counter() - started - init
    print(f"10k fleet: init {init:.2f} s, first time step ({len(first):,} records) {step:.2f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
