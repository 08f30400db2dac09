"""``cockpit``: terminal client of the API (rich tables for people, ``--json`` for scripts).

Exit codes: 0 ok · 1 not found / not ready · 2 usage · 3 API unreachable or unavailable · 4 auth refused.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Annotated, Any, NoReturn

import httpx
import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.settings import ClientSettings

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_AUTH = 0, 1, 2, 3, 4
TIER_STYLE = {
    "critical": "bold red",
    "high": "dark_orange",
    "moderate": "yellow",
    "low": "green",
    "unknown": "grey50",
}
TIER_LABEL = {
    "critical": "Critique / Critical",
    "high": "Élevé / High",
    "moderate": "Modéré / Moderate",
    "low": "Faible / Low",
    "unknown": "Inconnu / Unknown",
}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Wind fleet cockpit client. Exit codes: 0 ok, 1 not found/not ready, 2 usage, "
    "3 API unreachable, 4 auth.",
)
console = Console()
err_console = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw JSON response")]


def _settings() -> ClientSettings:
    return ClientSettings()


def _fail(code: int, message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _request(
    method: str,
    path: str,
    *,
    params: Any = None,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> httpx.Response:
    settings = _settings()
    try:
        with httpx.Client(base_url=settings.api_url, timeout=settings.timeout_seconds) as client:
            return client.request(method, path, params=params, headers=headers, json=json)
    except httpx.HTTPError as exc:
        _fail(EXIT_UNREACHABLE, f"API unreachable at {settings.api_url}: {exc}")


def _detail(res: httpx.Response) -> str:
    try:
        body = res.json()
    except ValueError:
        return res.text[:200]
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}" for d in detail)
    reason = body.get("reason") if isinstance(body, dict) else None
    return f"{detail}" + (f" ({reason})" if reason else "")


def _checked(res: httpx.Response, *, allow: tuple[int, ...] = (200,)) -> Any:
    if res.status_code in allow:
        return res.json()
    if res.status_code == 404:
        _fail(EXIT_NOT_FOUND, _detail(res))
    if res.status_code == 422:
        _fail(EXIT_USAGE, _detail(res))
    if res.status_code in (401, 403):
        _fail(EXIT_AUTH, _detail(res))
    _fail(EXIT_UNREACHABLE, f"API answered {res.status_code}: {_detail(res)}")


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _tier(tier: str) -> str:
    return f"[{TIER_STYLE.get(tier, '')}]{TIER_LABEL.get(tier, tier)}[/]"


def _num(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


@app.command()
def top(
    tier: Annotated[str | None, typer.Option(help="Comma list: critical,high,moderate,low,unknown")] = None,
    site: Annotated[str | None, typer.Option(help="Site id (comma list allowed)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many turbines")] = 20,
    sort: Annotated[str, typer.Option(help="score, probability, ttf or turbine_id")] = "score",
    as_json: JsonOpt = False,
) -> None:
    """Riskiest turbines first."""
    params: dict[str, Any] = {"limit": limit, "sort": sort}
    if tier:
        params["tier"] = tier
    if site:
        params["site"] = site
    data = _checked(_request("GET", "/v1/turbines", params=params))
    if as_json:
        _print_json(data)
        return
    if data.get("message"):
        console.print(f"[bold yellow]{escape(data['message'])}[/]")
    table = Table(title="Classement / Ranking" + (" — scorer stale" if data["scorer_stale"] else ""))
    for col in ("Turbine", "Site", "Score", "Tier", "Prob.", "TTF (d)", "Top reason", "Stale"):
        table.add_column(
            col,
            justify="right" if col in ("Score", "Prob.", "TTF (d)") else "left",
            no_wrap=True,
            overflow="ellipsis",
            # The reason gives way on narrow terminals; identifiers and figures never do.
            min_width=None if col == "Top reason" else len(col),
            max_width=48 if col == "Top reason" else None,
        )
    for row in data["items"]:
        reason = (
            row["reasons"][0].get("text") or row["reasons"][0].get("indicator") if row["reasons"] else "—"
        )
        prob = "—" if row["probability"] is None else f"{row['probability'] * 100:.0f} %"
        table.add_row(
            row["turbine_id"],
            row["site_id"],
            _num(row["score"]),
            _tier(row["tier"]),
            prob,
            _num(row["ttf_days"]),
            escape(_clip(str(reason), max(8, console.width - 84))),
            "yes" if row["stale"] else "",
        )
    console.print(table)


def _clip(text: str, width: int) -> str:
    """Shorten to ``width`` characters with an ellipsis, so a narrow terminal keeps every column."""
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def turbine(turbine_id: Annotated[str, typer.Argument(help="e.g. WT-007")], as_json: JsonOpt = False) -> None:
    """One turbine: its one current assessment (source, as-of time), reasons, latest measurements."""
    data = _checked(_request("GET", f"/v1/turbines/{turbine_id}"))
    if as_json:
        _print_json(data)
        return
    p = data["assessment"]
    console.print(
        f"[bold]{data['turbine_id']}[/] · site {data['site_id']} · "
        f"last event {data['last_event_time'] or '—'}" + (" [red](stale)[/]" if data["stale"] else "")
    )
    if data.get("site_mode") == "historical":
        console.print(f"[yellow]historical data: site data as of {data['data_as_of']}[/]")
    if p:
        console.print(
            f"Tier {_tier(p['tier'])} · score {_num(p['score'])} · probability "
            f"{_num(p['probability'], 2)} · TTF {_num(p['ttf_days'])} d "
            f"({_num(p['ttf_low_days'], 0)}-{_num(p['ttf_high_days'], 0)}) · model {p['model_version']}"
        )
        console.print(f"Assessment: {escape(str(p['source']))} as of {p['as_of']}")
        reasons = Table(title="Raisons / Reasons")
        for col in ("Indicator", "Explanation", "Value", "Normal range"):
            reasons.add_column(col)
        for r in p["reasons"]:
            reasons.add_row(*(escape(str(r.get(k))) for k in ("indicator", "text", "value", "normal_range")))
        console.print(reasons)
    else:
        console.print(f"Tier {_tier('unknown')}: never scored")
    if data["measurements"]:
        m = Table(title=f"Mesures / Measurements @ {data['measurements']['event_time']}")
        m.add_column("Signal")
        m.add_column("Value", justify="right")
        for k, v in data["measurements"]["values"].items():
            m.add_row(k, _num(v, 2) if isinstance(v, int | float) else str(v))
        console.print(m)
    run = data.get("last_sweep_run")
    if run:  # a reference only: the assessment above is the one current score
        console.print(
            f"Last sweep run: {run['run_id']} · {run['status']} · finished {run['finished_at'] or '—'}",
            style="grey50",
        )


@app.command()
def history(
    turbine_id: Annotated[str, typer.Argument(help="e.g. WT-007")],
    days: Annotated[int, typer.Option(min=1, max=400, help="How many days before the last data")] = 30,
    bucket: Annotated[str | None, typer.Option(help="Bucket width: 1h, 6h, 1d... (default: auto)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score history of one turbine: the DAYS days ending at its last data (not at the wall clock)."""
    params: dict[str, Any] = {"days": days, "bucket": bucket or ("1d" if days > 3 else "1h")}
    data = _checked(_request("GET", f"/v1/turbines/{turbine_id}/history", params=params))
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"{turbine_id} — {days} j/d → {str(data['end'])[:16]}, bucket {data['bucket']}")
    for col in ("Bucket", "Avg", "Max", "Tier", "Samples", ""):
        table.add_column(col)
    previous: datetime | None = None
    for p in data["scores"]:
        at = datetime.fromisoformat(p["bucket"])
        if previous is not None and (at - previous).total_seconds() > data["bucket_seconds"]:
            table.add_row("[grey50]… no data …[/]", "", "", "", "", "")  # a gap, said as such
        previous = at
        bar = "█" * round(p["avg_score"] / 5)
        table.add_row(
            p["bucket"][:16],
            _num(p["avg_score"]),
            _num(p["max_score"]),
            _tier(p["tier"]),
            str(p["samples"]),
            f"[{TIER_STYLE.get(p['tier'], '')}]{bar}[/]",
        )
    console.print(table)


WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait for the run to finish and print its outcome")
]
WaitTimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=1, help="Longest wait for the run, in seconds")
]
FINAL_RUN_STATES = ("succeeded", "failed")


@app.command()
def sweep(as_json: JsonOpt = False, wait: WaitOpt = True, timeout: WaitTimeoutOpt = 120.0) -> None:
    """Ask the scorer for a full-fleet sweep (needs COCKPIT_API_KEY) and, by default, wait for its outcome.

    Exit 0 when the run succeeded, 1 when it failed, 3 when it has not finished within ``--timeout``
    (the scorer is not consuming its command topic: see ``cockpit status``).
    """
    key = _settings().api_key
    if key is None:
        _fail(EXIT_AUTH, "COCKPIT_API_KEY is not set")
    res = _request("POST", "/v1/sweeps", headers={"X-API-Key": key.get_secret_value()})
    if res.status_code == 503 and "sweeps disabled" in res.text:
        _fail(EXIT_AUTH, _detail(res))
    data = _checked(res, allow=(202,))
    if not wait:
        if as_json:
            _print_json(data)
        else:
            console.print(f"Sweep requested: run [bold]{data['run_id']}[/] → {data['link']}")
        return
    if not as_json:
        console.print(f"Sweep requested: run [bold]{data['run_id']}[/]; waiting for the scorer…")
    run = _wait_for_run(str(data["link"]), timeout)
    if as_json:
        _print_json(run)
    if run is None or run["run"]["status"] not in FINAL_RUN_STATES:
        state = "not started" if run is None else run["run"]["status"]
        _fail(
            EXIT_UNREACHABLE,
            f"run {data['run_id']} not finished after {timeout:g} s ({state}); is the scorer consuming "
            "its command topic? see `cockpit status`",
        )
    info = run["run"]
    if info["status"] == "failed":
        if not as_json:
            err_console.print(f"[red]Sweep failed:[/] {escape(str(info.get('error')))}")
        raise typer.Exit(EXIT_NOT_FOUND)
    if not as_json:
        counts = info.get("tier_counts") or {}
        tiers = "  ".join(f"{TIER_LABEL[t]}: {counts.get(t, 0)}" for t in TIER_LABEL)
        console.print(
            f"Sweep [green]succeeded[/]: {info['turbines_scored']} turbines in "
            f"{(info.get('duration_ms') or 0) / 1000:.2f} s, model {info.get('model_version')}\n{tiers}"
        )


