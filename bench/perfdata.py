"""Shared bits of the performance benchmarks: where data lives, the machine, the JSON they write.

Every ``docs/perf/*.json`` file has one schema, which
``bench/performance_report.py`` renders into ``docs/performance.md``::

    {"title": str, "command": str, "machine": str, "columns": [str], "rows": [[...]], "notes": str,
     "series": {...}}   # series optional: plot data
"""

from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = ROOT.parent / "shared" / "eval"
PERF_DIR = ROOT / "docs" / "perf"


def machine() -> str:
    """CPU model, core count, memory and Python: enough to compare runs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
        memory = f", {mem_kb / 2**20:.0f} GiB"
    except (OSError, StopIteration):
        memory = ""
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def write_json(name: str, data: dict) -> Path:
    """Write ``docs/perf/<name>.json`` (schema above) and return its path."""
    missing = {"title", "command", "machine", "columns", "rows", "notes"} - data.keys()
    if missing:
        raise ValueError(f"perf JSON {name} lacks {sorted(missing)}")
    PERF_DIR.mkdir(parents=True, exist_ok=True)
    path = PERF_DIR / f"{name}.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def eval_questions(limit: int, seed: int = 1) -> list[str]:
    """Up to ``limit`` real questions of the eval sets (Chinese and English), in a fixed random order."""
    from search.evaluate import load_collection

    texts = [text for c in sorted(EVAL_DIR.iterdir()) if (c / "queries.jsonl").is_file()
             for _, text in load_collection(c).queries]
    return random.Random(seed).sample(texts, min(limit, len(texts)))


def rss_bytes() -> int:
    """Resident set size of this process now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmRSS in /proc/self/status")
