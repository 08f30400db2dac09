"""Writes ``window_v4_{cut}_{turbine}.bin``: the golden windows as checkpointed in state format 4 by the
code that introduced its numba codec (run from the repository root; once, they never change)::

    .venv/bin/python tests/unit/models/golden/make_window_v4.py

The writer is the tree of commit f696bf9 (``git archive``, run in a child process with that tree first
on its path): each golden v3 window is loaded by it and written back, exactly as a worker of that
commit restored and checkpointed it. Later codec changes must read these files to the same arrays and
write the same bytes again (``tests/unit/models/test_window_codec_golden.py``).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
COMMIT = "f696bf9"

CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from models.features import FeatureWindow
import models.window_store as ws
assert ws.__file__.startswith(sys.argv[1]), ws.__file__
here = Path(sys.argv[2])
for src in sorted(here.glob("window_v3_*.bin")):
    dst = here / src.name.replace("window_v3_", "window_v4_")
    dst.write_bytes(FeatureWindow.from_bytes(src.read_bytes()).to_bytes())
    print(dst.name)
"""


def main() -> None:
    tar = subprocess.run(
        ["git", "archive", COMMIT, "models", "common"], cwd=ROOT, check=True, capture_output=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(tar.stdout)) as t:
            t.extractall(tmp, filter="data")
        subprocess.run([sys.executable, "-c", CHILD, tmp, str(HERE)], check=True)


if __name__ == "__main__":
    main()
