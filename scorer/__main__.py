"""Entry point of ``python -m scorer``; threads are capped before numpy is imported."""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from scorer.cli import main  # noqa: E402

main()
