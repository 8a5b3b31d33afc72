"""MRR@10 of each mode against the passage size used at indexing time.

    python bench/passage_size.py ../shared/eval/xquad_en-zh ../shared/eval/xquad_zh-zh --sizes 100 150 250 400

Every size re-indexes (re-embeds) the collection, so this takes minutes per size.
Prints one line of JSON per (collection, size) and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.evaluate import evaluate, load_collection  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collections", nargs="+", type=Path)
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 150, 250, 400])
    parser.add_argument("--json", type=Path, help="merge the results into this file (one row per set and size)")
    args = parser.parse_args()
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
    if args.json:
        old = json.loads(args.json.read_text(encoding="utf-8")) if args.json.is_file() else []
        fresh = {(r["collection"], r["passage_size"]) for r in rows}
        merged = [r for r in old if (r["collection"], r["passage_size"]) not in fresh] + rows
        merged.sort(key=lambda r: (r["collection"], r["passage_size"]))
        args.json.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
