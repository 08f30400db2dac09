"""Feature drift through a real worker: a healthy site stays quiet, a climate shift and a recalibrated
sensor are flagged on the right features, in the metrics and in the ``feature_drift`` table.

Three sites of two turbines each, simulated for 35 days from 1 January 2024 with the training
preset and seed of the tiny test model (tests/integration/scorer/conftest.py), i.e. two of the
training turbines under the weather the model was trained on: SITE-A as trained (the healthy fleet:
streamed through the worker, not replayed offline like training), SITE-B under a climate 10 C warmer,
SITE-C with its gearbox-bearing thermometer recalibrated +8 C (an offset on that signal only).

Why the training seed for the healthy site: the tiny model is trained on ONE simulated site, so its
reference holds one weather realisation; a site under other weather (another seed) shows significant
PSI on weather-driven features such as ``*_spread_168h`` (docs/models.md, "Drift monitoring", limits).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from models.drift import FILENAME
from models.registry import production_version
from simulator.config import ClimateConfig, FleetConfig
from simulator.fleet import Fleet
from tests.integration.scorer.conftest import (
    ROOT,
    Topics,
    Worker,
    encode,
    free_port,
    new_group,
    publish,
    query,
    show,
    wait_for,
)

pytestmark = pytest.mark.integration

START = datetime(2024, 1, 1, tzinfo=UTC)
TRAINING_SEED = 7  # TRAIN_SNIPPET of conftest.py
DAYS = 35.0
RECALIBRATED = "gearbox_bearing_temp_c"
OFFSET_C = 8.0


def _site(seed: int, site: str, climate: ClimateConfig | None = None) -> list[dict[str, Any]]:
    extra: dict[str, Any] = {"climate": climate} if climate is not None else {}
    cfg = FleetConfig(preset="training", seed=seed, n_turbines=2, start=START, duration_days=DAYS, **extra)
    out = []
    for r in Fleet(cfg).iter_records():
        r = dict(r)
        r.pop("event_id", None)  # derived again from the new turbine id
        r["site_id"] = site
        r["turbine_id"] = f"{site}-{r['turbine_id']}"
        out.append(r)
    return out


def _fleet() -> list[dict[str, Any]]:
    records = _site(TRAINING_SEED, "SITE-A")
    records += _site(TRAINING_SEED, "SITE-B", ClimateConfig(mean_temp_c=ClimateConfig().mean_temp_c + 10))
    recalibrated = _site(TRAINING_SEED, "SITE-C")
    for r in recalibrated:
        if r.get(RECALIBRATED) is not None:
            r[RECALIBRATED] += OFFSET_C
    records += recalibrated
    records.sort(key=lambda r: r["event_time"])
    return records


def _gauges(worker: Worker, name: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for line in worker.get("/metrics").text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels, value = line.rsplit(" ", 1)
        pairs = dict(p.split("=", 1) for p in labels[len(name) + 1 : -1].split(","))
        out[tuple(v.strip('"') for _, v in sorted(pairs.items()))] = float(value)
    return out


def _start_api(db: str, kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> Worker:
    """The real API (``python -m api serve``) on the test database, as its read-only role."""
    port = free_port()
    env = {
        **os.environ,
        "COCKPIT_READER_DATABASE_URL": db.replace(
            "cockpit_writer:cockpit_writer", "cockpit_reader:cockpit_reader"
        ),
        "COCKPIT_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "COCKPIT_TELEMETRY_TOPIC": topics.telemetry,
        "COCKPIT_DEAD_LETTER_TOPIC": topics.dlq,
        "COCKPIT_COMMAND_TOPIC": topics.commands,
        "COCKPIT_ENSURE_TOPICS_ON_START": "false",
        "COCKPIT_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "api.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Worker(proc, port, log_path, env)


def _answers(api: Worker) -> bool:
    if api.proc.poll() is not None:
        raise AssertionError(f"API exited with {api.proc.returncode}:\n{api.log()[-3000:]}")
    try:
        return api.get("/v1/supervision").status_code == 200
    except Exception:
        return False


def test_drift_flags_climate_shift_and_recalibrated_sensor_not_healthy_site(
    kafka_bootstrap: str,
    fresh_database: Callable[[str], str],
    topics: Topics,
    start_worker: Callable[..., Worker],
    tiny_registry: Path,
    tmp_path: Path,
) -> None:
    version = production_version(tiny_registry)
    assert version is not None and (tiny_registry / version / FILENAME).is_file(), (
        f"{tiny_registry}/{version} has no {FILENAME}: trained before drift references existed"
    )
    db = fresh_database("scorer_drift")
    records = _fleet()
    t0 = time.monotonic()
    worker = start_worker(
        db,
        topics,
        new_group(),
        batch_max_size=120,  # ~3 h of a turbine per batch: the sampling sees the history hour by hour
        drift_interval_s=2,
        drift_sample_hours=2,
        drift_min_rows=100,
        drift_window_hours=24 * 60,
    )
    api = _start_api(db, kafka_bootstrap, topics, tmp_path)
    try:
        worker.wait_ready()
        publish(kafka_bootstrap, topics.telemetry, encode(records))
        _check(db, worker, api, records, version, t0)
    finally:
        api.stop()


def _check(
    db: str, worker: Worker, api: Worker, records: list[dict[str, Any]], version: str, t0: float
) -> None:
    last = max(r["event_time"] for r in records)
    n_turbines = len({r["turbine_id"] for r in records})
    try:
        wait_for(
            lambda: (
                query(db, "SELECT count(*) FROM turbine_state WHERE last_event_time = %s", (last,))[0][0]
                == n_turbines
            ),
            150,
            "all turbines scored up to the last event",
        )
        done = datetime.now(UTC)
        rows = wait_for(
            lambda: query(
                db,
                "SELECT status, detail, window_rows, summary, model_version FROM feature_drift "
                "WHERE computed_at > %s ORDER BY computed_at DESC LIMIT 1",
                (done,),
            ),
            30,
            "a drift run after the last batch",
        )
    except AssertionError:
        print(show(worker))
        raise
    status, detail, window_rows, summary, model_version = rows[0]
    summary = summary if isinstance(summary, dict) else json.loads(summary)
    sites = {s["site_id"]: s for s in summary["sites"]}
    for site_id in ("SITE-A", "SITE-B", "SITE-C"):
        s = sites[site_id]
        print(
            f"{site_id}: rows={s['rows']} turbines={s['turbines']} status={s['status']} "
            f"max_psi={s['max_psi']} severities={s['severities']} top="
            + ", ".join(
                f"{f['feature']} psi={f['psi']:.2f} chance={f['chance_psi']:.2f} ({f['severity']})"
                for f in s["features"][:5]
            )
        )
    print(f"overall: {status}: {detail}; {window_rows} rows; {time.monotonic() - t0:.0f} s")
    assert model_version == version
    assert status == "drift"
    # the healthy site: same distribution as training, no significant feature
    assert sites["SITE-A"]["status"] in ("ok", "moderate"), sites["SITE-A"]
    assert sites["SITE-A"]["severities"]["significant"] == 0
    # the warmer climate: the ambient temperature drifts, and it is flagged
    b = {f["feature"]: f for f in sites["SITE-B"]["features"]}
    assert sites["SITE-B"]["status"] == "drift"
    assert b["ambient_temp_c__mean_24h"]["severity"] == "significant", b
    # the recalibrated thermometer: its own features drift, the climate does not
    c = {f["feature"]: f for f in sites["SITE-C"]["features"]}
    assert sites["SITE-C"]["status"] == "drift"
    flagged_c = {f for f, v in c.items() if v["severity"] == "significant"}
    assert flagged_c and all(f.startswith(RECALIBRATED) for f in flagged_c), flagged_c
    assert "ambient_temp_c__mean_24h" not in flagged_c
    # the same in the metrics (labels sorted: feature, site / severity, site)
    psi = _gauges(worker, "scorer_feature_drift_psi")
    counts = _gauges(worker, "scorer_feature_drift_features")
    assert psi[("ambient_temp_c__mean_24h", "SITE-B")] > 2.0
    assert counts[("significant", "SITE-A")] == 0
    assert counts[("significant", "SITE-B")] > 0 and counts[("significant", "SITE-C")] > 0
    assert _gauges(worker, "scorer_feature_drift_max_psi")[("SITE-B",)] > 2.0
    assert worker.metric("scorer_feature_drift_reference_available") == 1
    # and in /v1/supervision (the API reads the table as its read-only role)
    wait_for(lambda: _answers(api), 60, "API /v1/supervision")
    sup = api.get("/v1/supervision").json()
    drift = sup["drift"]
    assert drift["status"] == "drift" and drift["runs"][0]["worker_id"].endswith("-w0")
    api_sites = {s["site_id"]: s for s in drift["runs"][0]["sites"]}
    assert api_sites["SITE-A"]["severities"]["significant"] == 0
    assert any(f["feature"] == "ambient_temp_c__mean_24h" for f in api_sites["SITE-B"]["features"])
    assert any(p.startswith("feature drift: ") for p in sup["problems"]), sup["problems"]
    print(f"/v1/supervision drift: {drift['status']}: {drift['detail']}")
