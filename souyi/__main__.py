"""``python -m souyi`` is the ``souyi`` command."""

from .cli import main

raise SystemExit(main())
