"""Run the long reliability checks, keep their figures in docs/perf/reliability.json, render docs/reliability.md.

    python -m bench.reliability --long                          # tests/long: fuzzing, document zoo, faults
    python -m bench.reliability --long tests/long/test_long_fuzz.py   # one of them
    python -m bench.reliability --query-bound INDEX [--query-bound INDEX2]
    python -m bench.reliability --load RESULT.json              # a bench/load_test.py --json result
    python -m bench.reliability                                  # only re-render the Markdown

Each part can run on its own: docs/perf/reliability.json keeps the sections not
re-run, and every section carries the command that produced it, which the
Markdown prints beside its figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DOCS_DIR, PERF_DIR, ROOT, machine, parser_for, read_json, write_json

LONG_COMMAND = "SOUYI_RELIABILITY_DIR=DIR python -m pytest -m long tests/long"


def run_long(data: dict, tests: list[str]) -> None:
    """The long tests in a child pytest; their figures land in a temp folder, then here."""
    command = f"{LONG_COMMAND.removesuffix(' tests/long')} {' '.join(tests)}"
    with tempfile.TemporaryDirectory(prefix="souyi-reliability-") as out:
        env = dict(os.environ, SOUYI_RELIABILITY_DIR=out)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-m", "long", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=ROOT, env=env)
        minutes = (time.perf_counter() - started) / 60
        for path in sorted(Path(out).glob("*.json")):
            section = json.loads(path.read_text(encoding="utf-8"))
            section["command"] = command
            data[path.stem] = section
    data.setdefault("long_runs", {})[" ".join(tests)] = {
        "passed": done.returncode == 0, "minutes": round(minutes, 1), "command": command, "machine": machine()}


def run_query_bound(data: dict, indexes: list[str], options: list[str]) -> None:
    """bench.query_bound (with ``options``) on each index; the worst row of each, and all rows."""
    runs = []
    for index in indexes:
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            subprocess.run([sys.executable, "-m", "bench.query_bound", "--index", index, "--json", tmp.name,
                            *options], cwd=ROOT, check=True)
            run = json.loads(Path(tmp.name).read_text(encoding="utf-8"))
        runs.append(run | {"command": " ".join(["python -m bench.query_bound --index", index, *options])})
    data["query_bound"] = {"runs": runs, "machine": machine()}


def add_load(data: dict, files: list[Path]) -> None:
    loads = data.setdefault("load", {})
    for path in files:
        result = json.loads(path.read_text(encoding="utf-8"))
        key = f"{result['clients']} clients, {result['duration_s']:.0f} s" + (", writer" if result["writer"] else "")
        key += "".join(f", {part.strip()}" for part in result["command"].split("python")[0].split())  # MALLOC_...
        loads[key] = {k: v for k, v in result.items() if k != "rss_samples_mb"} | {
            "rss_samples_mb": result.get("rss_samples_mb", []), "machine": machine()}


# ---------------------------------------------------------------- Markdown

SUITE = """\
## In the test suite

`python -m pytest -q tests/test_fuzz_queries.py tests/test_fuzz_documents.py tests/test_faults.py \
tests/test_security_browser.py` (and `tests/test_crash.py`)

