"""End-to-end query latency and memory of one index, one query at a time, as a search process serves it.

    python -m bench.latency --index /tmp/souyi-perf/100k

Opens the index with :class:`search.Searcher` (the model recorded in it),
measures the process's RSS after opening, runs ``--queries`` real eval
questions (embedded at run time) through ``Searcher.search`` in every mode
after ``--warmup`` queries, ``--repeat`` times, and reports the median over
runs of each run's p50/p99.  Query embedding is timed on its own too
(``encode_queries`` of one question), so the retrieval share is visible.
``hybrid+filter`` is hybrid restricted to one of ten metadata shards (10 % of
the passages).  Rows are merged into ``docs/perf/latency.json`` by passage
count; each index runs in its own process so RSS is per size.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from bench import common
from search import Searcher

COLUMNS = ["passages", "mode", "p50 ms", "p99 ms", "embed p50 ms", "retrieval p50 ms", "RSS after open MB",
           "RSS after queries MB", "vector file MB", "lexical file MB", "vector index"]
MODES = {"embed only": None, "hybrid": ("hybrid", None), "dense": ("dense", None),
         "lexical": ("lexical", None), "hybrid+filter": ("hybrid", {"shard": "3"})}


def run_once(searcher: Searcher, questions: list[str]) -> dict[str, list[float]]:
    """Milliseconds per question for every entry of MODES; modes alternate per question, so that load
    from other processes on a shared machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in MODES}
    for q in questions:
        for name, spec in MODES.items():
            tick = time.perf_counter()
            if spec is None:
                searcher.embedder.encode_queries([q])
            else:
                searcher.search(q, mode=spec[0], filters=spec[1])
            times[name].append((time.perf_counter() - tick) * 1000)
    return times


def file_sizes(index: Path, manifest: dict) -> dict[str, int]:
    """Bytes of the vector and the BM25 files of the index's generation (format 2: one file each; 3: its segments)."""
    if "files" in manifest:
        return {kind: (index / name).stat().st_size for kind, name in manifest["files"].items()}
    folders = [index / "segments" / entry["name"] for entry in manifest["segments"]]
    return {"vectors": sum((f / "vectors.faiss").stat().st_size for f in folders),
            "lexical": sum(npy.stat().st_size for f in folders for npy in (f / "lexical").glob("*.npy"))}


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    common.add_eval_dir(parser)
    common.add_out(parser, "latency")
    args = parser.parse_args(argv)
    questions = common.eval_questions(args.queries + args.warmup, eval_dir=args.eval_dir)
    warm, measured = questions[: args.warmup], questions[args.warmup :]
    opened_s, searcher = common.timed(lambda: Searcher.open(args.index))
    rss_open = common.rss_bytes()
    manifest = json.loads((args.index / "manifest.json").read_text(encoding="utf-8"))
    n = int(manifest["counts"]["passages"])
    files = file_sizes(args.index, manifest)
    for q in warm:
        for mode in ("hybrid", "dense", "lexical"):
            searcher.search(q, mode=mode)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in MODES}
    for _ in range(args.repeat):
        for name, times in run_once(searcher, measured).items():
            results[name].append((float(np.percentile(times, 50)), float(np.percentile(times, 99))))
    rss_after = common.rss_bytes()
    embed_p50 = float(np.median([p50 for p50, _ in results["embed only"]]))
    rows = []
    for name, runs in results.items():
        p50 = float(np.median([r[0] for r in runs]))
        p99 = float(np.median([r[1] for r in runs]))
        uses_model = MODES[name] is None or MODES[name][0] != "lexical"
        retrieval = round(p50 - embed_p50, 1) if MODES[name] is not None and uses_model else (
            round(p50, 1) if MODES[name] is not None else "-")
        rows.append([n, name, round(p50, 1), round(p99, 1), round(embed_p50, 1) if uses_model else 0.0, retrieval,
                     round(rss_open / 2**20), round(rss_after / 2**20), round(files["vectors"] / 2**20, 1),
                     round(files["lexical"] / 2**20, 1), common.vector_kinds(manifest)])
        print(rows[-1])
    print(f"opened in {opened_s:.1f} s")
    merged = sorted(common.merged_rows(args.out, rows, lambda row: row[0] == n), key=lambda row: (row[0], row[1]))
    sizes = sorted({row[0] for row in merged})

    def column(mode: str, index: int) -> list:
        return [next((row[index] for row in merged if row[0] == s and row[1] == mode), None) for s in sizes]

    common.write_perf(args.out, {
        "title": "End-to-end query latency and memory by index size",
        "command": "python -m bench.latency --index DIR   "
                   "(DIR from python -m bench.synth_index --passages N --out DIR)",
        "machine": common.machine(),
        "columns": COLUMNS,
        "rows": merged,
        "notes": f"{args.queries} real eval questions (Chinese and English) after {args.warmup} warm-up queries, "
                 f"k=10, one at a time, one process; p50/p99 are medians over {args.repeat} runs. "
                 "'retrieval' = p50 minus the embedding p50. RSS is the whole search process (model included). "
                 "The index text and BM25 side are real sentences recombined; vectors are a real sample plus "
                 "synthetic ones (see bench/synth_index.py). The synthetic indexes have no rescorer.",
        "series": {
            "passages": sizes,
            "hybrid p50 ms": column("hybrid", 2),
            "hybrid p99 ms": column("hybrid", 3),
            "embed p50 ms": column("embed only", 2),
            "RSS after queries MB": column("hybrid", 7),
            "vector file MB": column("hybrid", 8),
        },
    })


if __name__ == "__main__":
    main()
