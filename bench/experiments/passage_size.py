"""MRR@10 of each mode against the passage size used at indexing time.

    python -m bench.experiments.passage_size ../shared/eval/xquad_en-zh ../shared/eval/xquad_zh-zh \
        --sizes 100 150 250 400 [--out docs/perf/passage_size.json]

Every size re-indexes (re-embeds) the collection, so this takes minutes per size.
Prints one line of JSON per (collection, size) and a table at the end, and merges the rows into
``--out`` (one row per set and size), which docs/quality.md shows.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import add_out, parser_for, read_json, write_json
from search.evaluate import evaluate, load_collection


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("collections", nargs="+", type=Path)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 150, 250, 400])
    add_out(parser, "passage_size")
    args = parser.parse_args(argv)
    rows = []
    for path in args.collections:
        collection = load_collection(path)
        for size in args.sizes:
            result = evaluate(collection, modes=("dense", "hybrid"), passage_size=size)
            row = {"collection": collection.name, "passage_size": size, "n_passages": result["n_passages"]}
            row.update({mode: m["mrr@10"] for mode, m in result["modes"].items()})
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{'collection':<16}{'size':>6}{'passages':>10}{'dense':>8}{'hybrid':>8}")
    for row in rows:
        print(f"{row['collection']:<16}{row['passage_size']:>6}{row['n_passages']:>10}"
              f"{row['dense']:>8.4f}{row['hybrid']:>8.4f}")
    fresh = {(r["collection"], r["passage_size"]) for r in rows}
    merged = [r for r in read_json(args.out, []) if (r["collection"], r["passage_size"]) not in fresh] + rows
    write_json(args.out, sorted(merged, key=lambda r: (r["collection"], r["passage_size"])))


if __name__ == "__main__":
    main()
