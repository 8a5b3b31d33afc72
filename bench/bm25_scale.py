"""The BM25 side alone at scale: load time and memory, scoring time, and the cost of a small update.

    python -m bench.bm25_scale --index /tmp/souyi-perf/1m

Loads the index's BM25 arrays through the store (what a search process does
on open), times the top-100 of real eval questions' analyzer terms two ways,
interleaved per question — scoring every row (``BM25Index.scores`` + top-100
selection) and ``BM25Index.top`` (MaxScore, what searches use), checking that
both give the same rows — and applies a one-document update (50 passages) the
way a commit does (``BM25Index.updated``).  Rows are merged
into ``docs/perf/bm25_scale.json`` by passage count.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench import common
from indexer.analyze import Analyzer
from indexer.bm25 import best_rows

COLUMNS = ["passages", "postings", "arrays MB", "load s", "RSS growth on load MB", "score all p50 ms",
           "score all p99 ms", "top-100 p50 ms", "top-100 p99 ms", "update 50 passages s"]


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    common.add_eval_dir(parser)
    common.add_out(parser, "bm25_scale")
    args = parser.parse_args(argv)
    reader = common.IndexReader.open(args.index)
    analyzer = Analyzer.from_config(reader.manifest["analyzer"], reader.userdict())
    terms = [analyzer.tokens(q) for q in common.eval_questions(args.queries, eval_dir=args.eval_dir)]
    before = common.rss_bytes()
    tick = time.perf_counter()
    bm25 = reader.load_lexical()
    load_s = time.perf_counter() - tick
    grown = common.rss_bytes() - before
    arrays = sum(a.nbytes for a in (bm25.offsets, bm25.rows, bm25.tfs, bm25.doc_len, bm25.row_ids, bm25.impacts))
    times, top_times = [], []
    for query in terms:
        tick = time.perf_counter()
        scores = bm25.scores(query)
        positive = best_rows(scores, 100)
        times.append((time.perf_counter() - tick) * 1000)
        tick = time.perf_counter()
        rows, _ = bm25.top(query, 100)
        top_times.append((time.perf_counter() - tick) * 1000)
        if not np.array_equal(rows, positive):
            raise AssertionError(f"BM25Index.top differs from scoring every row for {query}")
    sample = [t for query in terms[:50] for t in query][: 50 * 90]
    batch = [sample[i : i + 90] for i in range(0, len(sample), 90)]
    first = int(bm25.row_ids[-1]) + 1
    tick = time.perf_counter()
    bm25.updated([], list(range(first, first + len(batch))), batch)
    update_s = time.perf_counter() - tick
    row = [bm25.n_rows, len(bm25.rows), round(arrays / 2**20), round(load_s, 2), round(grown / 2**20),
           *(round(float(np.percentile(t, q)), 2) for t in (times, top_times) for q in (50, 99)), round(update_s, 2)]
    print(dict(zip(COLUMNS, row, strict=True)))
    common.write_perf(args.out, {
        "title": "BM25 at scale (load, score, update)",
        "command": "python -m bench.bm25_scale --index DIR   (DIR from bench/synth_index.py)",
        "machine": common.machine(),
        "columns": COLUMNS,
        "rows": sorted(common.merged_rows(args.out, [row], lambda r: r[0] == row[0] or len(r) != len(COLUMNS))),
        "notes": f"{args.queries} real eval questions, tokenized by the index's analyzer; 'score all' = BM25 over "
                 "all rows plus the top-100 selection, 'top-100' = BM25Index.top (MaxScore; same rows, checked). "
                 "Wall time, the two interleaved per question. The update adds 50 passages (terms drawn from the "
                 "questions) with BM25Index.updated, which recomputes IDF and every impact as a commit does. "
                 "The synthetic text repeats each real sentence ~N/11,600 times, so lists are longer than real.",
    })


if __name__ == "__main__":
    main()
