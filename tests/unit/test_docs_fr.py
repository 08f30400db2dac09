"""The documentation stays true to the repository (docs/fr/README.md, "Convention des chiffres").

- every internal link of docs/**/*.md and README.md resolves: the file, and the #anchor among the target's
  headings (GitHub / GitLab slugs, which `make docs` also uses: pandoc's gfm_auto_identifiers);
- every command the French deliverables quote exists: make targets in the Makefile, `python -m <pkg> <cmd>`
  subcommands in the package's --help, `cockpit <cmd>` in the CLI's --help, script and repository paths;
- every measured figure of the French deliverables (a duration, a percentage, a rate, a size, a decimal
  written the French way) has, in the same table row, paragraph or list item, the command that
  reproduces it: "(mesuré : `cmd`)" or "(source : `file or cmd`)", or a table column "Mesuré par" /
  "Source" / "Vérifié par" whose cell names it.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FR = ROOT / "docs" / "fr"
SKIP_DIRS = {"node_modules", "_build"}

# ---------------------------------------------------------------------------------------------- markdown


def _docs() -> list[Path]:
    found = [p for p in (ROOT / "docs").rglob("*.md") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return [*sorted(found), ROOT / "README.md"]


def _fr_docs() -> list[Path]:
    return sorted(p for p in FR.glob("*.md"))


FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_COMMENT = re.compile(r"<!--.*?-->")


@dataclass
class Line:
    number: int
    text: str
    in_code: bool


def _lines(path: Path) -> list[Line]:
    out: list[Line] = []
    in_code = False
    fence = ""
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(text)
        if match and (not in_code or match.group(1) == fence):
            in_code = not in_code
            fence = match.group(1)
            out.append(Line(number, text, True))
            continue
        out.append(Line(number, text, in_code))
    return out


def slugify(heading: str) -> str:
    """GitHub/GitLab heading anchor (pandoc's gfm_auto_identifiers gives the same)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in _lines(path):
        match = HEADING.match(line.text)
        if line.in_code or not match:
            continue
        base = slugify(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return frozenset(out)


def _links(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for line in _lines(path):
        if line.in_code:
            continue
        text = INLINE_CODE.sub("", HTML_COMMENT.sub("", line.text))
        out.extend((line.number, m.group(1)) for m in LINK.finditer(text))
    return out


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in _links(path):
        if re.match(r"^[a-zA-Z][\w+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            shown = resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved
            problems.append(f"{where}: no such file {shown}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading with anchor #{anchor} in {resolved.relative_to(ROOT)}")
    return problems


def test_slugify_matches_github() -> None:
    assert slugify("6.3 Objectifs techniques") == "63-objectifs-techniques"
    assert slugify("Fleet register (`common.fleet`, `python -m common fleet`)") == (
        "fleet-register-commonfleet-python--m-common-fleet"
    )
    assert slugify("Why 1.5 days is out of reach here") == "why-15-days-is-out-of-reach-here"
    assert slugify("Procédure d'incident : l'API") == "procédure-dincident--lapi"


@pytest.mark.parametrize("path", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_internal_links_resolve(path: Path) -> None:
    problems = broken_links(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------- commands

PACKAGES = {p.parent.name for p in ROOT.glob("*/__main__.py")}
RUNTIME_PATHS = (
    "registry/",
    "test-artifacts/",
    ".stack/",
    "var/",
    "data/",
    "docs/fr/_build/",
    "docs/fr/build/node_modules",  # installed by `make docs` (npm ci), git-ignored
)
REPO_PATH = re.compile(
    r"^(?:\./)?(?:deploy|docs|bench|tests|models|common|api|scorer|producers|simulator|\.ci)/[\w./-]+$"
    r"|^(?:Makefile|\.gitlab-ci\.yml|docker-compose\.yml|pyproject\.toml|requirements(?:-prod)?\.lock|README\.md)$"
)
PLACEHOLDER = re.compile(r"[*<>{}…]|\.\.\.")


@functools.cache
def make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^([A-Za-z0-9_.-]+):", text, flags=re.M))


def _help_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", OMP_NUM_THREADS="1")
    return env


@functools.cache
def help_text(*argv: str) -> str:
    done = subprocess.run(
        argv, cwd=ROOT, env=_help_env(), capture_output=True, text=True, timeout=120, check=False
    )
    return done.stdout + done.stderr


def _python_module_help(package: str) -> str:
    return help_text(sys.executable, "-m", package, "--help")


def _cockpit_help() -> str:
    return help_text(sys.executable, "-c", "from api.cli import main; main()", "--help")


def _options_problem(program: list[str], args: list[str]) -> str | None:
    """Each --option quoted after a (sub)command is listed by that (sub)command's --help."""
    path: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            break
        path.append(arg)
    options = [a.split("=")[0] for a in args if a.startswith("--") and a != "--help"]
    if not options or not path:
        return None
    helped = help_text(*program, *path, "--help")
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", helped)]
    return f"{' '.join(path)}: no option {missing} in its --help" if missing else None


def command_problem(command: str) -> str | None:
    """None when `command` (as quoted in the docs) exists in this repository, else what is wrong."""
    words = command.strip().split()
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words:
        return None
    head = words[0].removeprefix(".venv/bin/")
    args = [
        a for a in words[1:] if not PLACEHOLDER.search(a)
    ]  # "python -m models …": a family, not a command
    if head == "make":
        target = next((a for a in args if not a.startswith("-") and "=" not in a), None)
        if target is not None and target not in make_targets():
            return f"no make target {target!r} in the Makefile"
        return None
    if head in {"python", "python3"}:
        if args[:1] == ["-m"] and len(args) > 1:
            module = args[1]
            package = module.split(".")[0]
            if module.count(".") and not (ROOT / (module.replace(".", "/") + ".py")).exists():
                return f"no module {module}"
            if not module.count(".") and package not in PACKAGES:
                return f"no package {package!r} with a __main__ (known: {sorted(PACKAGES)})"
            sub = next((a for a in args[2:3] if not a.startswith("-")), None)
            if sub and not module.count("."):
                helped = _python_module_help(package)
                if not re.search(rf"(?<![\w-]){re.escape(sub)}(?![\w-])", helped):
                    return f"python -m {package} has no command {sub!r} (its --help does not list it)"
                return _options_problem([sys.executable, "-m", package], args[2:])
            return None
        if args and args[0].endswith(".py"):
            return None if (ROOT / args[0]).exists() else f"no script {args[0]}"
        return None
    if head in {"pytest", "bash"}:
        paths = [a.split("::")[0] for a in args if not a.startswith("-") and "/" in a]
        missing = [p for p in paths if not PLACEHOLDER.search(p) and not (ROOT / p).exists()]
        return f"no such path {missing}" if missing else None
    if head == "cockpit":
        sub = next((a for a in args if not a.startswith("-")), None)
        if sub and not re.search(rf"(?<![\w-]){re.escape(sub)}(?![\w-])", _cockpit_help()):
            return f"cockpit has no command {sub!r}"
        if sub:
            return _options_problem([sys.executable, "-c", "from api.cli import main; main()"], args)
        return None
    if REPO_PATH.match(head) and len(words) == 1:
        if head.startswith(RUNTIME_PATHS) or PLACEHOLDER.search(head):
            return None
        return None if (ROOT / head).exists() else f"no such path {head}"
    if head.startswith(("./", ".ci/", "deploy/", "bench/")) and head.endswith((".py", ".sh", "run")):
        return None if (ROOT / head).exists() else f"no such script {head}"
    return None


def quoted_commands(path: Path) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    lines = _lines(path)
    for line in lines:
        if line.in_code:
            if not FENCE.match(line.text) and line.text.strip() and not line.text.lstrip().startswith("#"):
                out.append((line.number, line.text.split(" #")[0]))
            continue
        for match in INLINE_CODE.finditer(HTML_COMMENT.sub("", line.text)):
            out.append((line.number, match.group(2)))
    # a span may hold several commands chained with && or ;
    split: list[tuple[int, str]] = []
    for number, text in out:
        split.extend((number, part) for part in re.split(r"&&|;|\|\|", text) if part.strip())
    return split


def test_command_check_catches_wrong_commands() -> None:
    assert command_problem("make docs") is None
    assert command_problem("make no-such-target") is not None
    assert command_problem(".venv/bin/python -m models list --registry registry") is None
    assert command_problem("python -m models no-such-command") is not None
    assert command_problem("python -m nosuchpkg run") is not None
    assert command_problem(".venv/bin/pytest tests/unit/no_such_test.py") is not None
    assert command_problem("deploy/drills/no_such_drill.py") is not None
    assert command_problem("cockpit top --tier critical,high") is None
    assert command_problem("cockpit top --no-such-option") is not None
    assert command_problem("python -m models list --registry registry --json") is None
    assert command_problem("python -m models list --no-such-option") is not None


@pytest.mark.parametrize("path", _fr_docs(), ids=lambda p: p.name)
def test_quoted_commands_exist(path: Path) -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{number}: `{command.strip()}`: {problem}"
        for number, command in quoted_commands(path)
        if (problem := command_problem(command))
    ]
    assert not problems, "commands that do not exist:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------- figures

UNITS = r"(?:ms|µs|us|s|min|h|%|Ko|Mo|Go|KB|MB|GB|kWh|MWh|req/s|relevés/s|lignes/s|rows/s|events/s)"
NUMBER = r"(?<![\w.,/+-])\d{1,3}(?:[\u202f\u00a0 ]\d{3})*(?:[.,]\d+)?"
FIGURE = re.compile(rf"{NUMBER}\s?{UNITS}(?![\w/])|(?<![\w.,/-])\d+,\d+(?![\d\w])")
MARKER = re.compile(r"(?:mesuré|source)\s*:\s*[^`]*`[^`]+`", re.I)
MARKER_COLUMN = re.compile(r"^\s*(?:mesuré par|source|vérifié par)\s*$", re.I)
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


@dataclass
class Block:
    line: int
    text: str
    marker_cell: str | None = None  # table rows: the cell of a "Mesuré par" column


def blocks(path: Path) -> list[Block]:
    """Paragraphs, list items and table rows (figures and their command share one of these)."""
    out: list[Block] = []
    current: Block | None = None
    header: list[str] | None = None
    lines = _lines(path)
    start = 0
    if lines and lines[0].text.strip() == "---":  # Marp front matter
        start = next((i + 1 for i, ln in enumerate(lines[1:], 1) if ln.text.strip() == "---"), 0)

    def flush() -> None:
        nonlocal current
        if current is not None:
            out.append(current)
        current = None

    for index in range(start, len(lines)):
        line = lines[index]
        text = HTML_COMMENT.sub("", line.text)
        stripped = text.strip()
        if line.in_code or not stripped or stripped == "---" or HEADING.match(text):
            flush()
            if not stripped.startswith("|"):
                header = None
            continue
        if stripped.startswith("|"):
            flush()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
                continue
            if header is None:
                header = cells
                out.append(Block(line.number, stripped))
                continue
            columns = [i for i, h in enumerate(header) if MARKER_COLUMN.match(h)]
            cell = " ".join(cells[i] for i in columns if i < len(cells)) or None
            out.append(Block(line.number, stripped, cell))
            continue
        header = None
        if LIST_ITEM.match(text) or current is None:
            flush()
            current = Block(line.number, stripped)
        else:
            current.text += " " + stripped
    flush()
    return out


def figures(text: str) -> list[str]:
    bare = INLINE_CODE.sub(" ", text)
    bare = re.sub(r"\]\([^)]*\)", "]", bare)  # link targets
    return [m.group(0) for m in FIGURE.finditer(bare)]


def has_marker(block: Block) -> bool:
    if MARKER.search(block.text):
        return True
    return bool(block.marker_cell and INLINE_CODE.search(block.marker_cell))


def test_figure_check_catches_unsourced_figures() -> None:
    assert figures("p99 18,6 ms et 5 764 relevés/s, 14 % ; PR-AUC 0,850") == [
        "18,6 ms",
        "5 764 relevés/s",
        "14 %",
        "0,850",
    ]
    assert figures("Kafka 4.3.1, Python 3.11, `sleep 5 s`, 20 éoliennes, R-WT-003, x600, v2") == []
    assert has_marker(Block(1, "0,53 s (mesuré : `python -m api smoke`)"))
    assert has_marker(Block(1, "80 (source : `models/config/policy.yaml`)"))
    assert not has_marker(Block(1, "0,53 s selon la doc"))


@pytest.mark.parametrize("path", _fr_docs(), ids=lambda p: p.name)
def test_every_figure_names_its_command(path: Path) -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{block.line}: {', '.join(found)} without its command: {block.text[:120]}"
        for block in blocks(path)
        if (found := figures(block.text)) and not has_marker(block)
    ]
    assert not problems, (
        "figures without the command that reproduces them (add '(mesuré : `cmd`)' or "
        "'(source : `file`)' to the row, paragraph or list item):\n" + "\n".join(problems)
    )


def test_every_deliverable_exists() -> None:
    names = {p.stem for p in _fr_docs()}
    expected = {
        "cadrage",
        "architecture",
        "pilotage",
        "guide-ci-cd",
        "procedures-incidents",
        "documentation-technique",
        "presentation",
    }
    assert expected <= names, f"missing deliverables: {sorted(expected - names)}"
    for mmd in (FR / "diagrams").glob("*.mmd"):
        assert mmd.with_suffix(".svg").exists(), f"{mmd.name} has no rendered SVG (run make docs)"