| check | test |
|---|---|
| Query fuzzing (hypothesis, fixed sample): Python API, `souyi search` in-process, `GET /api/search`, `GET /` \
with arbitrary Unicode (controls, lone surrogates, bidi/zero-width marks, emoji), 100 KB strings, query-syntax \
strings, every parameter out of range or of the wrong type, filters holding NUL or lone surrogates, raw \
non-UTF-8 query strings. Only `BadQuery` / exit 2 / HTTP 400 naming the parameter, never another exception or \
a 500 | `tests/test_fuzz_queries.py` |
| Document fuzzing: random bytes and cut/flipped PDF, DOCX, HTML, text through every extractor; one batch with \
random files, truncated PDF/DOCX, malformed DOCX, a 16 MiB deflate bomb, a bomb lying about its size, mixed \
encodings, unclosed HTML, a non-UTF-8 file name: good files indexed, each bad one refused by name; a document \
over the text limit refused naming the limit and `--max-chars` | `tests/test_fuzz_documents.py` |
| Faults: damaged/truncated/deleted FAISS and BM25 files found by `souyi check` and rebuilt by `--repair` from \
SQLite (same ranking after, nothing re-read or re-embedded); damaged SQLite reported with the way out \
(`souyi index SOURCES... --index DIR`), and a search on it is an `IndexFormatError` (CLI exit 3, HTTP 503) \
naming `souyi check`; a real full disk (2 MiB tmpfs, needs root, else skipped): each batch all or nothing, \
`check` clean, the CLI prints one line; SIGKILL during deletes (3 trials) | `tests/test_faults.py` |
| SIGKILL during adds: 20 trials, never half a batch, no committed batch lost | `tests/test_crash.py` |
| Security in real Chromium: documents with `<script>`, event handlers, `javascript:` links, CSS `url()` / \
`@import`, `<meta refresh>`: no dialog, no request outside the server's origin; path-like parameters (`../`, \
`%2e%2e`, NUL, absolute paths) never reach the file system; security headers on the real server \
| `tests/test_security_browser.py` |
"""

LIMITS = """\
## Limits

| what | limit | where |
|---|---|---|
| query length | 1,000 characters (longer: refused, not cut) | `search/query.py` `MAX_QUERY_CHARS` |
| result depth | `k + offset` ≤ 1,000 | `search/query.py` `MAX_DEPTH` |
| filters | 20 per search; no control characters or lone surrogates | `search/query.py`, `search/searcher.py` |
| request size | query string over 16 KiB: 400; body over 16 KiB: 413 | `web/__init__.py` settings |
| source file | 512 MiB, refused unread | `indexer/documents.py` `MAX_FILE_BYTES` |
| document text | 2,000,000 characters (about 20,000 passages); `souyi index/add --max-chars N` raises it | \
`indexer/documents.py` `MAX_DOCUMENT_CHARS` |
| .docx inflated | 256 MiB in all, 200× per member | `indexer/formats.py` |

## Write API

