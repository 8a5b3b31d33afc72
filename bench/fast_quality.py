"""What fast mode costs in quality: MRR@10 of each eval set indexed by default and with ``fast=True``.

    nice -n 10 python -m bench.fast_quality ../shared/eval/xquad_zh-zh ../shared/eval/xquad_en-zh \
        ../shared/eval/cmrc2018_dev

Both indexes of a set are built in this run from the same code (so the comparison does not lean
on an older figure), searched by the same searcher settings (int8 queries), and measured by
``search.evaluate`` exactly as ``souyi eval`` (``--fast``) measures them.  Rows are merged into
``--out`` by set; docs/quality.md shows them ("Fast indexing").
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import add_out, parser_for, read_json, write_json
from search.evaluate import evaluate, load_collection

MODES = ("dense", "hybrid")


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("collections", nargs="+", type=Path)
    add_out(parser, "fast_quality")
    args = parser.parse_args(argv)
    for path in args.collections:
        collection = load_collection(path)
        row: dict = {"collection": collection.name}
        for label, fast in (("default", False), ("fast", True)):
            result = evaluate(collection, modes=MODES, fast=fast)
            row.update({f"{label} {mode}": m["mrr@10"] for mode, m in result["modes"].items()})
            row[f"{label} index s"] = result["index_seconds"]
            row["n_passages"] = result["n_passages"]
        row["hybrid change"] = round(row["fast hybrid"] - row["default hybrid"], 4)
        print(json.dumps(row), flush=True)
        # merged after every set: a run stopped early keeps the sets it finished
        kept = [old for old in read_json(args.out, []) if old["collection"] != row["collection"]]
        write_json(args.out, sorted([*kept, row], key=lambda r: r["collection"]))


if __name__ == "__main__":
    main()
