"""The long reliability runs: deselected by default (pyproject: ``-m 'not long'``).

    python -m pytest -m long tests/long        # or: python -m bench.reliability

Each run records its figures through the ``figures`` fixture; they are
written as ``<name>.json`` into ``$SOUYI_RELIABILITY_DIR`` (default
``/tmp/souyi-reliability``), where ``bench/reliability.py`` collects them
into ``docs/perf/reliability.json`` and ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def figures() -> dict[str, dict]:
    """``figures[name] = {...}``: written to ``$SOUYI_RELIABILITY_DIR/name.json`` when the session ends."""
    collected: dict[str, dict] = {}
    yield collected
    out = Path(os.environ.get("SOUYI_RELIABILITY_DIR", "/tmp/souyi-reliability"))
    out.mkdir(parents=True, exist_ok=True)
    for name, data in collected.items():
        (out / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
