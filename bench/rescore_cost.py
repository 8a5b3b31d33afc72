"""What the rescorer costs per query: its query embedding and reading its vectors for the candidates.

    python -m bench.rescore_cost --index /tmp/souyi-quality/corpus-ee95943279b4 \
        --queries ../shared/eval/xquad_en-zh/queries.jsonl --out docs/perf/rescore_cost.json

Times each part separately over the same queries (medians and p99 in ms, after a warm-up) and
the whole hybrid search, so the rescorer's share of query latency is visible.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.common import add_out, parser_for, snapshot, times_ms, write_json
from search import Searcher
from search.searcher import CANDIDATES


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="a queries.jsonl ({'text': ...} per line)")
    parser.add_argument("--n", type=int, default=200)
    add_out(parser, "rescore_cost")
    args = parser.parse_args(argv)
    texts = [json.loads(line)["text"] for line in args.queries.read_text(encoding="utf-8").splitlines() if line]
    texts = texts[: args.n]
    searcher = Searcher.open(args.index)
    if searcher.rescorer is None:
        raise SystemExit(f"{args.index} has no rescorer")
    snap = snapshot(searcher)
    for text in texts[:10]:  # warm-up: models, jieba, caches
        searcher.search(text)
    vectors = searcher.embedder.encode_queries(texts)
    candidate_ids = [
        [int(i) for i in snap.dense(v, CANDIDATES, None).ids] + [int(i) for i in snap.lexical(
            snap.analyzer.tokens(t), CANDIDATES, None).ids]
        for v, t in zip(vectors, texts, strict=True)
    ]
    parts = {
        "primary model query embedding": times_ms(lambda t: searcher.embedder.encode_queries([t]), texts),
        "rescorer query embedding": times_ms(lambda t: searcher.rescorer.encode_queries([t]), texts),
        "rescorer vectors of the candidates (read + decode)": times_ms(
            lambda ids: snap.sentence_vectors(sorted(set(ids))), candidate_ids),
        "whole hybrid search (k=10)": times_ms(lambda t: searcher.search(t), texts),
    }
    rows = [[name, round(float(np.median(ms)), 2), round(float(np.percentile(ms, 99)), 2)]
            for name, ms in parts.items()]
    print(f"{'part':<55}{'p50 ms':>10}{'p99 ms':>10}")
    for name, p50, p99 in rows:
        print(f"{name:<55}{p50:>10.2f}{p99:>10.2f}")
    write_json(args.out, {"index": str(args.index), "passages": searcher.size, "queries": len(texts),
                          "candidates_mean": round(float(np.mean([len(set(c)) for c in candidate_ids])), 1),
                          "columns": ["part", "p50 ms", "p99 ms"], "rows": rows})


if __name__ == "__main__":
    main()
