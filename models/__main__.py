"""``python -m models``: see :mod:`models.cli`."""

from models.cli import main

main()
