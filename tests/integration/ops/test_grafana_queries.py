"""Every query of every Grafana panel (deploy/grafana/dashboards/*.json) returns data from a Prometheus that
scrapes a running scorer worker (with a model), API and simulator producer.

Grafana itself is not installable from the package registries this project may use (Debian, PyPI, npm,
Maven Central), so the dashboards are checked here, query by query, against the monitoring stack
`make run` starts (deploy/local/monitoring.sh) on free ports.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.api.conftest import reader_url_for
from tests.integration.ops.conftest import Monitoring, Processes
from tests.integration.scorer.conftest import Topics, free_port, wait_for

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))


def panel_queries() -> list[tuple[str, str]]:
    queries = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']}", target["expr"]))
    return queries


def test_dashboards_have_queries() -> None:
    assert DASHBOARDS and len(panel_queries()) >= 20


def _has_data(mon: Monitoring, expr: str) -> bool:
    """At least one series with a number (histogram_quantile of empty buckets gives NaN: no data)."""
    return any(not math.isnan(float(r["value"][1])) for r in mon.query(expr))


def test_every_panel_query_returns_data(
    processes: Processes,
    start_monitoring: Callable[..., Monitoring],
    ops_topics: Topics,
    ops_registry: Path,
    fresh_database: Callable[[str], str],
) -> None:
    db = fresh_database("ops_grafana")
    scorer = processes.scorer(db, ops_topics, ops_registry)
    api = processes.api(reader_url_for(db), ops_topics)
    processes.wait_answers(api, "/healthz")
    scorer.wait_ready(120)
    producer_port = free_port()
    mon = start_monitoring(scorer=scorer.port, api=api.port, producer=producer_port)
    wanted = {"cockpit-scorer": "up", "cockpit-api": "up"}
    wait_for(lambda: wanted.items() <= mon.targets().items(), 30, "scorer and API scraped")
    # telemetry once Prometheus watches, so that the rates and latencies of its scoring are seen
    args = ["--turbines", "4", "--days", "2", "--speed", "20000"]
    processes.producer(ops_topics, args, producer_port)
    wait_for(lambda: mon.targets().get("cockpit-producer") == "up", 60, "producer scraped")
    # scores computed and a fleet sweep done, as a running cockpit has
    wait_for(lambda: mon.query("sum(scorer_events_accepted_total) > 0"), 120, "events scored")
    wait_for(lambda: mon.query('sum(scorer_sweeps_total{status="succeeded"}) > 0'), 120, "a sweep")
    wait_for(lambda: mon.query("max(cockpit_last_sweep_age_seconds) >= 0"), 60, "sweep seen by the API")

    queries = panel_queries()
    deadline = time.monotonic() + 60
    missing = queries
    while missing and time.monotonic() < deadline:
        missing = [(panel, expr) for panel, expr in queries if not _has_data(mon, expr)]
        if missing:
            time.sleep(2)
    assert not missing, "panel queries without data:\n" + "\n".join(f"  {p}: {e}" for p, e in missing)