def _wait_for_run(link: str, timeout: float) -> dict[str, Any] | None:
    """Poll the run until it is final or ``timeout`` passes; the last answer (None: never recorded)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while True:
        res = _request("GET", link)
        if res.status_code == 200:
            last = res.json()
            if last["run"]["status"] in FINAL_RUN_STATES:
                return last
        elif res.status_code != 404:  # 404: the scorer has not claimed the run yet
            _checked(res)
        if time.monotonic() >= deadline:
            return last
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Readiness of the API (exit 1 when it cannot serve reads), the rest of the system's problems
    (scorer, sweeps, feeds: ``/v1/supervision``) and the fleet summary."""
    ready_res = _request("GET", "/readyz")
    ready = (
        _checked(ready_res, allow=(200, 503))
        if ready_res.headers.get("content-type", "").startswith("application/json")
        else _checked(ready_res)
    )
    summary_res = _request("GET", "/v1/fleet/summary", params={"days": 7})
    summary = summary_res.json() if summary_res.status_code == 200 else None
    supervision_res = _request("GET", "/v1/supervision", params={"days": 1})
    problems: list[str] | None = (
        list(supervision_res.json().get("problems", [])) if supervision_res.status_code == 200 else None
    )
    if as_json:
        _print_json({"readiness": ready, "problems": problems, "summary": summary})
    else:
        table = Table(
            title="État / Status: " + ("[green]ready[/]" if ready.get("ready") else "[red]not ready[/]")
        )
        table.add_column("Check")
        table.add_column("State")
        table.add_column("Detail")
        for name, check in ready.get("checks", {}).items():
            table.add_row(name, "[green]ok[/]" if check["ok"] else "[red]KO[/]", check["detail"])
        console.print(table)
        if problems is None:
            console.print(f"[yellow]supervision unavailable (HTTP {supervision_res.status_code})[/]")
        elif problems:
            console.print("[bold]Problèmes / Problems[/] (/v1/supervision):")
            for problem in problems:
                console.print(f"  [red]•[/] {escape(problem)}")
        else:
            console.print("[green]no problem reported by the supervision[/]")
        if summary:
            console.print("  ".join(f"{_tier(t)}: {n}" for t, n in summary["tiers"].items()))
            console.print(
                f"stale {summary['stale']}/{summary['turbines']} ({summary['stale_share'] * 100:.0f} %)"
            )
            if summary.get("message"):
                console.print(f"[yellow]{escape(summary['message'])}[/]")
    if not ready.get("ready"):
        raise typer.Exit(EXIT_NOT_FOUND)


# ------------------------------------------------------------------ interventions (issue 12, point 6)
intervention_app = typer.Typer(
    no_args_is_help=True,
    help="Maintenance interventions: record (needs COCKPIT_API_KEY), mark done, list. Exit codes: 0 ok, "
    "1 unknown turbine/intervention, 2 invalid input (the field is named), 3 API unreachable or the "
    "repair not passed to the scorer, 4 key missing or refused.",
)
app.add_typer(intervention_app, name="intervention")
FINDINGS = ("failure_confirmed", "no_fault_found", "preventive_replacement")


def _key_headers() -> dict[str, str]:
    key = _settings().api_key
    if key is None:
        _fail(EXIT_AUTH, "COCKPIT_API_KEY is not set")
    return {"X-API-Key": key.get_secret_value()}


