"""common/allocator.py: mallopt on glibc (its effect measured with mallinfo2), a clear no-op on another
C library, the trimmer, and the scorer settings that drive them."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys
import time
from typing import Any

import pytest

from common import allocator
from common.allocator import (
    M_ARENA_MAX,
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    Trimmer,
    configure,
    stats,
    trim,
    trim_if_worth,
)
from common.settings import SettingsError, load_settings
from scorer.settings import ScorerSettings

pytestmark = pytest.mark.unit

GLIBC = platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="glibc only")


class _Fn:
    """A C function stand-in: records calls, accepts argtypes/restype."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[Any, ...]] = []
        self.argtypes: Any = None
        self.restype: Any = None

    def __call__(self, *args: Any) -> Any:
        self.calls.append(args)
        return self.result() if callable(self.result) else self.result


class FakeGlibc:
    def __init__(self, mallopt_result: int = 1, free_bytes: int = 0) -> None:
        self.gnu_get_libc_version = _Fn(b"2.99")
        self.mallopt = _Fn(mallopt_result)
        self.malloc_trim = _Fn(1)
        info = allocator._Mallinfo2()
        info.fordblks = free_bytes
        info.arena = 3 * free_bytes
        self.mallinfo2 = _Fn(info)


class Musl:
    """A C library without glibc's symbols (musl, macOS's libSystem)."""

    malloc = _Fn(0)


def test_other_libc_is_a_clear_no_op() -> None:
    report = configure(mmap_threshold_bytes=1 << 20, arena_max=2, lib=Musl())
    assert not report.supported
    assert report.applied == {}
    assert "not glibc" in report.libc
    assert trim(Musl()) is None
    assert stats(Musl()) is None
    assert trim_if_worth(0, Musl()) is None
    assert Trimmer(1.0, 0, lib=Musl()).once() is None


def test_configure_passes_each_nonzero_parameter_to_mallopt() -> None:
    lib = FakeGlibc()
    report = configure(mmap_threshold_bytes=256 << 10, trim_threshold_bytes=0, arena_max=2, lib=lib)
    assert report.supported and report.libc == "glibc 2.99"
    assert lib.mallopt.calls == [(M_MMAP_THRESHOLD, 256 << 10), (M_ARENA_MAX, 2)]
    assert report.applied == {"mmap_threshold_bytes": 256 << 10, "arena_max": 2}
    lib = FakeGlibc()
    configure(trim_threshold_bytes=1 << 20, lib=lib)
    assert lib.mallopt.calls == [(M_TRIM_THRESHOLD, 1 << 20)]
    lib = FakeGlibc()
    assert configure(lib=lib).applied == {} and lib.mallopt.calls == []  # all 0: glibc's defaults


def test_configure_reports_what_glibc_refused() -> None:
    report = configure(arena_max=2, lib=FakeGlibc(mallopt_result=0))
    assert report.failed == {"arena_max": 2} and report.applied == {}
    lib = FakeGlibc()
    report = configure(mmap_threshold_bytes=64 << 20, lib=lib)  # above glibc's maximum: never sent
    assert report.failed == {"mmap_threshold_bytes": 64 << 20} and lib.mallopt.calls == []


def test_trim_if_worth_follows_the_free_bytes() -> None:
    lib = FakeGlibc(free_bytes=10 << 20)
    assert trim_if_worth(32 << 20, lib) is None and lib.malloc_trim.calls == []
    r = trim_if_worth(8 << 20, lib)
    assert r is not None and r.free_bytes == 10 << 20 and r.seconds >= 0
    assert lib.malloc_trim.calls == [(0,)]


def test_trimmer_thread_trims_and_stops() -> None:
    lib = FakeGlibc(free_bytes=64 << 20)
    seen: list[Any] = []
    t = Trimmer(0.01, 1 << 20, seen.append, lib=lib).start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    t.stop()
    assert seen and t.trims >= 1 and lib.malloc_trim.calls
    assert not t._thread.is_alive()
    with pytest.raises(ValueError, match="interval_s"):
        Trimmer(0, 0)


def test_trimmer_skips_rounds_where_nothing_moved() -> None:
    lib = FakeGlibc(free_bytes=200 << 20)
    t = Trimmer(1.0, 64 << 20, lib=lib)
    assert t.once() is not None and len(lib.malloc_trim.calls) == 1
    assert t.once() is None and len(lib.malloc_trim.calls) == 1  # same free bytes, RSS did not grow
    lib.mallinfo2.result.fordblks = 300 << 20  # a batch freed 100 MB more
    assert t.once() is not None and len(lib.malloc_trim.calls) == 2
    assert t.trims == 2


_PROBE = """
import ctypes, sys
from common.allocator import configure, stats
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "fixed":
    r = configure(mmap_threshold_bytes=256 << 10)
    assert r.supported and r.applied == {"mmap_threshold_bytes": 256 << 10}, r
big = libc.malloc(8 << 20)       # above any threshold: mmapped
libc.free(big)                   # glibc's dynamic threshold rises to 8 MB here (unless fixed)
before = stats().mmapped_chunks
p = libc.malloc(1 << 20)         # 1 MB: heap (dynamic) or its own mmap (fixed at 256 KB)
print(stats().mmapped_chunks - before)
libc.free(p)
"""


@needs_glibc
@pytest.mark.parametrize(("mode", "mmapped"), [("fixed", "1"), ("dynamic", "0")])
def test_mallopt_fixes_the_mmap_threshold_on_glibc(mode: str, mmapped: str) -> None:
    """A fixed M_MMAP_THRESHOLD keeps a 1 MB block on its own mmap after a big block was freed; glibc's
    dynamic threshold would serve it from the heap (where its pages stay after free)."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == mmapped


@needs_glibc
def test_trim_and_stats_on_glibc() -> None:
    s = stats()
    assert s is not None and s.heap_bytes > 0 and s.in_use_bytes > 0
    seconds = trim()
    assert seconds is not None and seconds >= 0
    assert allocator.rss_bytes() is not None
    assert ctypes.sizeof(allocator._Mallinfo2) == 10 * ctypes.sizeof(ctypes.c_size_t)


def test_scorer_settings_validate_the_allocator_fields() -> None:
    s = load_settings(ScorerSettings)
    assert s.malloc_mmap_threshold_bytes == 256 << 10 and s.malloc_arena_max == 2
    assert s.malloc_trim_interval_s > 0
    load_settings(ScorerSettings, malloc_mmap_threshold_bytes=0, malloc_arena_max=0, malloc_trim_interval_s=0)
    for bad in (
        {"malloc_mmap_threshold_bytes": 100},  # not a page
        {"malloc_mmap_threshold_bytes": 64 << 20},  # above glibc's maximum
        {"malloc_mmap_threshold_bytes": -1},
        {"malloc_arena_max": 65},
        {"malloc_trim_interval_s": -1},
        {"malloc_trim_min_free_bytes": -5},
    ):
        with pytest.raises(SettingsError, match=next(iter(bad)).upper()):
            load_settings(ScorerSettings, **bad)


def test_worker_start_tunes_the_allocator() -> None:
    from scorer.cli import tune_allocator

    s = load_settings(ScorerSettings, malloc_trim_interval_s=60)
    trimmer = tune_allocator(s)
    try:
        assert (trimmer is not None) == GLIBC
    finally:
        if trimmer is not None:
            trimmer.stop()
    assert tune_allocator(load_settings(ScorerSettings, malloc_trim_interval_s=0)) is None
