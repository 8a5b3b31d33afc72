"""Time to first answer of ``souyi serve`` on a fresh machine, split into its phases.

    python -m bench.first_run                     # writes docs/perf/first_run.json
    python -m bench.first_run --baseline DIR      # and the souyi in DIR (an older checkout), in turn

Runs ``souyi serve`` as a newcomer does (no ``-v``) with an empty home folder
and an empty model cache in a temporary folder, stamps every line it writes to
stderr on arrival, and polls ``/api/search`` until the first HTTP 200.  The
phases are cut at the lines the command prints anyway:

- start-up: process start -> "building the sample index" (imports, CLI);
- model preparation: "preparing the model" -> "model prepared" (conversion,
  ONNX export, int8 quantisation: :mod:`indexer.preparation`), and the time of
  each step as that closing line tells it;
- sample indexing: the rest until the index is open ("opened index"), minus
  the preparation (reading, embedding and writing the sample, then opening it);
- server start: "opened index" -> first HTTP 200 of ``/api/search``.

A second ``souyi serve`` in the same home folder is timed too: what every
later start costs.  Interpretation: docs/first_run.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.perfdata import ROOT, machine, write_json
from indexer.preparation import CONVERSION, EXPORT, QUANTIZATION

#: Lines that cut the phases (see the module docstring), as printed by souyi without -v.
MARKS = {
    "building": "building the sample index",
    "preparing": "preparing the model for this machine",
    "prepared": "model prepared in",
    "opened": "opened index",
}
STEPS = (CONVERSION, EXPORT, QUANTIZATION)
PHASES = ("start-up", "model preparation", *STEPS, "sample indexing", "server start", "first answer")
RUNS = ("first (fresh home and cache)", "second (same home)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _first_answer(port: int, server: subprocess.Popen, timeout: float) -> float:
    """Poll ``/api/search`` until it answers 200; return the monotonic time of that answer."""
    url = f"http://127.0.0.1:{port}/api/search?q=%E8%BD%AF%E4%BB%B6"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"souyi serve exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.monotonic()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no answer from {url} within {timeout:.0f} s")


def serve_once(home: Path, cache: Path, code: Path, timeout: float) -> tuple[dict[str, float], list[str]]:
    """Run ``souyi serve`` until its first answer; return the phase times and its stamped stderr lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "SOUYI_INDEX")}
    env.update(HOME=str(home), SOUYI_CACHE_DIR=str(cache), PYTHONPATH=str(code))
    port = _free_port()
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "souyi", "serve", "--port", str(port)], cwd=home, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: lines.extend((time.monotonic(), line.rstrip()) for line in server.stderr))
    reader.start()
    try:
        answered = _first_answer(port, server, timeout)
    finally:
        server.terminate()
        server.wait(timeout=30)
        reader.join()
    at = {mark: next((when - started for when, line in lines if text in line), None) for mark, text in MARKS.items()}
    total = answered - started
    opened = at["opened"] or total
    preparation = at["prepared"] - at["preparing"] if at["preparing"] is not None else 0.0
    startup = at["building"] if at["building"] is not None else opened
    prepared = next((line for _, line in lines if MARKS["prepared"] in line), "")
    phases = {
        "start-up": startup,
        "model preparation": preparation,
        **{step: _step_seconds(prepared, step) for step in STEPS},
        "sample indexing": opened - startup - preparation,
        "server start": total - opened,
        "first answer": total,
    }
    return phases, [f"{when - started:6.1f} {line}" for when, line in lines]


def _step_seconds(prepared: str, step: str) -> float | None:
    """Seconds of ``step`` as the "model prepared" line tells them (None: not run, or not told)."""
    found = re.search(rf"{re.escape(step)} ([0-9.]+) s", prepared)
    return float(found.group(1)) if found else None


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return round(statistics.median(known), 1) if known else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="souyi source folder to run (default: this one)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another souyi source folder, run in turn with --code in every round (before/after)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each phase is reported as the median")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the first answer")
    parser.add_argument("--out", default="first_run", help="name of the docs/perf JSON file ('' to skip)")
    args = parser.parse_args()
    codes = {"this": args.code.resolve(), **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    times: dict[tuple[str, str], list[dict[str, float]]] = {}
    logs: dict[str, list[str]] = {}
    for round_ in range(args.rounds):  # versions alternate, first one then the other, so that a shared
        for label, code in list(codes.items())[:: 1 if round_ % 2 == 0 else -1]:  # machine's load hits both alike
            with tempfile.TemporaryDirectory(prefix="souyi-first-run-") as tmp:
                home, cache = Path(tmp) / "home", Path(tmp) / "cache"
                home.mkdir()
                for run in RUNS:
                    phases, logs[f"{label}, {run}"] = serve_once(home, cache, code, args.timeout)
                    times.setdefault((label, run), []).append(phases)
                    print(json.dumps({"code": label, "run": run, **phases}), flush=True)
    rows = [[label, run, *(_median([t[phase] for t in runs]) for phase in PHASES)]
            for (label, run), runs in times.items()]
    if args.out:
        path = write_json(args.out, {
            "title": "First souyi serve on a fresh machine: time to first answer",
            "command": "python -m bench.first_run" + (" --baseline DIR" if args.baseline else ""),
            "machine": machine(),
            "columns": ["code", "run", *(f"{phase} s" for phase in PHASES)],
            "rows": rows,
            "notes": f"Median of {args.rounds} rounds; phases cut at the lines souyi serve prints "
                     "(bench/first_run.py); 'logs' holds those lines of the last round, stamped in seconds from "
                     "the start of the process. Interpretation: docs/first_run.md.",
            "logs": logs,
        })
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
