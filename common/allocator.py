"""glibc's allocator in a long-lived worker: tuning at start (``mallopt``), giving freed memory back
(``malloc_trim``), and its counters (``mallinfo2``).

Why: the scorer's batches allocate and free tens of MB of short-lived buffers (Kafka records, decoded
events, numpy temporaries) between long-lived ones (windows, per-turbine state). glibc keeps what a
batch freed inside its heaps, scattered between live chunks, so the worker's RSS grows far beyond
what it holds (measured in docs/performance.md, "Memory"): ``malloc_trim(0)`` returns the free pages
inside the heaps to the kernel; a fixed ``M_MMAP_THRESHOLD`` stops glibc from raising its dynamic
threshold after a big array is freed (later big temporaries then come from ``mmap`` and go back to
the kernel when freed instead of fragmenting the heap); ``M_ARENA_MAX`` bounds how many heaps the
worker's threads spread their garbage over.

Only glibc has these calls: on another C library (musl, macOS) every function here is a clear no-op
that says so (:attr:`AllocatorReport.supported` is False, :func:`trim` returns None). No work at
import time: the C library is looked up on the first call.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: mallopt parameters (glibc malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: glibc's upper bound of M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE / 2, DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD_MAX = 32 << 20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@dataclass(frozen=True)
class MallocStats:
    """``mallinfo2()`` in bytes: what glibc's heaps hold (all arenas)."""

    heap_bytes: int  # arena: bytes obtained from the kernel for the heaps (sbrk + arena mmaps)
    in_use_bytes: int  # uordblks: allocated chunks inside the heaps
    free_bytes: int  # fordblks: free chunks inside the heaps (what malloc_trim can partly return)
    mmapped_bytes: int  # hblkhd: chunks served by their own mmap (returned on free)
    mmapped_chunks: int  # hblks
    top_free_bytes: int  # keepcost: free bytes at the top of the main heap (M_TRIM_THRESHOLD's part)


@dataclass(frozen=True)
class AllocatorReport:
    """What :func:`configure` did: the C library, and each mallopt parameter set (name -> value)."""

    supported: bool
    libc: str
    applied: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def as_log(self) -> dict[str, Any]:
        return {"libc": self.libc, "supported": self.supported, **self.applied, "failed": self.failed or None}


_lock = threading.Lock()
_glibc: ctypes.CDLL | None = None
_looked_up = False
_libc_name = "unknown"


def _load() -> ctypes.CDLL | None:
    """The process's glibc (None on another C library); looked up once."""
    global _glibc, _looked_up, _libc_name
    with _lock:
        if not _looked_up:
            _looked_up = True
            _glibc, _libc_name = _find_glibc(ctypes.CDLL)
    return _glibc


