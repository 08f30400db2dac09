"""Progress while running and the summary at the end.

Why a background thread: the publish loop never formats or prints anything; a reporter reads the
counters every refresh, draws a rich progress line on a TTY (stderr) or writes a JSON log line
otherwise (containers, CI), and advances the Prometheus counters.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.logging import event
from producers.metrics import ProducerMetrics
from producers.publisher import RunStats

log = logging.getLogger(__name__)


class Reporter:
    """Periodic progress (rich on a TTY, JSON lines otherwise) + metrics refresh; a context manager."""

    def __init__(
        self,
        stats: RunStats,
        *,
        interval_s: float = 10.0,
        metrics: ProducerMetrics | None = None,
        tty: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.stats = stats
        self.metrics = metrics
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval_s = 0.5 if self.tty else interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="producer-progress", daemon=True)
        self._last = (time.monotonic(), 0)
        self._rate = 0.0
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> Reporter:
        if self.tty:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn(
                    "{task.fields[rate]:>10,.0f} ev/s  failed {task.fields[failed]}"
                    "  rejected {task.fields[rejected]}"
                ),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self.stats.mode,
                total=self.stats.total,
                rate=0.0,
                failed=0,
                rejected=0,
            )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.refresh(final=True)
        if self._progress is not None:
            self._progress.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.refresh()

    def refresh(self, final: bool = False) -> None:
        stats = self.stats
        now = time.monotonic()
        then, sent_then = self._last
        if now - then > 0.05:
            self._rate = (stats.sent - sent_then) / (now - then)
            self._last = (now, stats.sent)
        rate = stats.rate if final else self._rate
        rejected = sum(stats.rejected.values())
        if self.metrics is not None:
            self.metrics.update(stats.sent, stats.failed, dict(stats.rejected), rate, stats.pending)
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=stats.sent,
                total=stats.total,
                rate=rate,
                failed=stats.failed,
                rejected=rejected,
            )
        elif not final:
            event(
                log,
                "progress",
                mode=stats.mode,
                topic=stats.topic,
                sent=stats.sent,
                pending=stats.pending,
                failed=stats.failed,
                rejected=rejected,
                events_per_s=round(rate, 1),
                total=stats.total,
                elapsed_s=round(stats.elapsed, 1),
            )


def print_summary(stats: RunStats, stream: TextIO | None = None) -> dict[str, Any]:
    """Log the summary as one JSON line and print a human table (stdout); returns the summary dict."""
    summary = stats.summary()
    event(log, "summary", **summary)
    table = Table(title=f"producer summary: {stats.mode} -> {stats.topic}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("sent (acknowledged)", f"{stats.sent:,}")
    table.add_row("failed", f"{stats.failed:,}")
    if stats.accepted != stats.sent + stats.failed or not stats.sent:
        table.add_row("accepted (mapped)", f"{stats.accepted:,}")
    if stats.rows_read:
        table.add_row("rows read", f"{stats.rows_read:,}")
    table.add_row("rejected rows", f"{sum(stats.rejected.values()):,}")
    for reason, count in stats.rejected.most_common(5):
        example = (stats.reject_examples.get(reason) or [""])[0]
        table.add_row(f"  {reason}", f"{count:,}  e.g. {example}" if example else f"{count:,}")
    for error, count in stats.errors.most_common(5):
        table.add_row(f"  error: {error}", f"{count:,}")
    table.add_row("elapsed", f"{summary['elapsed_s']:.2f} s")
    table.add_row("rate", f"{summary['events_per_s']:,.0f} events/s ({summary['mb_per_s']} MB/s)")
    table.add_row("stopped by", stats.stopped_by or ("end of input" if stats.complete else "-"))
    Console(file=stream or sys.stdout, width=120).print(table)
    return summary
