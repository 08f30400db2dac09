"""Writes ``window_v3_{cut}_{turbine}.bin``: the golden windows as checkpointed by the code before state
format 4 (run from the repository root; once, they never change)::

    .venv/bin/python tests/unit/models/golden/make_window_v3.py

The writer is ``models/window_store.py`` of commit c007e40 (state format 3: header + zlib of the
compact arrays), read from git and loaded beside the current code; each golden v2 window is loaded by
it and written back, exactly as a worker of that commit restored and checkpointed it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
sys.path.insert(0, str(ROOT))
COMMIT = "c007e40"


def old_store_module():  # type: ignore[no-untyped-def]
    src = subprocess.run(
        ["git", "show", f"{COMMIT}:models/window_store.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path("/tmp") / f"window_store_{COMMIT}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"window_store_{COMMIT}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    old = old_store_module()
    assert old.STATE_FORMAT_VERSION == 3
    for v2 in sorted(HERE.glob("window_v2_*.bin")):
        store = old.WindowStore(1)
        tid = v2.stem.split("_", 3)[3]
        row = store.load(tid, v2.read_bytes())
        out = HERE / v2.name.replace("window_v2_", "window_v3_")
        out.write_bytes(store.to_bytes(row))
        print("written", out.relative_to(ROOT))


if __name__ == "__main__":
    main()
