"""What the rescorer costs per query: its query embedding and reading its vectors for the candidates.

    python bench/rescore_cost.py --index /tmp/souyi-quality/corpus-ee95943279b4 \
        --queries ../shared/eval/xquad_en-zh/queries.jsonl --json docs/rescore_cost.json

Times each part separately over the same queries (medians and p99 in ms, after a warm-up) and
the whole hybrid search, so the rescorer's share of query latency is visible.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search import Searcher  # noqa: E402
from search.searcher import CANDIDATES  # noqa: E402


def _timed(fn, items) -> list[float]:
    out = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="a queries.jsonl ({'text': ...} per line)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in args.queries.read_text(encoding="utf-8").splitlines() if line]
    texts = texts[: args.n]
    searcher = Searcher.open(args.index)
    if searcher.rescorer is None:
        raise SystemExit(f"{args.index} has no rescorer")
    snap = searcher.backend.snapshot()
    for text in texts[:10]:  # warm-up: models, jieba, caches
        searcher.search(text)
    vectors = searcher.embedder.encode_queries(texts)
    candidate_ids = [
        [int(i) for i in snap.dense(v, CANDIDATES, None).ids] + [int(i) for i in snap.lexical(
            snap.analyzer.tokens(t), CANDIDATES, None).ids]
        for v, t in zip(vectors, texts, strict=True)
    ]
    parts = {
        "primary model query embedding": _timed(lambda t: searcher.embedder.encode_queries([t]), texts),
        "rescorer query embedding": _timed(lambda t: searcher.rescorer.encode_queries([t]), texts),
        "rescorer vectors of the candidates (read + decode)": _timed(
            lambda ids: snap.sentence_vectors(sorted(set(ids))), candidate_ids),
        "whole hybrid search (k=10)": _timed(lambda t: searcher.search(t), texts),
    }
    rows = [[name, round(float(np.median(ms)), 2), round(float(np.percentile(ms, 99)), 2)]
            for name, ms in parts.items()]
    print(f"{'part':<55}{'p50 ms':>10}{'p99 ms':>10}")
    for name, p50, p99 in rows:
        print(f"{name:<55}{p50:>10.2f}{p99:>10.2f}")
    if args.json:
        result = {"index": str(args.index), "passages": searcher.size, "queries": len(texts),
                  "candidates_mean": round(float(np.mean([len(set(c)) for c in candidate_ids])), 1),
                  "columns": ["part", "p50 ms", "p99 ms"], "rows": rows}
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
