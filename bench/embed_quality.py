"""Quality guard for the embedding backends: `souyi eval` with each backend for indexing and for queries.

For every collection and every pair (backend that built the index, backend that embeds the
queries) this runs

    SOUYI_EMBED_BACKEND=<query backend> SOUYI_QUERY_PRECISION=<its precision> \
        souyi eval <collection> --index <work>/<corpus>-<index backend> --json

(run in this process through ``search.evaluate``, which the command calls; the first run with
a given index builds it with the index backend; collections with the same corpus share an
index).  It prints MRR@10 per mode and the difference to the same index queried in float32
(torch or onnx-fp32), and writes the table to
``docs/perf/embedding_quality.json``.  The product's default pair is ``onnx-fp32:onnx-int8``
(float32 passages, int8 queries).

    nice -n 10 python -m bench.embed_quality --work /tmp/souyi-b
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.common import add_eval_dir, add_out, collection_index, collections_in, machine, parser_for, write_perf
from indexer.embedding import QUERY_PRECISION_ENV, RUNTIME_ENV
from search.evaluate import evaluate, load_collection

PAIRS = [("torch", "torch"), ("torch", "onnx-int8"), ("onnx-int8", "onnx-int8"), ("onnx-int8", "torch"),
         ("onnx-fp32", "onnx-fp32"), ("onnx-fp32", "onnx-int8")]
MODES = ("hybrid", "dense", "lexical")


def run_eval(collection: Path, index: Path, query_runtime: str) -> dict:
    """What ``souyi eval <collection> --index <index> --json`` prints with queries on ``query_runtime``."""
    os.environ[RUNTIME_ENV] = query_runtime  # read by load_embedder, for the build and for the searcher
    os.environ[QUERY_PRECISION_ENV] = "int8" if query_runtime == "onnx-int8" else "fp32"
    return evaluate(load_collection(collection), index_dir=index)


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    add_eval_dir(parser)
    parser.add_argument("--work", type=Path, required=True, help="where the eval indexes and raw results are kept")
    parser.add_argument("--collections", nargs="*", help="collection names (default: all in --eval-dir)")
    parser.add_argument("--pairs", nargs="*", default=[f"{i}:{q}" for i, q in PAIRS], help="INDEX:QUERY backends")
    add_out(parser, "embedding_quality")
    args = parser.parse_args(argv)

    names = args.collections or [c.name for c in collections_in(args.eval_dir)]
    for name in names:
        collection = args.eval_dir / name
        for pair in args.pairs:
            index_runtime, query_runtime = pair.split(":")
            index = collection_index(collection, args.work, index_runtime)
            if not (index / "manifest.json").is_file():  # built by the first eval, with the index backend
                run_eval(collection, index, index_runtime)
            result = run_eval(collection, index, query_runtime)
            store = args.work / "results.json"  # raw results of every run so far, so runs can be split up
            results = json.loads(store.read_text()) if store.is_file() else {}
            results[f"{name} {index_runtime} {query_runtime}"] = result
            store.write_text(json.dumps(results, indent=2))
            write_report(results, args.out)


def write_report(results: dict, out: Path) -> None:
    """Render every stored result as the docs/perf table, with differences to torch/torch."""
    rows = []
    for key, result in sorted(results.items()):
        name, index_runtime, query_runtime = key.split(" ")
        # the same index queried in float32: what the query backend alone changes
        reference = results.get(f"{name} {index_runtime} torch") or results.get(f"{name} {index_runtime} onnx-fp32")
        row = [name, index_runtime, query_runtime]
        for mode in MODES:
            mrr = result["modes"][mode]["mrr@10"]
            row += [mrr, round(mrr - reference["modes"][mode]["mrr@10"], 4) if reference else None]
        row.append(result["modes"]["hybrid"]["latency_ms_p50"])
        rows.append(row)
        print(*row, sep="\t", flush=True)
    columns = ["collection", "index backend", "query backend"]
    for mode in MODES:
        columns += [f"{mode} MRR@10", f"{mode} Δ vs float32 queries"]
    columns.append("hybrid p50 ms")
    report = {
        "title": "Embedding backends: souyi eval MRR@10 by index and query backend",
        "command": "nice -n 10 python -m bench.embed_quality --work /tmp/souyi-b",
        "machine": f"{machine()}, shared with other jobs",
        "columns": columns,
        "rows": rows,
        "notes": "Δ is against the same index queried in float32 (torch, or onnx-fp32: the same vectors to cosine "
        ">= 0.99999), so it shows what the query backend alone changes; compare rows of one collection for the "
        "index backend. The default is onnx-fp32 passages with onnx-int8 queries. Indexes of different backends "
        "were built at different times of the project (the torch and onnx-int8 ones before the latest fusion "
        "changes), so compare index backends with care. "
        "Latencies were taken on a machine shared with other jobs and are indicative only.",
    }
    write_perf(out, report)


if __name__ == "__main__":
    main()
