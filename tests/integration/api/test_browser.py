"""The web cockpit in headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser).

Loads the page from a live uvicorn on seeded data, filters by tier, opens a turbine, checks its history chart
and saves a screenshot to test-artifacts/cockpit.png.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.integration.api.conftest import ApiDb, HistDb, LiveServer
from tests.integration.api.seed import NOT_READY_PROBLEM

CHROMIUM = os.environ.get("COCKPIT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium"
    ),
]


def test_cockpit_page(live_api: str, api_db: ApiDb) -> None:
    from playwright.sync_api import expect, sync_playwright

    seeded = api_db.seeded
    critical = sorted(t for t, tier in seeded.tiers.items() if tier == "critical")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests_elsewhere: list[str] = []
            page.on(
                "request", lambda r: None if r.url.startswith(live_api) else requests_elsewhere.append(r.url)
            )
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(live_api + "/", wait_until="networkidle")

            rows = page.locator("#ranking tbody tr")
            expect(rows).to_have_count(len(seeded.turbines))
            expect(page.locator("#status-pill")).to_have_text("Opérationnel")  # French by default
            expect(page.locator("#checks .check.ok")).to_have_count(1)  # /readyz: the database serves reads

            page.locator('.chip[data-tier="critical"]').click()
            expect(rows).to_have_count(len(critical))
            assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.turbine)")) == critical
            expect(rows.first.locator(".tier")).to_have_text("Critique")

            page.locator('.chip[data-tier="high"]').click()  # critical + high
            expect(rows).to_have_count(sum(1 for t in seeded.tiers.values() if t in ("critical", "high")))

            target = seeded.telemetry_turbines[0]
            page.locator(f'#ranking tbody tr[data-turbine="{target}"]').click()
            expect(page.locator("#detail-panel")).to_be_visible()
            expect(page.locator("#detail-title")).to_have_text(f"Turbine {target}")
            expect(page.locator("#history-chart path.score-line")).to_have_count(1)
            assert page.locator("#history-chart circle").count() > 20
            expect(page.locator("#reasons li")).to_have_count(4)
            expect(page.locator("#measurements tbody tr")).to_have_count(6)
            expect(page.locator("#daily-chart rect").first).to_be_visible()

            page.locator('th[data-sort="ttf"] button').click()  # sorting by TTF re-queries the API
            expect(page.locator('th[data-sort="ttf"]')).to_have_class(re.compile(r"\bsorted asc\b"))

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "cockpit.png"), full_page=True)
            assert not errors, errors
            assert not requests_elsewhere, requests_elsewhere
        finally:
            browser.close()


def test_historical_fleet_page(make_settings, hist_db: HistDb) -> None:  # type: ignore[no-untyped-def]
    """Historical fleet: one banner (rows not greyed), one assessment in the detail, a chart broken at its
    gap, and the scorer's own reason in the pill."""
    from playwright.sync_api import expect, sync_playwright

    fleet = hist_db.fleet
    with (
        LiveServer(make_settings(reader_database_url=hist_db.reader_url)) as server,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/", wait_until="networkidle")

            rows = page.locator("#ranking tbody tr")
            expect(rows).to_have_count(len(fleet.seeded.turbines))
            banner = page.locator("#data-banner")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("Données historiques : classement au 2 mars 2024, 14:09 UTC")
            expect(page.locator("#ranking tbody tr.stale")).to_have_count(len(fleet.seeded.stale))
            expect(
                page.locator(f'#ranking tbody tr[data-turbine="{fleet.gap_turbine}"] td').last
            ).to_contain_text("2 mars 2024, 14:09 UTC")
            expect(page.locator("#status-pill")).to_have_text(f"Scoreur : not ready: {NOT_READY_PROBLEM}")
            expect(page.locator("#status-pill")).to_have_class(re.compile(r"\bbad\b"))
            expect(page.locator("#problems li").first).to_have_text(f"scorer: not ready: {NOT_READY_PROBLEM}")

            page.locator(f'#ranking tbody tr[data-turbine="{fleet.sweep_turbine}"]').click()
            summary = page.locator("#detail-summary")
            expect(summary).to_contain_text("balayage · 2 mars 2024, 14:09 UTC")
            expect(summary.locator(".assessment-score")).to_have_count(1)
            expect(summary.locator(".assessment-score")).to_have_text(
                f"{fleet.seeded.scored[fleet.sweep_turbine]:.1f}".replace(".", ",")  # French decimal comma
            )
            assert summary.inner_text().count("Score") == 1  # no second, contradicting score

            page.locator(f'#ranking tbody tr[data-turbine="{fleet.gap_turbine}"]').click()
            expect(page.locator("#detail-title")).to_have_text(f"Turbine {fleet.gap_turbine}")
            expect(summary).to_contain_text("flux ·")
            line = page.locator("#history-chart path.score-line")
            expect(line).to_have_count(1)
            page.wait_for_function(
                "() => (document.querySelector('#history-chart path.score-line')?.getAttribute('d') || '')"
                ".split('M').length - 1 === 2"
            )  # two segments: the line stops at the gap and starts again after it
            expect(page.locator("#history-chart rect.gap")).to_have_count(1)
            expect(page.locator("#telemetry-chart rect.gap")).to_have_count(1)
            d = line.get_attribute("d") or ""
            assert d.count("M") == 2 and d.count("L") > 40, d[:200]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "cockpit-historical.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
