"""``python -m souyi`` is the ``souyi`` command."""

from .cli import main

if __name__ == "__main__":  # not when a worker process (multiprocessing spawn) imports this module again
    raise SystemExit(main())
