"""The cockpit page as the maintenance manager uses it, in headless Chromium (Debian's /usr/bin/chromium).

One browser for the module, a fresh context per test. The page's own fleet (``page_db``: a private database
seeded by ``seed.py``) may be changed by the live-refresh test (last in the file); the historical fleet,
an empty database, a server whose database is down and a server that stops give the error and stale states.
Screenshots go to test-artifacts/screenshots/ (kept by CI); axe-core's summary to test-artifacts/axe.json.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from api.settings import ApiSettings
from tests.integration.api.conftest import HistDb, LiveServer, free_port, reader_url_for
from tests.integration.api.seed import NOT_READY_PROBLEM, Seeded, rescore, seed_fleet, set_rated_power
from tests.integration.api.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

SHOTS = ARTIFACTS / "screenshots"
WEB = Path(__file__).resolve().parents[3] / "api" / "web"
REFRESH_MS = 15_000  # app.js REFRESH_MS
NO_POWER = "WT-002"  # a critical turbine without a rated power in the register
DETAIL = "WT-001"  # has telemetry aggregates and a risk history
DASH = "\u2013"  # the legend's range dash

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium"
    ),
]


@dataclass(frozen=True)
class PageDb:
    writer_url: str
    reader_url: str
    seeded: Seeded


@pytest.fixture(scope="module")
def page_db(fresh_database: Callable[[str], str]) -> PageDb:
    url = fresh_database("page")
    seeded = seed_fleet(url, turbines=24)
    set_rated_power(url, NO_POWER, None)
    return PageDb(url, reader_url_for(url), seeded)


@pytest.fixture(scope="module")
def server(make_settings: Callable[..., ApiSettings], page_db: PageDb) -> Iterator[str]:
    with LiveServer(make_settings(reader_database_url=page_db.reader_url)) as live:
        yield live.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Page:
    """A page in a fresh context that fails the test on a JavaScript error or a request leaving the API."""

    def __init__(self, browser: Any, base: str, width: int = 1400, height: int = 1000) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", lambda r: None if r.url.startswith(base) else self.elsewhere.append(r.url))

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors
        assert not self.elsewhere, self.elsewhere


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    made: list[Page] = []

    def _open(base: str, path: str = "/", clock: bool = False, **size: int) -> Any:
        p = Page(browser, base, **size)
        made.append(p)
        if clock:  # fake timers: the test moves time on to the next poll
            p.page.clock.install()
        p.page.goto(base + path, wait_until="networkidle")
        return p.page

    yield _open
    for p in made:
        p.close()


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def serious_violations(page: Any) -> list[str]:
    """axe-core (bundled by axe-playwright-python, no network) violations of impact serious or critical."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {len(v['nodes'])}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def fr(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}".replace(".", ",")


def expected_planning(seeded: Seeded, horizon: float = 7.0) -> list[str]:
    """The week's planning from what was seeded: critical/high or TTF within the horizon, ordered."""
    rank = {"critical": 0, "high": 1, "moderate": 2, "low": 3}
    rows = []
    for tid, score in seeded.scored.items():
        ttf = round(max(1.0, (100 - score) / 2), 2)
        if seeded.tiers[tid] in ("critical", "high") or ttf <= horizon:
            rows.append((rank[seeded.tiers[tid]], ttf, -score, tid))
    return [r[3] for r in sorted(rows)]


