"""``python -m producers``: see :mod:`producers.cli`."""

from producers.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
