"""Drill for docs/runbooks/cockpit-unreachable.md: the cockpit is unreachable, the turbine list does not load.

    .venv/bin/python deploy/drills/cockpit_unreachable.py [--kafka H:P] [--admin-url URL]

On a sandbox cockpit (own database, topics, ports; see drill_lib.py) whose API reads PostgreSQL through
a TCP relay the drill can cut:
  A. the API process is down (SIGKILL): the page does not load, `cockpit top` exits 3 naming the URL;
     remediation: start the API again (what supervisord / Kubernetes do by themselves);
  B. the database is down for reads (relay cut): the page loads but its list gets 503, `cockpit top`
     exits 3 with the API's reason, /readyz and cockpit_api_database_up say database KO; remediation:
     bring the database back; the list loads again without restarting the API.
Exit 0 when every step held, 1 otherwise.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drill_lib import Drill, Sandbox, TcpProxy, expect, parse_args

TURBINES = ("DRILL-WT-01", "DRILL-WT-02", "DRILL-WT-03")


def seed(sb: Sandbox) -> None:
    """Three known turbines (what the scorer writes when telemetry arrives)."""
    import psycopg

    with psycopg.connect(sb.url("cockpit_writer"), autocommit=True) as conn:
        insert = "INSERT INTO turbines (turbine_id, site_id, last_event_time) VALUES (%s, %s, now())"
        for tid in TURBINES:
            conn.execute(insert, (tid, "DRILL-SITE"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    drill = Drill("cockpit-unreachable")
    sb = Sandbox(drill, args.kafka, args.admin_url, keep=args.keep)
    relay = TcpProxy(sb.pg_host, sb.pg_port)
    error: BaseException | None = None
    try:
        with drill.step("sandbox cockpit: database with 3 turbines, API reading through a relay"):
            sb.create()
            seed(sb)
            relay.start()
            sb.reader_port = relay.port
            api = sb.start_api()
            sb.api_up(api)
        with drill.step("baseline: the page and `cockpit top` answer"):
            status, _ = sb.get(f"{api.url}/")
            res = sb.cli("top")
            drill.show(f"GET / -> {status}; $ cockpit top   (exit {res.returncode})", res.stdout, 8)
            expect(status == 200 and res.returncode == 0 and TURBINES[0] in res.stdout, "baseline broken")

        # ------------------------------------------------------------------ A. API down
        with drill.step("(A) incident: the API process dies (SIGKILL)"):
            code = api.stop(signal.SIGKILL)
            drill.show("API process", f"exit {code}", 1)
        with drill.step("(A) symptoms: the page does not load, the CLI names the URL it tried"):
            status, body = sb.get(f"{api.url}/")
            drill.show(f"GET {api.url}/ (the page)", f"{status or 'no answer'}: {body}", 2)
            expect(status == 0, "nothing should answer on the API port")
            res = sb.cli("top")
            drill.show(f"$ cockpit top   (exit {res.returncode})", res.stdout + res.stderr, 4)
            expect(res.returncode == 3 and api.url in res.stderr, "cockpit top should exit 3 naming the URL")
            drill.facts["api_down_cli_exit"] = res.returncode
        with drill.step("(A) remediation: start the API again (supervisord/Kubernetes do it themselves)"):
            api = sb.start_api()
            sb.api_up(api)
        with drill.step("(A) verification: `cockpit top` lists the turbines"):
            res = sb.cli("top")
            drill.show(f"$ cockpit top   (exit {res.returncode})", res.stdout, 8)
            expect(res.returncode == 0 and TURBINES[0] in res.stdout, "the list should load again")

        # ------------------------------------------------------------------ B. database down for reads
        with drill.step("(B) incident: PostgreSQL stops answering the API (relay cut)"):
            relay.stop()
        with drill.step("(B) symptoms: the list gets 503, the CLI says why, /readyz and the metric say KO"):
            status, body = sb.get(f"{api.url}/v1/turbines", timeout=15)
            drill.show(f"GET /v1/turbines (what the page's list asks) -> {status}", str(body), 3)
            expect(status == 503, f"the turbine list should answer 503, got {status}")
            page, _ = sb.get(f"{api.url}/")
            drill.show("GET / (the page itself)", str(page), 1)
            res = sb.cli("top")
            drill.show(f"$ cockpit top   (exit {res.returncode})", res.stdout + res.stderr, 4)
            expect(res.returncode == 3 and "503" in res.stderr, "cockpit top should exit 3 with the 503")
            status, body = sb.get(f"{api.url}/readyz", timeout=15)
            db = body.get("checks", {}).get("database", {}) if isinstance(body, dict) else {}
            drill.show(f"GET /readyz -> {status}", f"database: {db}", 2)
            expect(db.get("ok") is False, "readyz should report the database KO")
            up = sb.metric(api.url, "cockpit_api_database_up")
            drill.show("cockpit_api_database_up (alert ApiDatabaseDown)", str(up), 1)
            expect(up == 0, f"cockpit_api_database_up should be 0, got {up}")
            drill.facts["db_down_list_status"] = 503
        with drill.step("(B) remediation: bring the database back (here: restore the relay)"):
            relay.start()
        with drill.step("(B) verification: the API recovers by itself, the list loads"):
            sb.wait(
                "API reads answered again",
                lambda: sb.get(f"{api.url}/v1/turbines", timeout=10)[0] == 200,
                60,
                api,
            )
            res = sb.cli("top")
            drill.show(f"$ cockpit top   (exit {res.returncode})", res.stdout, 8)
            expect(res.returncode == 0 and TURBINES[0] in res.stdout, "the list should load again")
            up = sb.metric(api.url, "cockpit_api_database_up")
            expect(up == 1, f"cockpit_api_database_up should be 1 again, got {up}")
    except Exception as exc:
        error = exc
    finally:
        relay.stop()
        sb.cleanup()
    return drill.finish(error)


if __name__ == "__main__":
    sys.exit(main())