There is none: every route is GET/HEAD and any other method is a 405 (`tests/test_web.py`). Documents are added
and removed only with `souyi add` / `souyi remove` on the machine holding the index.
"""


#: What each door of the long query fuzzing sends (tests/long/test_long_fuzz.py).
DOORS = {
    "python_api": "`Searcher.search`, every parameter arbitrary",
    "python_api_searched": "`Searcher.search`, hostile text, parameters in range",
    "http_api": "`GET /api/search`, every parameter arbitrary",
    "http_api_searched": "`GET /api/search`, hostile text, parameters in range",
    "http_raw": "`GET /api/search` and `GET /`, raw bytes as the query string",
    "cli": "`souyi search` (in-process), arbitrary arguments",
}


def _code(command: str) -> str:
    return f"```sh\n{command}\n```\n"


def render_long(data: dict) -> list[str]:
    out = ["## Long runs\n"]
    runs = data.get("long_runs")
    if not runs:
        return out + ["Not run yet: `python -m bench.reliability --long`.\n"]
    out.append(f"{_code('python -m bench.reliability --long [TEST_FILE...]   # runs: ' + LONG_COMMAND)}")
    for run in runs.values():
        out.append(f"- `{run['command']}`: passed **{'yes' if run['passed'] else 'NO'}**, {run['minutes']} min "
                   f"on {run['machine']}")
    out.append("")
    fuzz = data.get("query_fuzz")
    if fuzz:
        out.append(f"**Query fuzzing** (`tests/long/test_long_fuzz.py`): **{fuzz['cases']:,} random cases**, "
                   "no unhandled exception, no 500, every refusal the documented one:\n")
        out.append("| door | cases | outcomes |\n|---|---|---|")
        for door, outcomes in fuzz["by_door"].items():
            out.append(f"| {DOORS.get(door, door)} | {sum(outcomes.values()):,} | "
                       f"{', '.join(f'{k}: {v:,}' for k, v in sorted(outcomes.items()))} |")
        out.append("")
    docs = data.get("document_fuzz")
    if docs:
        out.append(
            f"**Document zoo** (`tests/long/test_long_documents.py`): one batch of {docs['files']} files, "
            f"{docs['refused']} refused by name, the good ones indexed ({docs['passages']} passages). Big files: "
            + "; ".join(f"`{k}` ({v})" for k, v in docs["big_files"].items())
            + f". Batch: {docs['batch_seconds']} s, peak RSS **{docs['peak_rss_mb']} MB** "
            f"(the good files alone: {docs['good_only_seconds']} s, {docs['good_only_peak_rss_mb']} MB).\n")
    kills = data.get("sigkill_deletes")
    if kills:
        out.append(f"**SIGKILL during deletes** (`tests/long/test_long_faults.py`): {kills['trials']} kills at "
                   f"random moments over {kills['pairs']} document pairs, {kills['removed_reported']} deletes "
                   "reported committed: after every kill `check` clean, never half a delete, no reported delete "
                   "back. (SIGKILL during adds, 20 trials: `tests/test_crash.py`, in the suite.)\n")
    disk = data.get("full_disk")
    if disk:
        out.append(f"**Full disk** (`tests/long/test_long_faults.py`, {disk['file_system']}): {disk['batches']} "
                   f"batches with 0 to 1 MiB free in 64 KiB steps; {disk['failed_cleanly']} failed with "
                   "\"No space left on device\" / \"database or disk is full\" and left the index as it was "
                   "(`check` clean, searchable), the others landed whole.\n")
    return out


def render_query_bound(data: dict) -> list[str]:
    out = ["## Query time bound\n"]
    bound = data.get("query_bound")
    if not bound:
        return out + ["Not measured yet: `python -m bench.reliability --query-bound INDEX`.\n"]
    out.append(
        "The most expensive queries one can construct (`bench/query_bound.py`): 1,000 characters (the limit) "
        "of the index's most frequent terms — one term repeated, and as many distinct frequent terms as fit — "
        "at `k=1000` and at `k=1, offset=999` (the depth limit), in every mode; an ordinary question beside "
        f"them. Median of 3 runs after a warm-up, ms, on {bound['machine']} (shared with other jobs).\n")
    for run in bound["runs"]:
        out.append(f"{_code(run['command'])}\n{run['passages']:,} passages:\n")
        out.append("| query | distinct terms | postings scored | mode | k | offset | median ms | max ms |\n"
                   "|---|---|---|---|---|---|---|---|")
        for row in run["rows"]:
            out.append(f"| {row['query']} | {row['distinct_terms']} | {row.get('postings', '')} | {row['mode']} | "
                       f"{row['k']} | {row['offset']} | {row['median_ms']} | {row['max_ms']} |")
        worst = run["worst"]
        out.append(f"\nWorst: **{worst['median_ms']} ms** median ({worst['max_ms']} ms max), {worst['query']}, "
                   f"{worst['mode']}, k={worst['k']}.\n")
    out.append(
        "What bounds it: the query length limit (1,000 characters, of which the model reads at most 512 tokens) "
        "and the depth limit (`k + offset` ≤ 1,000 passages fetched and highlighted). The worst cases cost "
        "about as much on 30 passages as on 100,000: the time goes into the model reading a 512-token query "
        "(dense and hybrid modes), not into the index; the lexical side scores even the longest posting lists "
        "a query can name (1.46 million postings at 100k) in tens of milliseconds. So no further cap was added; "
        "a pathological query holds a worker about a second on this machine, some 20 times an ordinary search. "
        "(The 100k index is `bench/synth_index.py`'s: real sentences recombined, so its posting lists are longer "
        "than a real corpus's of that size.)\n")
    return out


def render_load(data: dict) -> list[str]:
    out = ["## Load\n"]
    loads = data.get("load")
    if not loads:
        return out + ["Not measured yet: `python -m bench.load_test --index INDEX --clients 16 --duration 300 "
                      "--writer --json FILE`, then `python -m bench.reliability --load FILE`.\n"]
    out.append("`bench/load_test.py`: `souyi serve` (waitress, 4 threads) on loopback, N clients each sending "
               "`GET /api/search` back to back over keep-alive (12 questions × modes hybrid/dense/lexical), "
               "optionally a writer running `souyi add` of one new document every 10 s; server RSS sampled every "
               "5 s from /proc. The load generator runs on the same 2 cores. Index: a copy of `/tmp/souyi-perf/100k` "
               "(100,000 passages, `python -m bench.synth_index --passages 100000 --out /tmp/souyi-perf/100k`), "
               "which the writer runs extend.\n")
    out.append("| run | requests | errors | req/s | p50 ms | p99 ms | max ms | writer batches (failed) | "
               "RSS first → last window (MB) | ratio |\n|---|---|---|---|---|---|---|---|---|---|")
    for key, r in loads.items():
        writer = f"{r['writer']['batches']} ({r['writer']['failures']})" if r.get("writer") else "–"
        out.append(f"| {key} | {r['requests']:,} | {r['errors']} | {r['requests_per_s']} | {r['latency_ms_p50']} | "
                   f"{r['latency_ms_p99']} | {r['latency_ms_max']} | {writer} | {r['rss_mb_first_window']} → "
                   f"{r['rss_mb_last_window']} | {r['rss_last_over_first']} |")
    out.append("\nServer RSS every 30 s (MB), from the 5 s samples:\n")
    for key, r in loads.items():
        every = [f"{mb:.0f}" for t, mb in r["rss_samples_mb"] if round(t) % 30 < 5]
        out.append(f"- {key}: {', '.join(every)}")
    out.append("\n" + LOAD_READING)
    for key, r in loads.items():
        out.append(f"{key}:\n{_code(r['command'])}")
    return out


#: How to read the load figures (what the samples above show; checked against them when they were taken).
LOAD_READING = """\
Reading: no request failed in any run. Without a writer the server's RSS is flat (within 1%). The first
writer runs (the `MALLOC_MMAP_THRESHOLD_` rows, and an earlier run of the plain 300 s row at +22%) showed
RSS rising at every commit: the web engine opened a whole new Searcher for each committed batch (on top of
the Searcher's own move to the new generation), and glibc, after freeing the previous generation's large
arrays, raised its mmap threshold so the next ones fragmented the heap. Both are fixed: the engine now
reopens only when the index directory itself is replaced (a rebuild), and `souyi serve` pins glibc's mmap
threshold at 128 KiB (`web/server.py`). The plain "300 s, writer" row is the run after the fixes: RSS at
minute 5 is within 10% of minute 1 (ratio in the table), but it still steps up by ~30 MB at each of the 4
commits, so flatness over many more commits is not shown yet. The p99 with a writer comes from the moment a
new generation is loaded: the request that finds it loads it, and the requests behind it wait (seconds on
this loaded 2-core machine); loading in the background is the next step.
"""


def render(data: dict) -> str:
    parts = ["# Reliability: bad input, faults, load and security\n",
             "Rendered by `python -m bench.reliability` from `docs/perf/reliability.json`; every figure is given with "
             "the command that produced it.\n", SUITE]
    parts += render_long(data) + render_query_bound(data) + render_load(data) + [LIMITS]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--long", nargs="*", metavar="TEST_FILE",
                        help="run tests/long (about 10 min), or only these files of it")
    parser.add_argument("--query-bound", action="append", default=[], metavar="INDEX",
                        help="measure the worst query time on this index (repeatable)")
    parser.add_argument("--query-chars", type=int, metavar="N",
                        help="with --query-bound: queries of N characters instead of the limit")
    parser.add_argument("--load", action="append", default=[], type=Path, metavar="JSON",
                        help="a bench/load_test.py --json result to include (repeatable)")
    parser.add_argument("--data", type=Path, default=PERF_DIR / "reliability.json",
                        help="the figures kept between runs (default: docs/perf/reliability.json)")
    parser.add_argument("--page", type=Path, default=DOCS_DIR / "reliability.md",
                        help="the page rendered from them (default: docs/reliability.md)")
    args = parser.parse_args(argv)
    data = read_json(args.data, {})
    if args.long is not None:
        run_long(data, args.long or ["tests/long"])
    if args.query_bound:
        run_query_bound(data, args.query_bound, ["--chars", str(args.query_chars)] if args.query_chars else [])
    if args.load:
        add_load(data, args.load)
    write_json(args.data, data)
    args.page.write_text(render(data), encoding="utf-8")
    print(f"wrote {args.data} and {args.page}")
    return 0 if all(run["passed"] for run in data.get("long_runs", {}).values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
