"""The acceptance test finds the README's commands and reads the run banner (fast; no service).

Why: the acceptance test runs the README's words; a README or banner edit that its parsing cannot follow
should fail here in a second, not after a ten-minute `make run`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.readme import (
    BANNER_TITLE,
    ReadmeError,
    bullet,
    incident_ids,
    parse_banner,
    replay_command,
    run_command,
    sweep_run_id,
    turbine_ids,
)

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """# Title

```bash
make setup  # not this one
make run    # set up and run the whole cockpit
make test   # run the tests
```

## Where to look
- CLI: `cockpit turbine WT-007`, `COCKPIT_API_KEY=$(cat .stack/api-key) cockpit sweep`.
- Replay an incident: `.venv/bin/python -m producers scenario gearbox_bearing_failure
  --shift-to-now` (`python -m producers scenarios` lists them); turbine R-WT-003 climbs, see
  /v1/turbines/R-WT-003.
- Logs: `.stack/logs/scorer.log`.
"""

BANNER = """\x1b[1;32m[cockpit]\x1b[0m producer started (pid 12, log .stack/logs/producer.log)

  Cockpit is running
    web cockpit      http://127.0.0.1:18000/
    scorer metrics   http://127.0.0.1:16066/metrics
    Kafka            127.0.0.1:19092 (topics telemetry.v1, telemetry.dlq.v1, scorer.commands.v1)
    PostgreSQL       postgresql://cockpit_reader:cockpit_reader@127.0.0.1:15433/cockpit
    sweep now        COCKPIT_API_KEY=$(cat .stack/api-key) .venv/bin/cockpit sweep
    stop             make down          wipe data: make reset

after
"""


def test_the_repository_readme_still_says_what_to_run() -> None:
    readme = (ROOT / "README.md").read_text()
    assert run_command(readme) == "make run"
    replay = replay_command(readme)
    assert "producers scenario" in replay and "`" not in replay
    assert BANNER_TITLE.search((ROOT / "deploy" / "local" / "run.sh").read_text())


def test_run_command_is_the_make_run_line_of_the_first_block_without_its_comment() -> None:
    assert run_command(SAMPLE) == "make run"
    with pytest.raises(ReadmeError, match="no `make run` line"):
        run_command("```\nmake test\n```\n```\nmake run\n```\n")
    with pytest.raises(ReadmeError, match="no fenced code block"):
        run_command("# nothing to run\n")


def test_replay_command_joins_a_wrapped_item_and_keeps_its_turbine_ids() -> None:
    cmd = replay_command(SAMPLE)
    assert cmd == ".venv/bin/python -m producers scenario gearbox_bearing_failure --shift-to-now"
    item = bullet(SAMPLE, "Replay an incident")
    assert item.endswith("/v1/turbines/R-WT-003.")
    assert turbine_ids(item) == ["R-WT-003"]
    with pytest.raises(ReadmeError, match="Replay an incident"):
        replay_command("- Logs: `x`\n")


def test_turbine_ids_skip_timestamps_and_paths_but_find_urls() -> None:
    text = "incident turbine R-WT-003 (site R-SITE-1) fails at 2026-11-29T06:00:00Z; open /v1/turbines/X.7-12"
    assert turbine_ids(text) == ["X.7-12", "R-WT-003", "R-SITE-1"]


def test_banner_fields_topics_and_sweep_command() -> None:
    banner = parse_banner(BANNER)
    assert banner is not None
    assert banner.topics() == ["telemetry.v1", "telemetry.dlq.v1", "scorer.commands.v1"]
    assert banner.kafka_address() == "127.0.0.1:19092"
    assert banner.sweep_command() == "COCKPIT_API_KEY=$(cat .stack/api-key) .venv/bin/cockpit sweep"
    assert banner.get("web cockpit") == "http://127.0.0.1:18000/"
    assert banner.get("stop") == "make down          wipe data: make reset"
    assert banner.get("title") == "Cockpit is running"
    assert parse_banner("[cockpit] error: scorer exited") is None


def test_banner_of_the_ready_form_with_timings_and_a_cli_prefix() -> None:
    banner = parse_banner(
        "\n  Cockpit is ready (start-up 41 s: stack 9 s, model 2 s)\n"
        "    scorer           http://127.0.0.1:16066/readyz   metrics: http://127.0.0.1:16066/metrics\n"
        "    Kafka            127.0.0.1:19092 (controller 127.0.0.1:19093); topics telemetry.v1, d, c\n"
        "    sweep now        COCKPIT_API_URL=http://h:1 COCKPIT_API_KEY=$(cat k) .venv/bin/cockpit sweep\n"
        "\n"
    )
    assert banner is not None
    assert banner.get("title", "x").startswith("Cockpit is ready (start-up 41 s")
    assert banner.topics() == ["telemetry.v1", "d", "c"]
    assert banner.kafka_address() == "127.0.0.1:19092"
    assert banner.get("scorer metrics", "scorer", "x").startswith("http://127.0.0.1:16066/")
    assert banner.sweep_command() == (
        "COCKPIT_API_URL=http://h:1 COCKPIT_API_KEY=$(cat k) .venv/bin/cockpit sweep"
    )


def test_sweep_run_id_is_read_from_the_cli_output() -> None:
    out = "Sweep requested: run \x1b[1m0b5f8a7e-3c1d-4e2f-9a6b-7c8d9e0f1a2b\x1b[0m → /v1/runs/0b5f8a7e-..."
    assert sweep_run_id(out) == "0b5f8a7e-3c1d-4e2f-9a6b-7c8d9e0f1a2b"
    assert sweep_run_id("error: API answered 503") is None


def test_incident_ids_prefer_the_incident_lines_of_a_replay_output() -> None:
    out = (
        "scenario gearbox_bearing_failure: turbines R-WT-001 .. R-WT-020, events 2026-11-17 -> 2026-12-08\n"
        "  incident turbine R-WT-003: gearbox_bearing failure at 2026-11-30 04:00:00 UTC (in 23.9 h)\n"
        "    look at: /v1/turbines/R-WT-003  (cockpit turbine R-WT-003)\n"
    )
    assert incident_ids(out) == ["R-WT-003"]
    assert incident_ids(out.replace("/v1/turbines/", "")) == ["R-WT-003"]
    assert incident_ids("published R-WT-001 and R-WT-002") == ["R-WT-001", "R-WT-002"]
    item = "own ids (`R-WT-001`…), prints the incident turbine (R-WT-003), look at (/v1/turbines/R-WT-003)"
    assert incident_ids(item) == ["R-WT-003"]
