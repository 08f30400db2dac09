"""A scorer worker that stops raises ScorerDown: pending, then firing in Prometheus, then in Alertmanager and
its webhook. The monitoring stack is the one `make run` starts (deploy/local/monitoring.sh, the project's
configuration and rules) on free ports; the worker is a real `python -m scorer worker` on this run's topics
and database. Before it stops, the same worker — started without a model — raises ScorerModelNotLoaded from
its own metric.

Only the `for:` of those two alerts is shortened (ScorerDown 10 s instead of 2 min, ScorerModelNotLoaded 5 s
instead of 3 min) so that the test stays short; their expressions, labels and annotations are the shipped
ones, and each `for:` is tested by promtool (deploy/prometheus/tests/alerts_test.yml).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.ops.conftest import Monitoring, Processes, Webhook, rules_with_shorter_for
from tests.integration.scorer.conftest import Topics, free_port, wait_for


def _in_state(mon: Monitoring, name: str, state: str) -> list[dict[str, Any]]:
    return [a for a in mon.alerts(name) if a["state"] == state]


def test_scorer_down_goes_pending_then_firing_and_reaches_alertmanager(
    processes: Processes,
    start_monitoring: Callable[..., Monitoring],
    webhook: Webhook,
    ops_topics: Topics,
    fresh_database: Callable[[str], str],
    tmp_path: Path,
) -> None:
    empty_registry = tmp_path / "registry-without-model"
    empty_registry.mkdir()
    scorer = processes.scorer(fresh_database("ops_alerts"), ops_topics, empty_registry)
    processes.wait_answers(scorer, "/metrics")
    rules = rules_with_shorter_for(tmp_path, {"ScorerDown": "10s", "ScorerModelNotLoaded": "5s"})
    mon = start_monitoring(
        scorer=scorer.port, api=free_port(), producer=free_port(), rules=rules, webhook=webhook.url
    )

    wait_for(lambda: mon.targets().get("cockpit-scorer") == "up", 30, "scorer scraped")
    assert mon.query('scorer_model_loaded{job="cockpit-scorer"}')[0]["value"][1] == "0"
    not_loaded = wait_for(lambda: _in_state(mon, "ScorerModelNotLoaded", "firing"), 30, "model alert")
    assert not_loaded[0]["labels"]["severity"] == "page"
    assert not_loaded[0]["labels"]["instance"] == f"127.0.0.1:{scorer.port}"
    assert not mon.alerts("ScorerDown"), "ScorerDown while the worker answers"

    stopping = time.monotonic()
    scorer.stop()  # SIGTERM: a clean stop, /metrics goes away while it shuts down
    pending = wait_for(lambda: _in_state(mon, "ScorerDown", "pending"), 20, "ScorerDown pending")
    assert pending[0]["labels"] == {"alertname": "ScorerDown", "severity": "page"}
    firing = wait_for(lambda: _in_state(mon, "ScorerDown", "firing"), 30, "ScorerDown firing")
    assert firing[0]["annotations"]["runbook_url"] == "docs/runbooks/sweep-failed.md"
    assert time.monotonic() - stopping >= 10, "fired before its `for:`"
    # the worker's own series are gone: the model alert resolves
    wait_for(lambda: not mon.alerts("ScorerModelNotLoaded"), 30, "ScorerModelNotLoaded resolved")

    in_am = wait_for(lambda: mon.alertmanager_alerts("ScorerDown"), 30, "ScorerDown in Alertmanager")
    assert in_am[0]["status"]["state"] == "active"
    assert in_am[0]["labels"]["severity"] == "page"
    wait_for(lambda: "ScorerDown" in webhook.alert_names(), 30, "ScorerDown notification delivered")
