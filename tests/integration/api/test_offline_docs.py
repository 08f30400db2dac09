"""/docs (Swagger UI) and /redoc render offline: every asset comes from the API itself, none from a CDN.

Why: the cockpit runs on networks without internet access; FastAPI's default docs pages load their
JavaScript from a CDN and stay blank there. Headless Chromium loads each page, waits until the
operations are rendered, and records every request the page makes: all must go to 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.settings import ApiSettings
from tests.integration.api.conftest import LiveServer
from tests.integration.api.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium"
    ),
]

HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


@pytest.fixture(scope="module")
def docs_api(make_settings: Callable[..., ApiSettings]) -> Iterator[str]:
    with LiveServer(make_settings(ensure_topics_on_start=False)) as server:
        yield server.url


def _operations(base: str) -> list[tuple[str, str]]:
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    ]


def test_docs_html_references_only_local_assets(docs_api: str) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(docs_api + page, timeout=10).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert urls, f"{page} references no asset at all"
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            assert httpx.get(docs_api + url, timeout=10).status_code == 200, url
        assert "cdn." not in html and "fonts.googleapis" not in html


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
def test_docs_render_operations_without_leaving_localhost(docs_api: str, page_path: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    operations = _operations(docs_api)
    assert len(operations) >= 8
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requested: list[str] = []
            page.on("request", lambda r: requested.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(docs_api + page_path, wait_until="networkidle")

            if page_path == "/docs":
                blocks = page.locator(".swagger-ui .opblock")
                expect(blocks).to_have_count(len(operations), timeout=20_000)
                shown = page.locator(".opblock-summary-path").all_inner_texts()
                assert {p.replace("\u200b", "") for p in shown} == {path for _, path in operations}
            else:
                # ReDoc gives every operation an anchor id ending in "operation/<operationId>".
                ops = page.locator("[id*='operation/']")
                expect(ops.first).to_be_attached(timeout=20_000)
                spec = httpx.get(f"{docs_api}/openapi.json", timeout=10).json()
                op_ids = {
                    item["operationId"]
                    for path_item in spec["paths"].values()
                    for method, item in path_item.items()
                    if method in HTTP_METHODS
                }
                ids = set(ops.evaluate_all("els => els.map(e => e.id)"))
                rendered = {i.rsplit("operation/", 1)[-1] for i in ids}
                assert op_ids <= rendered, op_ids - rendered
                expect(page.get_by_text("Wind fleet cockpit API").first).to_be_visible()
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    assert not errors, errors
    assert requested, "the page made no request at all"
    elsewhere = [
        url for url in requested if not (url.startswith(docs_api + "/") or url.startswith(("data:", "blob:")))
    ]
    assert elsewhere == [], f"{page_path} requested outside the API: {elsewhere}"
