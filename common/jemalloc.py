"""jemalloc for a long-lived worker: where the library is, whether it runs in this process, and the
environment that makes a process start under it (``LD_PRELOAD``).

Why: the scorer's batches allocate tens of MB of short-lived Python objects (records, decoded events,
rows to write) among the few that outlive them (a new turbine's state, a replaced float). CPython's
small-object allocator gives a 1 MiB arena back only when every object in it is dead, and glibc's
heaps give pages back only around live chunks: after a batch, a handful of survivors kept most of its
arenas resident (docs/performance.md, "Memory": ~8 KB per turbine at 10,000 turbines, half the
window store's own size). jemalloc serves each size class from small slabs, the lowest-address free
slot first, and returns unused pages to the kernel after ``dirty_decay_ms``; with CPython's objects
sent to it too (``PYTHONMALLOC=malloc``), what a batch freed goes back instead of staying resident.

A library preloaded must be named before the process starts: the worker's CLI re-executes itself
once with :func:`preload_environment` (same PID, same arguments) when jemalloc is found and not yet
loaded. Nothing here reads the environment or the file system at import time.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from pathlib import Path

#: Where Debian / Ubuntu (libjemalloc2, any architecture), Fedora / RHEL and source builds put it.
SEARCH_PATTERNS = (
    "/usr/lib/*-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)


def find_library(explicit: Path | None = None) -> tuple[Path | None, list[str]]:
    """(the library, every place looked at): ``explicit`` alone when given, else :data:`SEARCH_PATTERNS`."""
    if explicit is not None:
        return (explicit if explicit.is_file() else None), [str(explicit)]
    for pattern in SEARCH_PATTERNS:
        for hit in sorted(glob.glob(pattern)):
            if Path(hit).is_file():
                return Path(hit), list(SEARCH_PATTERNS)
    return None, list(SEARCH_PATTERNS)


def loaded(maps: Path = Path("/proc/self/maps")) -> str | None:
    """Path of the jemalloc library mapped into this process, or None (not loaded, or no /proc)."""
    try:
        text = maps.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split(maxsplit=5)  # address perms offset dev inode [path]
        if len(parts) == 6 and Path(parts[5].strip()).name.startswith("libjemalloc"):
            return parts[5].strip()
    return None


def preload_environment(env: Mapping[str, str], library: Path, conf: str) -> dict[str, str]:
    """``env`` plus what makes a new process run under ``library``: first in ``LD_PRELOAD``, CPython's
    objects through it too (``PYTHONMALLOC=malloc``) and its tuning (``MALLOC_CONF``)."""
    out = dict(env)
    others = [p for p in out.get("LD_PRELOAD", "").replace(":", " ").split() if p != str(library)]
    out["LD_PRELOAD"] = " ".join([str(library), *others])
    out["PYTHONMALLOC"] = "malloc"
    if conf:
        out["MALLOC_CONF"] = conf
    return out


__all__ = ["SEARCH_PATTERNS", "find_library", "loaded", "preload_environment"]
