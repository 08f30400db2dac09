"""Drill for docs/runbooks/sweep-failed.md: the fleet sweep fails (or scores nothing), three causes.

    .venv/bin/python deploy/drills/sweep_failed.py [--kafka H:P] [--admin-url URL] [--model-from DIR]

On a sandbox cockpit (own database, topics, ports; see drill_lib.py), one after the other:
  a. the model is missing (empty registry): `cockpit sweep` fails naming the registry path; /readyz and
     scorer_model_loaded say so; remediation: install and promote a version; the next sweep succeeds;
  b. data is missing (nothing on the telemetry topic): the sweep scores 0 turbines; the topic's offsets,
     the consumed counter and the turbines table show where it looked; remediation: publish history
     (`python -m producers backfill`); the next sweep scores the turbines;
  c. the configuration is not loaded: an invalid policy file stops the scorer naming the file and the
     problem; a misspelt registry variable is refused (or the default path is used and named);
     remediation: fix and restart; the sweep succeeds again.
Exit 0 when every step held, 1 otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drill_lib import (
    PY,
    Drill,
    Proc,
    Sandbox,
    expect,
    install_model,
    model_source,
    parse_args,
    run,
)

BROKEN_POLICY = "schema_version: 1\ntiers:\n  critical: 40.0\n  high: 50.0\n  moderate: 20.0\n"


def sweep(sb: Sandbox, timeout: float = 60) -> tuple[int, str]:
    res = sb.cli("sweep", "--timeout", str(timeout), timeout=timeout + 60)
    return res.returncode, (res.stdout + res.stderr).strip()


def end_offsets(sb: Sandbox) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    topic = f"{sb.prefix}telemetry.v1"
    consumer = KafkaConsumer(bootstrap_servers=sb.kafka, client_id=f"drill-{sb.id}-offsets")
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: int(off) for tp, off in offsets.items()}
    finally:
        consumer.close()


def count_turbines(sb: Sandbox) -> int:
    import psycopg

    with psycopg.connect(sb.url("cockpit_reader"), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM turbines").fetchone()
    return int(row[0]) if row else 0


def wait_exit(sb: Sandbox, proc: Proc, timeout: float = 90) -> int:
    sb.wait(f"{proc.name} to stop by itself", lambda: not proc.alive(), timeout)
    return int(proc.popen.returncode)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    drill = Drill("sweep-failed")
    sb = Sandbox(drill, args.kafka, args.admin_url, keep=args.keep)
    error: BaseException | None = None
    try:
        with drill.step("sandbox cockpit: database, topics, API, scorer with an EMPTY model registry"):
            source = model_source(args.model_from, sb.dir)
            sb.create()
            sb.registry.mkdir(parents=True)
            api = sb.start_api()
            scorer = sb.start_scorer()
            sb.api_up(api)
            sb.wait(
                "scorer partitions",
                lambda: sb.readyz(scorer).get("partitions"),
                120,
                scorer,
            )

        # ------------------------------------------------------------------ a. model missing
        with drill.step("(a) symptom: `cockpit sweep` fails"):
            code, out = sweep(sb)
            drill.show(f"$ cockpit sweep   (exit {code})", out)
            expect(code == 1, f"cockpit sweep should exit 1 (sweep failed), got {code}")
            expect("no valid production model" in out, "the failure should say the model is missing")
            expect(str(sb.registry) in out, f"the failure should name where it looked ({sb.registry})")
        with drill.step("(a) signals: scorer /readyz, scorer_model_loaded, the scorer's log"):
            status, body = sb.get(f"{scorer.url}/readyz")
            drill.show(f"GET {scorer.url}/readyz -> {status}", "\n".join(body.get("problems", [])))
            expect(status == 503 and any(str(sb.registry) in p for p in body["problems"]), "readyz names it")
            loaded = sb.metric(scorer.url, "scorer_model_loaded")
            drill.show("scorer_model_loaded", str(loaded))
            expect(loaded == 0, f"scorer_model_loaded should be 0, got {loaded}")
            lines = scorer.grep("no valid production model")
            drill.show("scorer log", "\n".join(lines[-2:]), 2)
            expect(lines, "the scorer's log should say it (no valid production model)")
            res = sb.cli("status")
            drill.show(f"$ cockpit status   (exit {res.returncode})", res.stdout + res.stderr, 14)
        with drill.step("(a) remediation: install a model version and promote it"):
            version = install_model(source, sb.registry)
            drill.show("$ python -m models promote VERSION --registry REGISTRY", f"production: {version}", 1)
            drill.facts["model_version"] = version
        with drill.step("(a) verification: scorer ready (model polled), the sweep succeeds"):
            sb.scorer_ready(scorer, timeout=90)
            expect(sb.metric(scorer.url, "scorer_model_loaded") == 1, "scorer_model_loaded should be 1")
            code, out = sweep(sb)
            drill.show(f"$ cockpit sweep   (exit {code})", out)
            expect(code == 0 and "succeeded" in out, "the sweep should succeed once the model is there")

        # ------------------------------------------------------------------ b. data missing
        with drill.step("(b) symptom: the sweep scored 0 turbines, the ranking is empty"):
            expect(re.search(r"succeeded.*: 0 turbines", out), "no data: the sweep should score 0 turbines")
            res = sb.cli("top")
            drill.show(f"$ cockpit top   (exit {res.returncode})", res.stdout + res.stderr, 8)
        with drill.step("(b) diagnosis: where the scorer looked (topic offsets, consumed events, turbines)"):
            offsets = end_offsets(sb)
            consumed = sb.metric(scorer.url, "scorer_events_consumed_total")
            turbines = count_turbines(sb)
            drill.show(
                "what is missing",
                f"topic {sb.prefix}telemetry.v1 end offsets {offsets} (records ever published)\n"
                f"scorer_events_consumed_total {consumed}\n"
                f"SELECT count(*) FROM turbines -> {turbines} (database {sb.db})",
                3,
            )
            expect(sum(offsets.values()) == 0 and turbines == 0, "nothing should have been published yet")
        with drill.step("(b) remediation: publish the missing history (python -m producers backfill)"):
            res = run(
                [PY, "-m", "producers", "backfill", "--turbines", "3", "--days", "0.5"],
                sb.env(),
                timeout=180,
                cwd=sb.dir,
            )
            drill.show(
                f"$ python -m producers backfill --turbines 3 --days 0.5   (exit {res.returncode})",
                res.stdout + res.stderr,
                4,
            )
            expect(res.returncode == 0, "the backfill should succeed")
            published = sum(end_offsets(sb).values())
            sb.wait(
                "the scorer to consume the history",
                lambda: (sb.metric(scorer.url, "scorer_events_accepted_total") or 0) >= published,
                120,
                scorer,
            )
            drill.facts["events_published"] = published
        with drill.step("(b) verification: the sweep scores the 3 turbines"):
            code, out = sweep(sb)
            drill.show(f"$ cockpit sweep   (exit {code})", out)
            expect(
                code == 0 and re.search(r"succeeded.*: 3 turbines", out), "the sweep should score 3 turbines"
            )

        # ------------------------------------------------------------------ c. configuration not loaded
        with drill.step("(c) symptom: the scorer restarted with an invalid policy file stops at once"):
            scorer.stop()
            policy = sb.dir / "policy.yaml"
            policy.write_text(BROKEN_POLICY)
            bad = sb.start_scorer(COCKPIT_POLICY_PATH=str(policy))
            code = wait_exit(sb, bad)
            drill.show(f"scorer exit {code}; its log", bad.tail(3), 3)
            expect(code != 0, "the scorer should refuse to start")
            expect(str(policy) in bad.tail(40), f"the message should name the policy file {policy}")
            code, out = sweep(sb, timeout=5)
            drill.show(f"$ cockpit sweep --timeout 5   (exit {code})", out)
            expect(code == 3, "with no scorer consuming commands the sweep does not finish (exit 3)")
        with drill.step("(c) symptom: a misspelt setting (COCKPIT_REGISTY_DIR) is named"):
            bad = sb.start_scorer(COCKPIT_REGISTRY_DIR=None, COCKPIT_REGISTY_DIR=str(sb.registry))
            sb.wait(
                "the scorer to refuse the setting or report the registry it used",
                lambda: (not bad.alive()) or sb.get(f"{bad.url}/readyz")[0] == 503,
                90,
            )
            if not bad.alive():
                drill.show(f"scorer exit {bad.popen.returncode}; its log", bad.tail(4), 4)
                expect("COCKPIT_REGISTY_DIR" in bad.tail(40), "the refusal should name the variable")
                drill.facts["misspelt_setting"] = "refused at start"
            else:
                problems = "\n".join(sb.readyz(bad).get("problems", []))
                drill.show("scorer /readyz problems (default registry used)", problems)
                expect("PRODUCTION" in problems, "readyz should name the registry path it looked in")
                drill.facts["misspelt_setting"] = "ignored; default registry named by /readyz"
                bad.stop()
        with drill.step("(c) remediation + verification: fixed settings, restart, the sweep succeeds"):
            scorer = sb.start_scorer()
            sb.scorer_ready(scorer, timeout=120)
            code, out = sweep(sb)
            drill.show(f"$ cockpit sweep   (exit {code})", out)
            expect(code == 0 and re.search(r"succeeded.*: 3 turbines", out), "the sweep should succeed again")
    except Exception as exc:
        error = exc
    finally:
        sb.cleanup()
    return drill.finish(error)


if __name__ == "__main__":
    sys.exit(main())