def _written(res: httpx.Response, as_json: bool) -> None:
    if res.status_code == 503 and "COCKPIT_API_KEY not configured" in res.text:
        _fail(EXIT_AUTH, _detail(res))
    if res.status_code == 409:
        _fail(EXIT_USAGE, _detail(res))
    data = _checked(res, allow=(200, 201))
    if as_json:
        _print_json(data)
    else:
        when = data.get("done_at") or data.get("planned_for")
        finding = f" {data['finding']}" if data.get("finding") else ""
        console.print(
            f"Intervention [bold]{data['id']}[/] on {escape(data['turbine_id'])}: {data['kind']} "
            f"{escape(data['component'])}{finding} at {when} "
            f"(repair command: {escape(str(data.get('repair_command')))})"
        )
    if str(data.get("repair_command", "")).startswith("failed"):
        _fail(
            EXIT_UNREACHABLE,
            f"recorded as {data['id']}, but the scorer was not told ({escape(str(data['repair_command']))}); "
            f"once Kafka is back, send the same command again with --id {data['id']}",
        )


@intervention_app.command("add")
def intervention_add(
    turbine_id: Annotated[str, typer.Argument(help="e.g. WT-007")],
    kind: Annotated[str, typer.Option(help="planned or done")] = "done",
    component: Annotated[str, typer.Option(help="e.g. gearbox")] = "",
    finding: Annotated[
        str | None, typer.Option(help="done only: failure_confirmed, no_fault_found, preventive_replacement")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="done_at / planned_for (data time with UTC offset): 2026-11-20T10:00Z"),
    ] = None,
    notes: Annotated[str | None, typer.Option(help="Free text, at most 2000 characters")] = None,
    by: Annotated[str, typer.Option("--by", help="Who records it")] = "cli",
    intervention_id: Annotated[
        str | None, typer.Option("--id", help="Re-send a recorded intervention (idempotent)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record an intervention; a done failure_confirmed / preventive_replacement tells the scorer."""
    if kind not in ("planned", "done"):
        _fail(EXIT_USAGE, f"--kind {kind!r}: planned or done")
    if at is None:
        _fail(EXIT_USAGE, "--at is required (data time with its UTC offset, e.g. 2026-11-20T10:00Z)")
    body: dict[str, Any] = {"kind": kind, "component": component, "recorded_by": by}
    body["done_at" if kind == "done" else "planned_for"] = at
    if finding is not None:
        body["finding"] = finding
    if notes is not None:
        body["notes"] = notes
    if intervention_id is not None:
        body["id"] = intervention_id
    path = f"/v1/turbines/{_quote(turbine_id)}/interventions"
    _written(_request("POST", path, headers=_key_headers(), json=body), as_json)


@intervention_app.command("done")
def intervention_done(
    turbine_id: Annotated[str, typer.Argument(help="e.g. WT-007")],
    intervention_id: Annotated[str, typer.Argument(help="Id of the planned intervention")],
    finding: Annotated[str, typer.Option(help=", ".join(FINDINGS))],
    at: Annotated[str, typer.Option("--at", help="done_at, data time with its UTC offset")],
    notes: Annotated[str | None, typer.Option(help="Free text, at most 2000 characters")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark a planned intervention as done."""
    body: dict[str, Any] = {"done_at": at, "finding": finding}
    if notes is not None:
        body["notes"] = notes
    path = f"/v1/turbines/{_quote(turbine_id)}/interventions/{_quote(intervention_id)}"
    _written(_request("PATCH", path, headers=_key_headers(), json=body), as_json)


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


@intervention_app.command("list")
def intervention_list(
    turbine_id: Annotated[str | None, typer.Argument(help="One turbine (default: the whole fleet)")] = None,
    since: Annotated[
        str | None, typer.Option(help="Fleet list: from this data time (ISO 8601 with offset)")
    ] = None,
    as_failure_log: Annotated[
        bool,
        typer.Option(
            "--as-failure-log",
            help="Print the confirmed failures as the CSV `python -m models train --failure-log` reads",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List interventions (newest first for one turbine, oldest first for the fleet)."""
    if turbine_id is not None:
        data = _checked(_request("GET", f"/v1/turbines/{_quote(turbine_id)}/interventions"))
    else:
        params = {"limit": 10000, **({"since": since} if since else {})}
        data = _checked(_request("GET", "/v1/interventions", params=params))
    items = data["items"]
    if as_failure_log:
        from models.labels import failure_log_rows, write_failure_log

        write_failure_log(failure_log_rows(items), sys.stdout)
        return
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"Interventions ({len(items)})")
    for col in ("turbine", "kind", "when (data time, UTC)", "component", "finding", "by", "notes", "id"):
        table.add_column(col)
    for it in items:
        table.add_row(
            escape(it["turbine_id"]),
            it["kind"],
            str(it.get("done_at") or it.get("planned_for")),
            escape(it["component"]),
            it.get("finding") or "—",
            escape(it["recorded_by"]),
            escape(_clip(it.get("notes") or "", 40)),
            str(it["id"]),
        )
    console.print(table)


def main() -> None:
    """Console-script entry point (``cockpit``)."""
    app()


if __name__ == "__main__":
    main()
