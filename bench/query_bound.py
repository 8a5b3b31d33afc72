"""The worst query time one can construct: 1000-character queries of the index's most frequent terms.

    python bench/query_bound.py --index INDEX --json docs/reliability/query_bound_INDEX.json

A search's cost grows with the distinct terms the lexical side scores (each
term adds its whole posting list), with ``k + offset`` (passages fetched,
highlighted and checked for matched terms) and with the query length (the
model reads at most 512 tokens).  So the pathological queries are the longest
allowed (``MAX_QUERY_CHARS``) made of the terms that occur in the most
passages: the single most frequent term repeated, and as many distinct
frequent terms as fit; each at the deepest paging allowed (``k=MAX_DEPTH``,
and ``k=1, offset=MAX_DEPTH-1``) in every mode.  An ordinary question is
timed alongside as the reference.  Times are medians of ``--repeats`` runs
(the first, warm-up run is not counted); the maximum is reported too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.analyze import BIGRAM_PREFIX  # noqa: E402
from search import MAX_DEPTH, MAX_QUERY_CHARS, MODES, Searcher  # noqa: E402

ORDINARY = "浙江省软件产业的发展目标是什么"
PAGINGS = ((10, 0), (MAX_DEPTH, 0), (1, MAX_DEPTH - 1))


def frequent_terms(searcher: Searcher, count: int) -> list[str]:
    """The ``count`` terms found in the most passages, as text a user could type."""
    bm25 = searcher.backend.snapshot().bm25
    frequency = np.diff(bm25.offsets)
    by_id = {t: term for term, t in bm25.terms.items()}
    order = np.argsort(-frequency, kind="stable")[:count]
    return [by_id[int(t)].removeprefix(BIGRAM_PREFIX) for t in order]


def pathological_queries(searcher: Searcher) -> dict[str, str]:
    """Queries of exactly ``MAX_QUERY_CHARS`` characters built from the index's own frequent terms."""
    terms = frequent_terms(searcher, 5000)
    distinct, length = [], 0
    for term in terms:
        if length + len(term) + 1 > MAX_QUERY_CHARS:
            break
        distinct.append(term)
        length += len(term) + 1
    repeated = (terms[0] + " ") * MAX_QUERY_CHARS
    joined = " ".join(distinct)
    return {
        "ordinary question": ORDINARY,
        "most frequent term repeated": repeated[:MAX_QUERY_CHARS],
        f"{len(distinct)} most frequent terms": (joined + " " + joined)[:MAX_QUERY_CHARS],
    }


def time_search(searcher: Searcher, query: str, mode: str, k: int, offset: int, repeats: int) -> dict:
    searcher.search(query, k=k, offset=offset, mode=mode)  # warm-up: caches, lazy loads
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        hits = searcher.search(query, k=k, offset=offset, mode=mode)
        seconds.append(time.perf_counter() - started)
    return {"median_ms": round(statistics.median(seconds) * 1000, 1), "max_ms": round(max(seconds) * 1000, 1),
            "hits": len(hits)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    searcher = Searcher.open(args.index)
    rows = []
    for name, query in pathological_queries(searcher).items():
        snap = searcher.backend.snapshot()
        distinct = set(snap.analyzer.tokens(query))
        frequency = np.diff(snap.bm25.offsets)
        postings = int(sum(frequency[snap.bm25.terms[t]] for t in distinct if t in snap.bm25.terms))
        for mode in MODES:
            for k, offset in PAGINGS:
                timing = time_search(searcher, query, mode, k, offset, args.repeats)
                rows.append({"query": name, "chars": len(query), "distinct_terms": len(distinct),
                             "postings": postings, "mode": mode, "k": k, "offset": offset, **timing})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    worst = max(rows, key=lambda row: row["median_ms"])
    result = {"index": args.index, "passages": searcher.size, "repeats": args.repeats, "rows": rows,
              "worst": worst, "command": "python bench/query_bound.py " + " ".join(argv or sys.argv[1:])}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"worst: {worst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
