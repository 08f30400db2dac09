"""The web cockpit in headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser).

Loads the page from a live uvicorn on seeded data, filters by tier, opens a turbine, checks its history chart
and saves a screenshot to test-artifacts/cockpit.png.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.integration.api.conftest import ApiDb

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
            expect(page.locator("#status-pill")).to_have_text("Opérationnel / Ready")
            expect(page.locator("#checks .check.ok")).to_have_count(4)

            page.locator('.chip[data-tier="critical"]').click()
            expect(rows).to_have_count(len(critical))
            assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.turbine)")) == critical
            expect(rows.first.locator(".tier")).to_have_text("Critique / Critical")

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

            page.locator('th[data-sort="ttf"]').click()  # sorting by TTF re-queries the API
            expect(page.locator('th[data-sort="ttf"]')).to_have_class(re.compile(r"\bsorted asc\b"))

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "cockpit.png"), full_page=True)
            assert not errors, errors
            assert not requests_elsewhere, requests_elsewhere
        finally:
            browser.close()
