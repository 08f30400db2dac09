"""jemalloc for the worker: finding it, telling whether it runs, and the re-execution under it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from common.jemalloc import find_library, loaded, preload_environment

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def test_an_explicit_library_is_the_only_place_looked_at(tmp_path: Path) -> None:
    missing = tmp_path / "libjemalloc.so.2"
    assert find_library(missing) == (None, [str(missing)])
    missing.write_bytes(b"\x7fELF")
    assert find_library(missing) == (missing, [str(missing)])


def test_loaded_reads_the_mapped_library_and_ignores_anonymous_maps(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(
        "55774cdb1000-55774cdc4000 rw-p 00000000 00:00 0 \n"
        "7f16190e2000-7f16190ef000 r-xp 00000000 fe:00 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    )
    assert loaded(maps) is None
    with maps.open("a") as f:
        f.write("7f1619000000-7f1619100000 r-xp 00000000 fe:00 2 /opt/lib/libjemalloc.so.2\n")
    assert loaded(maps) == "/opt/lib/libjemalloc.so.2"
    assert loaded(tmp_path / "no-such-file") is None


def test_preload_environment_puts_the_library_first_once() -> None:
    lib = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    env = preload_environment({"LD_PRELOAD": f"/x/libfoo.so:{lib}", "HOME": "/root"}, lib, "narenas:2")
    assert env["LD_PRELOAD"] == f"{lib} /x/libfoo.so"
    assert env["PYTHONMALLOC"] == "malloc" and env["MALLOC_CONF"] == "narenas:2" and env["HOME"] == "/root"
    assert "MALLOC_CONF" not in preload_environment({}, lib, "")


def _settings(**kw: Any) -> Any:
    from scorer.settings import ScorerSettings

    return ScorerSettings(**kw)


def test_missing_jemalloc_exits_when_required_and_falls_back_when_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scorer.cli import choose_allocator

    missing = tmp_path / "libjemalloc.so.2"
    assert choose_allocator(_settings(allocator="glibc", jemalloc_path=missing)) == "glibc"
    if loaded() is None:  # (this test process is not under jemalloc: nothing to re-execute into)
        assert choose_allocator(_settings(allocator="auto", jemalloc_path=missing)) == "glibc"
        with pytest.raises(SystemExit) as exc:
            choose_allocator(_settings(allocator="jemalloc", jemalloc_path=missing))
        assert exc.value.code == 2
        assert str(missing) in capsys.readouterr().err


def test_settings_refuse_an_unknown_allocator_or_a_conf_with_spaces() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="allocator"):
        _settings(allocator="tcmalloc")
    with pytest.raises(ValidationError, match="jemalloc_conf"):
        _settings(jemalloc_conf="narenas:2; rm -rf /")


def test_a_process_re_executes_itself_under_jemalloc_once() -> None:
    """The real path: a fresh interpreter calls choose_allocator, which re-executes it under jemalloc
    (same arguments); the second run finds jemalloc mapped and goes on."""
    library, looked = find_library()
    if library is None:
        pytest.skip(f"libjemalloc.so.2 is not installed here (looked in {looked})")
    code = textwrap.dedent(
        """
        import os, sys
        from scorer.cli import choose_allocator
        from scorer.settings import ScorerSettings
        print("run", os.environ.get("PYTHONMALLOC", "-"), flush=True)
        print("result", choose_allocator(ScorerSettings()), sys.argv[1:], flush=True)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.pop("LD_PRELOAD", None)
    env.pop("PYTHONMALLOC", None)
    out = subprocess.run(
        [sys.executable, "-c", code, "an-argument"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(("run", "result"))]
    assert lines == ["run -", "run malloc", "result jemalloc ['an-argument']"]