def _find_glibc(loader: Callable[[str | None], Any]) -> tuple[Any, str]:
    """(library, description) when the process runs on glibc, else (None, what it runs on)."""
    try:
        lib = loader(None)  # the symbols already linked into the process
    except OSError as exc:
        return None, f"unknown C library ({exc})"
    version = getattr(lib, "gnu_get_libc_version", None)
    if version is None:
        return None, f"not glibc ({ctypes.util.find_library('c') or 'no libc found'})"
    version.restype = ctypes.c_char_p
    name = f"glibc {version().decode()}"
    for fn, argtypes, restype in (
        ("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int),
        ("malloc_trim", [ctypes.c_size_t], ctypes.c_int),
    ):
        f = getattr(lib, fn, None)
        if f is None:
            return None, f"{name} without {fn}"
        f.argtypes, f.restype = argtypes, restype
    info = getattr(lib, "mallinfo2", None)  # glibc >= 2.33
    if info is not None:
        info.argtypes, info.restype = [], _Mallinfo2
    return lib, name


def _resolve(lib: Any) -> Any:
    """The process's glibc (``lib`` None) or ``lib`` when it is a glibc (tests); else None."""
    return _load() if lib is None else _find_glibc(lambda _n: lib)[0]


def configure(
    *,
    mmap_threshold_bytes: int = 0,
    trim_threshold_bytes: int = 0,
    arena_max: int = 0,
    lib: Any = None,
) -> AllocatorReport:
    """Set glibc's mallopt parameters; 0 leaves a parameter at glibc's default.

    Call it once at start, before the worker's threads allocate (M_ARENA_MAX bounds arenas created
    later). ``lib`` is for tests (a stand-in C library); by default, the process's.
    """
    if lib is None:
        lib = _load()
        name = _libc_name
    else:
        lib, name = _find_glibc(lambda _n: lib)
    if lib is None:
        return AllocatorReport(False, name)
    wanted = {
        "mmap_threshold_bytes": (M_MMAP_THRESHOLD, mmap_threshold_bytes),
        "trim_threshold_bytes": (M_TRIM_THRESHOLD, trim_threshold_bytes),
        "arena_max": (M_ARENA_MAX, arena_max),
    }
    applied: dict[str, int] = {}
    failed: dict[str, int] = {}
    for key, (param, value) in wanted.items():
        if value <= 0:
            continue
        if value > MMAP_THRESHOLD_MAX and param == M_MMAP_THRESHOLD:
            failed[key] = value
            continue
        (applied if lib.mallopt(param, int(value)) == 1 else failed)[key] = int(value)
    return AllocatorReport(True, name, applied, failed)


def trim(lib: Any = None) -> float | None:
    """``malloc_trim(0)``: give the free pages of every heap back to the kernel.

    Returns the seconds it took, or None when the C library is not glibc (nothing done).
    """
    lib = _resolve(lib)
    if lib is None:
        return None
    t0 = time.perf_counter()
    lib.malloc_trim(0)
    return time.perf_counter() - t0


def stats(lib: Any = None) -> MallocStats | None:
    """glibc's counters (``mallinfo2``), or None (not glibc, or glibc older than 2.33)."""
    lib = _resolve(lib)
    info = getattr(lib, "mallinfo2", None) if lib is not None else None
    if info is None:
        return None
    m = info()
    return MallocStats(
        heap_bytes=m.arena,
        in_use_bytes=m.uordblks,
        free_bytes=m.fordblks,
        mmapped_bytes=m.hblkhd,
        mmapped_chunks=m.hblks,
        top_free_bytes=m.keepcost,
    )


def rss_bytes() -> int | None:
    """This process's resident set size (/proc/self/statm), or None where there is no /proc."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _page_size()
    except (OSError, ValueError, IndexError):
        return None


def _page_size() -> int:
    import os

    return os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class TrimResult:
    """One :func:`trim_if_worth` call that trimmed: glibc's free bytes, RSS before/after, duration."""

    free_bytes: int
    rss_before: int | None
    rss_after: int | None
    seconds: float

    @property
    def released_bytes(self) -> int | None:
        if self.rss_before is None or self.rss_after is None:
            return None
        return self.rss_before - self.rss_after


def trim_if_worth(min_free_bytes: int, lib: Any = None, last: TrimResult | None = None) -> TrimResult | None:
    """``malloc_trim(0)`` when glibc's heaps hold at least ``min_free_bytes`` free (``mallinfo2``).

    None when nothing was done (not glibc, too little free memory, or nothing moved since ``last``:
    trimmed pages stay counted as free, so the same free bytes and no RSS growth mean nothing to
    return). The C calls release the GIL: the other threads run on; only allocations in the heap
    being trimmed wait for it.
    """
    s = stats(lib)
    if s is None or s.free_bytes < min_free_bytes:
        return None
    if last is not None and last.rss_after is not None:
        rss = rss_bytes()
        step = max(min_free_bytes // 4, 1 << 20)
        if abs(s.free_bytes - last.free_bytes) < step and (rss is None or rss - last.rss_after < step):
            return None
    before = rss_bytes()
    seconds = trim(lib)
    if seconds is None:
        return None
    return TrimResult(s.free_bytes, before, rss_bytes(), seconds)


class Trimmer:
    """A daemon thread that calls :func:`trim_if_worth` every ``interval_s`` (glibc has no
    background release of its own); ``on_trim`` (logging, metrics) gets each :class:`TrimResult`."""

    def __init__(
        self,
        interval_s: float,
        min_free_bytes: int,
        on_trim: Callable[[TrimResult], None] | None = None,
        lib: Any = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.interval_s = interval_s
        self.min_free_bytes = min_free_bytes
        self.on_trim = on_trim
        self.lib = lib
        self.trims = 0
        self.seconds = 0.0
        self.last: TrimResult | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)

    def start(self) -> Trimmer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.once()

    def once(self) -> TrimResult | None:
        try:
            r = trim_if_worth(self.min_free_bytes, self.lib, self.last)
        except Exception:  # never let the allocator helper kill anything; the next round retries
            return None
        if r is not None:
            self.last = r
            self.trims += 1
            self.seconds += r.seconds
            if self.on_trim is not None:
                with contextlib.suppress(Exception):
                    self.on_trim(r)
        return r
