"""Read the commands a new user is told to run: the README's fenced block and bullets, and the run banner.

Why a module of its own: the acceptance test must run the README's words, not a copy of them kept in the
test; a fast unit test (tests/unit/test_acceptance_readme.py) checks that the parsing still finds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`([^`]+)`")
# "Cockpit is running" / "Cockpit is ready (start-up 42 s: ...)": the banner's fields follow this line.
BANNER_TITLE = re.compile(r"^[ \t]*Cockpit is (running|ready)\b.*$", re.MULTILINE)
# A turbine id as people write them (WT-003, R-WT-003, SITE-B/WT-01): a letter first, ends with "-<digits>".
TURBINE_ID = re.compile(r"(?<![\w.:/-])([A-Za-z][A-Za-z0-9._:-]*-\d+)(?![\w-])")
TURBINE_PATH = re.compile(r"/v1/turbines/([A-Za-z0-9][A-Za-z0-9._:/-]{0,63})")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


class ReadmeError(ValueError):
    """The README no longer says what a new user should run, in a form this test can find."""


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def fenced_blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in FENCE.finditer(markdown)]


def _command_of(line: str) -> str:
    """``make run    # explanation`` -> ``make run`` (a ``#`` preceded by a space starts a comment)."""
    return re.split(r"\s+#", line, maxsplit=1)[0].strip()


def run_command(markdown: str) -> str:
    """The run command line of the README's first fenced block (the line that starts with ``make run``)."""
    blocks = fenced_blocks(markdown)
    if not blocks:
        raise ReadmeError("README.md has no fenced code block; the first one must hold the run command")
    for line in blocks[0].splitlines():
        command = _command_of(line)
        if re.match(r"make\s+run(\s|$)", command):
            return command
    raise ReadmeError(f"the first fenced block of README.md has no `make run` line:\n{blocks[0]}")


def bullet(markdown: str, label: str) -> str:
    """The whole list item (continuation lines joined) whose text starts with ``label``."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\s*[-*]\s+{re.escape(label)}", line):
            parts = [line.strip()[1:].strip()]
            for nxt in lines[i + 1 :]:
                if not nxt.strip() or re.match(r"\s*([-*]\s|#)", nxt):
                    break
                parts.append(nxt.strip())
            return " ".join(parts)
    raise ReadmeError(f"README.md has no list item starting with {label!r}")


def replay_command(markdown: str) -> str:
    """The incident replay command: the first code span of the "Replay an incident" item that publishes."""
    item = bullet(markdown, "Replay an incident")
    for span in CODE_SPAN.findall(item):
        if "producers" in span and "scenario " in span:
            return span.strip()
    raise ReadmeError(f"the 'Replay an incident' item names no `... producers scenario ...` command: {item}")


def turbine_ids(text: str) -> list[str]:
    """Turbine ids mentioned in a text, in order of appearance, without duplicates."""
    found = [m.group(1) for m in TURBINE_PATH.finditer(text)]
    found += [m.group(1) for m in TURBINE_ID.finditer(text)]
    return list(dict.fromkeys(t.rstrip(".,;:)") for t in found))


def incident_ids(text: str) -> list[str]:
    """The incident's turbine ids in a replay's output or the README's replay item.

    Preference: ids in a turbine URL (``/v1/turbines/R-WT-003``), then ids on lines that say "incident",
    then every id; so a fleet range (``R-WT-001 .. R-WT-020``) is not mistaken for the incident.
    """
    in_urls = list(dict.fromkeys(m.group(1).rstrip(".,;:)") for m in TURBINE_PATH.finditer(text)))
    if in_urls:
        return in_urls
    lines = [ln for ln in text.splitlines() if "incident" in ln.lower()]
    return turbine_ids("\n".join(lines)) if lines else turbine_ids(text)


@dataclass(frozen=True)
class Banner:
    """What ``make run`` prints once the cockpit is up: ``label  value`` lines after the title."""

    fields: dict[str, str] = field(default_factory=dict)

    def get(self, *labels: str) -> str | None:
        for label in labels:
            for key, value in self.fields.items():
                if key.lower() == label.lower():
                    return value
        return None

    def topics(self) -> list[str]:
        """Topic names in the Kafka line: ``127.0.0.1:9092 (topics a, b, c)`` or ``...; topics a, b, c``."""
        value = self.get("Kafka") or ""
        m = re.search(r"\btopics?:?\s+([^)]*)", value)
        return [t.strip() for t in re.split(r"[,\s]+", m.group(1)) if t.strip()] if m else []

    def kafka_address(self) -> str | None:
        m = re.match(r"\s*(\S+:\d+)", self.get("Kafka") or "")
        return m.group(1) if m else None

    def sweep_command(self) -> str | None:
        value = self.get("sweep now", "sweep")
        if value and "cockpit sweep" in value:
            return value.split("cockpit sweep", 1)[0] + "cockpit sweep"
        return None


def parse_banner(output: str) -> Banner | None:
    """The banner of a ``make run`` output, or None when the output has no banner."""
    title = BANNER_TITLE.search(strip_ansi(output))
    if title is None:
        return None
    fields: dict[str, str] = {"title": title.group(0).strip()}
    for line in strip_ansi(output)[title.end() :].splitlines()[1:]:
        if not line.strip():
            if len(fields) > 1:
                break
            continue
        m = re.match(r"^\s+(\S.*?)\s{2,}(\S.*)$", line)
        if m:
            fields.setdefault(m.group(1).strip(), m.group(2).strip())
    return Banner(fields)


def sweep_run_id(output: str) -> str | None:
    m = UUID.search(strip_ansi(output))
    return m.group(0) if m else None