# ------------------------------------------------------------------------------------------ 1. planning
def test_planning_view_csv_and_print(server: str, page_db: PageDb, open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    page = open_page(server, "/?view=planning")
    expected = expected_planning(page_db.seeded)
    rows = page.locator("#planning tbody tr")
    expect(rows).to_have_count(len(expected))
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.turbine)") == expected
    expect(page.locator('#views a[data-view="planning"]')).to_have_attribute("aria-current", "page")
    expect(page.locator("#ranking-panel")).to_be_hidden()

    api = httpx.get(f"{server}/v1/planning", timeout=10).json()
    by_id = {i["turbine_id"]: i for i in api["items"]}
    first = rows.first
    expect(first.locator("td.intervention")).to_have_text("—")  # interventions: column ready, none yet
    expect(first.locator("td.reason")).to_have_text(by_id[expected[0]]["reasons"][0]["text"])
    # energy at stake = 3600 kW x probability x 72 h, shown in MWh with a French decimal comma
    item = by_id[expected[0]]
    assert item["energy_at_stake_kwh"] == pytest.approx(3600 * item["probability"] * 72, rel=1e-3)
    expect(first.locator("td.energy")).to_have_text(fr(item["energy_at_stake_kwh"] / 1000))
    expect(page.locator(f'#planning tr[data-turbine="{NO_POWER}"] td.energy')).to_have_text("—")
    expect(page.locator("#planning-summary")).to_contain_text("1 sans puissance nominale")
    expect(page.locator("#planning-assumptions")).to_contain_text("72 h d'arrêt par réparation imprévue")
    expect(page.locator("#planning-intro")).to_contain_text("sous 7 jours")

    with page.expect_download() as download:
        page.locator("#planning-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["turbine_id"] for r in table] == expected
    assert [int(r["rank"]) for r in table] == list(range(1, len(expected) + 1))
    assert next(r for r in table if r["turbine_id"] == NO_POWER)["energy_at_stake_kwh"] == ""
    assert download.value.suggested_filename.startswith("planning-")
    shot(page, "planning-fr.png")

    page.emulate_media(media="print")
    expect(page.locator("#supervision-panel")).to_be_hidden()
    expect(page.locator("#planning-csv")).to_be_hidden()
    expect(page.locator("#planning")).to_be_visible()
    expect(page.locator("#planning-asof")).to_be_visible()
    shot(page, "planning-print.png")


# ------------------------------------------------------------------------------------------ 2. deep links
def test_deep_links_back_forward_reload(server: str, page_db: PageDb, open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    page = open_page(server)
    seeded = page_db.seeded
    rows = page.locator("#ranking tbody tr")
    expect(rows).to_have_count(len(seeded.turbines))
    page.locator('.chip[data-tier="critical"]').click()
    expect(page).to_have_url(re.compile(r"\?tier=critical$"))
    expect(rows).to_have_count(sum(1 for t in seeded.tiers.values() if t == "critical"))
    page.locator('th[data-sort="ttf"] button').click()
    expect(page).to_have_url(re.compile(r"\?tier=critical&sort=ttf$"))
    expect(page.locator('th[data-sort="ttf"]')).to_have_attribute("aria-sort", "ascending")
    target = rows.nth(1).get_attribute("data-turbine")
    rows.nth(1).locator("td").nth(2).click()  # anywhere in the row
    expect(page).to_have_url(re.compile(rf"\?tier=critical&sort=ttf&turbine={target}$"))
    expect(page.locator("#detail-title")).to_have_text(f"Turbine {target}")

    page.reload(wait_until="networkidle")  # the URL restores the whole view
    expect(page.locator("#detail-title")).to_have_text(f"Turbine {target}")
    expect(page.locator('.chip[data-tier="critical"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator('th[data-sort="ttf"]')).to_have_attribute("aria-sort", "ascending")
    expect(page.locator(f'#ranking tr.selected[data-turbine="{target}"]')).to_have_count(1)

    page.go_back()
    expect(page.locator("#detail-panel")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"\?tier=critical&sort=ttf$"))
    page.go_back()
    expect(page.locator('th[data-sort="score"]')).to_have_attribute("aria-sort", "descending")
    page.go_back()
    expect(rows).to_have_count(len(seeded.turbines))
    page.go_forward()
    page.go_forward()
    page.go_forward()
    expect(page.locator("#detail-title")).to_have_text(f"Turbine {target}")

    # a link someone was sent: the planning view with a turbine open
    page.goto(f"{server}/?view=planning&turbine={DETAIL}", wait_until="networkidle")
    expect(page.locator("#planning-panel")).to_be_visible()
    expect(page.locator("#detail-title")).to_have_text(f"Turbine {DETAIL}")
    href = page.locator(f'#planning tr[data-turbine="{NO_POWER}"] a.turbine-link').get_attribute("href")
    assert href == f"?view=planning&turbine={NO_POWER}"


# ------------------------------------------------------------------------------------------ 4. policy
def test_policy_endpoint_and_chart_bands(server: str, open_page: Callable[..., Any]) -> None:
    from playwright.sync_api import expect

    from models.policy import load_policy

    policy = httpx.get(f"{server}/v1/policy", timeout=10).json()
    tiers = load_policy().config.tiers  # the one source of truth
    assert [(t["name"], t["min_score"]) for t in policy["tiers"]] == [
        ("critical", tiers.critical),
        ("high", tiers.high),
        ("moderate", tiers.moderate),
        ("low", 0.0),
    ]
    assert policy["horizons"]["planning_days"] == 7.0
    page = open_page(server, f"/?turbine={DETAIL}")
    bands = page.locator("#history-chart rect.band")
    expect(bands).to_have_count(4)
    floors = bands.evaluate_all("bs => bs.map(b => Number(b.dataset.min))")
    assert floors == [tiers.critical, tiers.high, tiers.moderate, 0.0]
    legend = page.locator("#history-legend [role=listitem]")
    expect(legend).to_have_text(
        [
            f"Critique ≥ {tiers.critical:.0f}",
            f"Élevé {tiers.high:.0f}{DASH}{tiers.critical:.0f}",
            f"Modéré {tiers.moderate:.0f}{DASH}{tiers.high:.0f}",
            f"Faible < {tiers.moderate:.0f}",
        ]
    )


# ------------------------------------------------------------------------------------------ 5. states
def test_api_down_keeps_last_data_and_says_what_to_do(
    browser: Any, make_settings: Callable[..., ApiSettings], page_db: PageDb, open_page: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    live = LiveServer(make_settings(reader_database_url=page_db.reader_url))
    with live:
        page = open_page(live.url, clock=True)
        expect(page.locator("#ranking tbody tr")).to_have_count(len(page_db.seeded.turbines))
    page.clock.run_for(REFRESH_MS + 1000)  # the next poll finds nobody listening
    alert = page.locator("#alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("L'API ne répond pas")
    expect(alert).to_contain_text("make status")
    expect(page.locator("#status-pill")).to_have_text("API injoignable")
    expect(page.locator("#updated")).to_contain_text("dernière mise à jour réussie")
    expect(page.locator("#ranking tbody tr")).to_have_count(len(page_db.seeded.turbines))  # last data kept
    shot(page, "state-api-down.png")


def test_database_down_and_503_on_opening_a_turbine(
    make_settings: Callable[..., ApiSettings], open_page: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    dead = f"postgresql://cockpit_reader:cockpit_reader@127.0.0.1:{free_port()}/cockpit"
    with LiveServer(make_settings(reader_database_url=dead, db_pool_timeout_seconds=1)) as live:
        page = open_page(live.url, f"/?turbine={DETAIL}")
        expect(page.locator("#alert")).to_contain_text("Base de données indisponible")
        error = page.locator("#detail-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text(f"Impossible d'ouvrir {DETAIL} : base de données indisponible")
        expect(error.locator("button")).to_have_text("Réessayer")
        expect(page.locator("#detail-body")).to_be_hidden()
        assert "undefined" not in page.locator("body").inner_text()
        assert not serious_violations(page), serious_violations(page)  # error states stay readable
        shot(page, "state-database-down.png")


def test_empty_fleet(
    fresh_database: Callable[[str], str],
    make_settings: Callable[..., ApiSettings],
    open_page: Callable[..., Any],
) -> None:
    from playwright.sync_api import expect

    url = fresh_database("page_empty")
    with LiveServer(make_settings(reader_database_url=reader_url_for(url))) as live:
        page = open_page(live.url)
        empty = page.locator("#ranking-empty")
        expect(empty).to_be_visible()
        expect(empty).to_contain_text("Aucune donnée reçue pour l'instant")
        expect(empty).to_contain_text("make run")
        expect(page.locator("#scorer-banner")).to_be_hidden()  # no data: nothing to score yet
        shot(page, "state-empty.png")
        page.locator('#views a[data-view="planning"]').click()
        expect(page.locator("#planning-empty")).to_contain_text("Aucune donnée reçue")


def test_historical_fleet_and_stalled_scorer(
    make_settings: Callable[..., ApiSettings], hist_db: HistDb, open_page: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    with LiveServer(make_settings(reader_database_url=hist_db.reader_url)) as live:
        page = open_page(live.url)
        banner = page.locator("#data-banner")
        expect(banner).to_contain_text("Données historiques : classement au 2 mars 2024, 14:09 UTC")
        expect(banner).to_contain_text("pas en direct")
        scorer = page.locator("#scorer-banner")
        expect(scorer).to_be_visible()
        expect(scorer).to_contain_text(f"Le scoreur ne suit plus (not ready: {NOT_READY_PROBLEM})")
        expect(page.locator("#status-pill")).to_have_text(f"Scoreur : not ready: {NOT_READY_PROBLEM}")
        shot(page, "state-historical-scorer-stalled.png")


# ------------------------------------------------------------------------------------------ 6. language
def test_language_switch_formats_and_memory(
    server: str, page_db: PageDb, open_page: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    fr_dict = json.loads((WEB / "i18n" / "fr.json").read_text(encoding="utf-8"))
    en_dict = json.loads((WEB / "i18n" / "en.json").read_text(encoding="utf-8"))
    assert set(fr_dict) == set(en_dict), set(fr_dict) ^ set(en_dict)
    top = max(page_db.seeded.scored, key=lambda t: page_db.seeded.scored[t])
    score = page_db.seeded.scored[top]

    page = open_page(server)
    assert page.locator("html").get_attribute("lang") == "fr"  # French by default for this customer
    row = page.locator(f'#ranking tr[data-turbine="{top}"]')
    expect(row.locator("td.score")).to_have_text(fr(score))
    expect(page.locator('.chip[data-tier="critical"]')).to_have_text("Critique")
    expect(page.locator("#ranking-title")).to_have_text("Classement des risques")
    assert "Risk ranking" not in page.locator("body").inner_text()  # no labels side by side
    shot(page, "ranking-fr.png")

    page.locator('#lang-switch button[data-lang="en"]').click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(row.locator("td.score")).to_have_text(f"{score:.1f}")
    expect(page.locator('.chip[data-tier="critical"]')).to_have_text("Critical")
    expect(page.locator("#ranking-title")).to_have_text("Risk ranking")
    expect(page.locator("#updated")).to_contain_text("ago")
    assert "Classement des risques" not in page.locator("body").inner_text()
    page.reload(wait_until="networkidle")  # the choice is remembered
    expect(page.locator('.chip[data-tier="critical"]')).to_have_text("Critical")
    page.goto(f"{server}/?turbine={DETAIL}", wait_until="networkidle")
    expect(page.locator("#detail-summary")).to_contain_text("Failure probability within 7 d")
    expect(page.locator("#detail-summary")).to_contain_text("3,600 kW")  # en-GB grouping
    shot(page, "detail-en.png")


# ------------------------------------------------------------------------------------------ 7. accessibility
def _daily_counts(writer_url: str, days: int = 7) -> dict[datetime, int]:
    """High + critical turbines per UTC day (worst assessment of the day), counted here from score_history."""
    now = datetime.now(UTC)
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    worst: dict[tuple[datetime, str], int] = {}
    rank = {"critical": 4, "high": 3, "moderate": 2, "low": 1}
    with psycopg.connect(writer_url) as conn:
        for time, turbine, tier in conn.execute(
            "SELECT time, turbine_id, tier FROM score_history WHERE time >= %s", (since,)
        ):
            day = time.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            worst[(day, turbine)] = max(worst.get((day, turbine), 0), rank.get(tier, 0))
    out: dict[datetime, int] = {}
    for (day, _), w in worst.items():
        out[day] = out.get(day, 0) + (1 if w >= 3 else 0)
    return dict(sorted(out.items()))


def test_keyboard_charts_layout_and_daily_counts(
    server: str, page_db: PageDb, open_page: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page = open_page(server)
    sort_ttf = page.locator('th[data-sort="ttf"] button')
    sort_ttf.focus()
    page.keyboard.press("Enter")
    expect(page.locator('th[data-sort="ttf"]')).to_have_attribute("aria-sort", "ascending")
    page.keyboard.press(" ")
    expect(page.locator('th[data-sort="ttf"]')).to_have_attribute("aria-sort", "descending")
    page.locator('th[data-sort="score"] button').focus()
    page.keyboard.press("Enter")
    expect(page.locator('th[data-sort="score"]')).to_have_attribute("aria-sort", "descending")
    top = max(page_db.seeded.scored, key=lambda t: page_db.seeded.scored[t])
    expect(page.locator("#ranking tbody tr").first).to_have_attribute("data-turbine", top)  # re-sorted

    links = page.locator("#ranking tbody a.turbine-link")
    links.first.focus()
    page.keyboard.press("ArrowDown")
    second = page.locator("#ranking tbody tr").nth(1).get_attribute("data-turbine")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press(" ")  # Space opens, like Enter
    expect(page.locator("#detail-title")).to_have_text(f"Turbine {second}")
    expect(page.locator("#detail-title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#detail-panel")).to_be_hidden()
    expect(links.nth(1)).to_be_focused()  # back where the user was
    row = page.locator(f'#ranking tr[data-turbine="{DETAIL}"] a.turbine-link')
    row.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#detail-title")).to_have_text(f"Turbine {DETAIL}")
    expect(page.locator("#history-chart path.score-line")).to_have_count(1)

    # charts have a name that says what they show
    history = page.locator("#history-chart svg[role=img]")
    expect(history).to_have_attribute(
        "aria-label", re.compile(rf"Historique du risque de {DETAIL} .*score de .* à .*dernier score")
    )
    tele = page.locator("#telemetry-chart svg[role=img]").get_attribute("aria-label") or ""
    assert "Roulement multiplicateur" in tele and DETAIL in tele
    # the measurement chart's time labels are all different
    for chart in ("#history-chart", "#telemetry-chart"):
        ticks = page.locator(f"{chart} text.tick").all_text_contents()
        assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
    # whatever the window (an hour to a year), no two time labels are the same
    spans = page.evaluate(
        """() => [3600e3, 20 * 3600e3, 24 * 3600e3, 36 * 3600e3, 3 * 86400e3, 30 * 86400e3, 400 * 86400e3]
            .map((span) => { const t0 = Date.UTC(2026, 10, 1, 13, 7); return timeTicks(t0, t0 + span, 6)
            .map((tick) => tick.text); })"""
    )
    for labels in spans:
        assert len(labels) >= 2 and len(set(labels)) == len(labels), spans
    # with the detail open, the ranking's last column is not cut
    wrap = page.locator("#ranking-panel .table-wrap")
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth + 1"), wrap.evaluate(
        "w => [w.scrollWidth, w.clientWidth]"
    )
    last_header = page.locator("#ranking thead th").last
    assert last_header.evaluate(
        "th => th.getBoundingClientRect().right"
        " <= th.closest('.table-wrap').getBoundingClientRect().right + 1"
    )

    # "high + critical per day": the bars carry the real counts (API = an independent count of the rows)
    sup = httpx.get(f"{server}/v1/supervision?days=7", timeout=10).json()
    api_counts = {
        datetime.fromisoformat(d["day"]): d["counts"]["critical"] + d["counts"]["high"]
        for d in sup["high_critical_daily"]
    }
    assert api_counts == _daily_counts(page_db.writer_url)
    assert sum(api_counts.values()) > 0
    shown = [int(x) for x in page.locator("#daily-chart text.count").all_text_contents()]
    assert shown == list(api_counts.values())
    daily_label = page.locator("#daily-chart svg[role=img]").get_attribute("aria-label") or ""
    assert "Turbines élevées ou critiques par jour" in daily_label
    shot(page, "detail-fr.png")


def test_axe_no_serious_or_critical_violations(server: str, open_page: Callable[..., Any]) -> None:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    axe = Axe()
    summary: dict[str, Any] = {}
    bad: dict[str, list[str]] = {}
    for lang in ("fr", "en"):
        views = {
            "ranking": "/",
            "detail": f"/?turbine={DETAIL}",
            "planning": "/?view=planning",
        }
        for view, path in views.items():
            sep = "&" if "?" in path else "?"
            page = open_page(server, f"{path}{sep}lang={lang}")
            if view == "detail":
                expect(page.locator("#history-chart path.score-line")).to_have_count(1)
            expect(page.locator("html")).to_have_attribute("lang", lang)
            result = axe.run(page).response
            violations = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]]
            key = f"{view}-{lang}"
            summary[key] = {"violations": violations, "passes": len(result.get("passes", []))}
            bad[key] = [
                f"{i} ({impact}): {n}" for i, impact, n in violations if impact in ("serious", "critical")
            ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    assert not any(bad.values()), bad


# ------------------------------------------------------------------------------------------ planning API
def test_planning_api_refuses_bad_input_and_defuses_csv_formulas(server: str, page_db: PageDb) -> None:
    """Hostile queries get a 422 naming the field; a reason a spreadsheet would run as a formula is quoted."""
    for query, field in (
        ("days=0", "days"),
        ("days=31", "days"),
        ("days=abc", "days"),
        ("format=xml", "format"),
        ("downtime_hours=1e9", "downtime_hours"),
        ("downtime_hours=-1", "downtime_hours"),
        ("site=bad%20id!", "site"),
        ("site=%00", "site"),
    ):
        res = httpx.get(f"{server}/v1/planning?{query}", timeout=10)
        assert res.status_code == 422, (query, res.text)
        assert res.json()["detail"][0]["loc"][:2] == ["query", field], (query, res.text)
    assert httpx.get(f"{server}/v1/planning?site=NO-SUCH-SITE", timeout=10).json()["items"] == []
    one_day = httpx.get(f"{server}/v1/planning?days=1&downtime_hours=24", timeout=10).json()
    assert one_day["horizon_days"] == 1 and one_day["assumptions"]["downtime_hours"] == 24
    assert all(i["tier"] in ("critical", "high") or i["ttf_days"] <= 1 for i in one_day["items"])

    formula = '=HYPERLINK("http://evil.example","x")'
    target = expected_planning(page_db.seeded)[0]
    with psycopg.connect(page_db.writer_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE turbine_state SET reasons = %s::jsonb WHERE turbine_id = %s",
            (json.dumps([{"indicator": "x", "text": formula}]), target),
        )
    res = httpx.get(f"{server}/v1/planning?format=csv", timeout=10)
    assert res.headers["content-type"].startswith("text/csv")
    row = next(r for r in csv.DictReader(io.StringIO(res.text)) if r["turbine_id"] == target)
    assert row["reason"] == "'" + formula


def test_policy_file_problems_are_named() -> None:
    from types import SimpleNamespace

    from fastapi import HTTPException

    from api.routers.policy import load_config

    missing = Path("/nonexistent/policy.yaml")
    with pytest.raises(HTTPException) as info:
        load_config(SimpleNamespace(policy_path=missing))  # type: ignore[arg-type]
    assert info.value.status_code == 503 and str(missing) in info.value.detail


# ------------------------------------------------------------------------------------------ lineage
def test_page_shows_the_active_model_and_when_it_was_promoted(
    make_settings: Callable[..., ApiSettings],
    page_db: PageDb,
    open_page: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Supervision panel: the production model (GET /v1/models), its promotion time and calibration."""
    from playwright.sync_api import expect

    from models import registry as R
    from models.calibration_registry import POINTER, calibrations_dir

    reg = tmp_path / "registry"
    R.save_version(reg, {a: {"stub": a} for a in R.ARTIFACTS}, {"metrics": {}}, version="v20261129-035827")
    R.promote(reg, "v20261129-035827")
    (calibrations_dir(reg) / "c20261129-070000").mkdir(parents=True)
    (calibrations_dir(reg) / POINTER).write_text("c20261129-070000\n", encoding="utf-8")
    with LiveServer(make_settings(reader_database_url=page_db.reader_url, registry_dir=reg)) as live:
        page = open_page(live.url)
        line = page.locator("#active-model")
        expect(line).to_contain_text("Modèle actif")
        expect(line).to_contain_text("v20261129-035827")
        expect(line).to_contain_text(re.compile(r"promu il y a \d+"))
        expect(line).to_contain_text("calibrage c20261129-070000")
        page.locator("#lang-switch button[data-lang=en]").click()
        expect(line).to_contain_text(re.compile(r"Active model.*v20261129-035827 · promoted \d+"))
        shot(page, "active-model.png", full_page=False)
    # a registry the API cannot read: said in the panel, the rest of the page works
    with LiveServer(
        make_settings(reader_database_url=page_db.reader_url, registry_dir=tmp_path / "absent")
    ) as live:
        page = open_page(live.url)
        expect(page.locator("#active-model")).to_contain_text("Registre des modèles indisponible")
        expect(page.locator("#active-model")).to_contain_text(str(tmp_path / "absent"))
        expect(page.locator("#ranking tbody tr").first).to_be_visible()


# ------------------------------------------------------------------------------------------ interventions
def test_interventions_on_the_chart_the_detail_and_the_planning(
    server: str, page_db: PageDb, open_page: Callable[..., Any]
) -> None:
    """A recorded intervention: a marker with its label on the risk history, listed in the detail panel, and
    the planning view's "last intervention" column filled (issue 12, point 6)."""
    from playwright.sync_api import expect

    from tests.integration.api.conftest import API_KEY

    planning = httpx.get(f"{server}/v1/planning", timeout=10).json()["items"]
    target = planning[1]["turbine_id"]  # the planning test (earlier) expects no intervention on any row
    done_at = (page_db.seeded.now - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    for tid in dict.fromkeys((DETAIL, target)):
        res = httpx.post(
            f"{server}/v1/turbines/{tid}/interventions",
            headers={"X-API-Key": API_KEY},
            json={"kind": "done", "component": "gearbox", "finding": "no_fault_found",
                  "done_at": done_at.isoformat(), "notes": "inspection <b>ok</b>"},
            timeout=10,
        )
        assert res.status_code == 201, res.text
    page = open_page(server, f"/?turbine={DETAIL}")
    marker = page.locator("#history-chart g.intervention-marker")
    expect(marker).to_have_count(1)
    label = marker.get_attribute("aria-label") or ""
    assert label.startswith("Intervention : ") and "gearbox" in label and "aucun défaut trouvé" in label
    expect(marker.locator("title")).to_have_text(label)
    chart_label = page.locator("#history-chart svg").get_attribute("aria-label") or ""
    assert "1 intervention(s) : " in chart_label and "gearbox" in chart_label
    # the marker stands at done_at on the chart's time axis, inside the plotted area
    x = float(marker.locator("line").get_attribute("x1") or "nan")
    width = float((page.locator("#history-chart svg").get_attribute("viewBox") or "0 0 0 0").split()[2])
    assert 34 < x < width - 10
    items = page.locator("#interventions li")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("gearbox · aucun défaut trouvé")
    expect(items.first).to_contain_text("inspection <b>ok</b>")  # text, never markup
    assert page.locator("#interventions b").count() == 0
    expect(page.locator("#interventions-heading")).to_have_text("Interventions de maintenance")
    assert not serious_violations(page)
    shot(page, "intervention-marker.png", full_page=False)

    page = open_page(server, "/?view=planning&lang=en")
    cell = page.locator(f'#planning tr[data-turbine="{target}"] td.intervention')
    expect(cell).to_contain_text("gearbox · no fault found")
    other = next(i["turbine_id"] for i in planning if i["turbine_id"] not in (DETAIL, target))
    expect(page.locator(f'#planning tr[data-turbine="{other}"] td.intervention')).to_have_text("—")
    note = page.locator('p[data-i18n="planning.intervention_note"]')
    expect(note).to_contain_text("Last intervention recorded")


# ------------------------------------------------------------------------------------------ 3. live refresh
def test_live_refresh_keeps_the_users_place(
    server: str, page_db: PageDb, open_page: Callable[..., Any]
) -> None:
    """Last in the module: it changes the page's fleet (a new score for one turbine)."""
    from playwright.sync_api import expect

    page = open_page(server, f"/?turbine={DETAIL}", clock=True, height=600)
    moved = "WT-020"  # low today; a new score sends it to the top
    link = page.locator(f'#ranking tr[data-turbine="{moved}"] a.turbine-link')
    link.focus()
    page.evaluate("window.scrollTo(0, 260)")
    y = page.evaluate("window.scrollY")
    assert y > 0
    rescore(page_db.writer_url, moved, 99.5, 1.0)
    page.clock.run_for(REFRESH_MS + 1000)
    expect(page.locator("#ranking tbody tr").first).to_have_attribute("data-turbine", moved)
    expect(page.locator(f'#ranking tr[data-turbine="{moved}"] td.score')).to_have_text("99,5")
    expect(link).to_be_focused()  # the same turbine keeps the focus after the rows changed
    expect(page.locator("#detail-title")).to_have_text(f"Turbine {DETAIL}")  # the detail stays open
    assert abs(page.evaluate("window.scrollY") - y) <= 2
    page.clock.run_for(5000)
    expect(page.locator("#updated")).to_have_text(re.compile(r"mis\sà\sjour\sil\sy\sa\s\d+\ss"))
    shot(page, "live-refresh.png", full_page=False)
