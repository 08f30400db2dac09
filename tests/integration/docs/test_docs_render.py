"""`make docs` renders every French deliverable to HTML and PDF (docs/fr/README.md, "Rendu HTML et PDF").

Runs the real target once (pandoc and Chromium from Debian, mermaid-cli and marp-cli from npm, installed by
`make docs` itself when missing), then checks each output: the HTML has its title, its table of contents and
the diagrams embedded; every local link of the HTML resolves from docs/fr/_build/; each PDF is a real PDF
with pages. About 15-20 s once the npm tools are installed (their first install takes about a minute).
"""

from __future__ import annotations

import html as html_lib
import re
import subprocess
import time
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "docs" / "fr" / "_build"
DOCUMENTS = [
    "cadrage",
    "architecture",
    "pilotage",
    "guide-ci-cd",
    "procedures-incidents",
    "documentation-technique",
]
WITH_DIAGRAMS = {"architecture", "guide-ci-cd"}


@pytest.fixture(scope="module")
def built() -> Path:
    started = time.monotonic()
    done = subprocess.run(
        ["make", "docs"], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"make docs failed (exit {done.returncode}):\n{output[-4000:]}"
    assert "7 HTML, 7 PDF" in output, output[-2000:]
    print(f"make docs: {time.monotonic() - started:.1f} s")
    return OUT


def _pdf_pages(path: Path) -> int:
    """Page objects, including those packed in compressed object streams (Marp's PDF uses them)."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-"), f"{path.name} is not a PDF"
    parts = [data]
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, flags=re.S):
        try:
            parts.append(zlib.decompress(stream.group(1)))
        except zlib.error:
            continue
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", b"\n".join(parts)))


@pytest.mark.parametrize("name", DOCUMENTS)
def test_document_renders_to_html_and_pdf(built: Path, name: str) -> None:
    source = (ROOT / "docs" / "fr" / f"{name}.md").read_text(encoding="utf-8")
    title = next(line[2:].strip() for line in source.splitlines() if line.startswith("# "))
    html = (built / f"{name}.html").read_text(encoding="utf-8")
    assert '<h1 class="title">' in html, f"{name}.html has no title block"
    assert 'id="TOC"' in html, f"{name}.html has no table of contents"
    assert "text-align: justify" in html, f"{name}.html does not carry the stylesheet"
    shown = re.sub(r"<[^>]+>", "", html.split('<h1 class="title">', 1)[1].split("</h1>", 1)[0])
    assert " ".join(html_lib.unescape(shown).replace("\u2019", "'").split()) == title
    sections = len(re.findall(r"^## ", source, flags=re.M))
    assert html.count("<h1 ") - 1 >= sections, f"{name}.html lost sections"
    if name in WITH_DIAGRAMS:
        assert "data:image/svg+xml" in html, f"{name}.html does not embed its diagrams"
    pdf = built / f"{name}.pdf"
    assert pdf.stat().st_size > 20_000, f"{name}.pdf is only {pdf.stat().st_size} bytes"
    assert _pdf_pages(pdf) >= 2, f"{name}.pdf has fewer than 2 pages"


def test_html_links_resolve_from_the_build_directory(built: Path) -> None:
    """Every local link of the rendered HTML reaches a file, and an #anchor into a rendered page its id."""
    problems = []
    for html_file in sorted(built.glob("*.html")):
        for target, anchor in re.findall(
            r'href="([^"#]*)(?:#([^"]*))?"', html_file.read_text(encoding="utf-8")
        ):
            if re.match(r"^[a-z][\w+.-]*:", target):
                continue
            page = built / unquote(target) if target else html_file
            if not page.exists():
                problems.append(f"{html_file.name}: {target}")
            elif anchor and page.suffix == ".html":
                ids = set(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
                if unquote(anchor) not in ids:
                    problems.append(f"{html_file.name}: {target}#{anchor} (no such id in {page.name})")
    assert not problems, "links of the rendered HTML that resolve to nothing:\n" + "\n".join(problems)


def test_presentation_renders_to_slides(built: Path) -> None:
    source = (ROOT / "docs" / "fr" / "presentation.md").read_text(encoding="utf-8")
    slides = len(re.findall(r"^---\s*$", source, flags=re.M)) - 1  # front matter opens and closes once
    html = (built / "presentation.html").read_text(encoding="utf-8")
    assert html.count("<section") >= slides, "the Marp HTML has fewer slides than the source"
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", source):
        assert image in html, f"presentation.html does not show {image}"
        assert (built / image).exists(), f"{image} is not beside presentation.html"
    pages = _pdf_pages(built / "presentation.pdf")
    assert pages == slides, f"presentation.pdf has {pages} pages for {slides} slides"
