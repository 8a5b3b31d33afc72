"""The worst query time one can construct: 1000-character queries of the index's most frequent terms.

    python -m bench.query_bound --index INDEX --json /tmp/query_bound.json   # python -m bench.reliability runs it

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

import json
import statistics
import sys
from pathlib import Path

from bench.common import parser_for, snapshot, term_frequencies, times_ms, write_json
from indexer.analyze import BIGRAM_PREFIX
from search import MAX_DEPTH, MAX_QUERY_CHARS, MODES, Searcher

ORDINARY = "浙江省软件产业的发展目标是什么"
PAGINGS = ((10, 0), (MAX_DEPTH, 0), (1, MAX_DEPTH - 1))


def frequent_terms(searcher: Searcher, count: int) -> list[str]:
    """The ``count`` terms found in the most passages, as text a user could type."""
    frequency = term_frequencies(snapshot(searcher))
    return [term.removeprefix(BIGRAM_PREFIX) for term, _ in frequency.most_common(count)]


def pathological_queries(searcher: Searcher, chars: int = MAX_QUERY_CHARS) -> dict[str, str]:
    """Queries of exactly ``chars`` characters built from the index's own frequent terms."""
    terms = frequent_terms(searcher, 5000)
    distinct, length = [], 0
    for term in terms:
        if length + len(term) + 1 > chars:
            break
        distinct.append(term)
        length += len(term) + 1
    repeated = (terms[0] + " ") * chars
    joined = " ".join(distinct)
    return {
        "ordinary question": ORDINARY,
        "most frequent term repeated": repeated[:chars],
        f"{len(distinct)} most frequent terms": (joined + " " + joined)[:chars],
    }


def time_search(searcher: Searcher, query: str, mode: str, k: int, offset: int, repeats: int) -> dict:
    hits = searcher.search(query, k=k, offset=offset, mode=mode)  # warm-up: caches, lazy loads
    ms = times_ms(lambda _: searcher.search(query, k=k, offset=offset, mode=mode), range(repeats))
    return {"median_ms": round(statistics.median(ms), 1), "max_ms": round(max(ms), 1), "hits": len(hits)}


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__)
    parser.add_argument("--index", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chars", type=int, default=MAX_QUERY_CHARS,
                        help="query length (default: the limit, %(default)s characters)")
    parser.add_argument("--json", type=Path, help="also write the rows here (bench.reliability reads them)")
    args = parser.parse_args(argv)
    searcher = Searcher.open(args.index)
    rows = []
    for name, query in pathological_queries(searcher, args.chars).items():
        snap = snapshot(searcher)
        distinct = set(snap.analyzer.tokens(query))
        frequency = term_frequencies(snap)
        postings = sum(frequency[t] for t in distinct)
        for mode in MODES:
            for k, offset in PAGINGS:
                timing = time_search(searcher, query, mode, k, offset, args.repeats)
                rows.append({"query": name, "chars": len(query), "distinct_terms": len(distinct),
                             "postings": postings, "mode": mode, "k": k, "offset": offset, **timing})
                print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    worst = max(rows, key=lambda row: row["median_ms"])
    result = {"index": args.index, "passages": searcher.size, "repeats": args.repeats, "rows": rows,
              "worst": worst, "command": "python -m bench.query_bound " + " ".join(argv or sys.argv[1:])}
    if args.json:
        write_json(args.json, result)
    print(f"worst: {worst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
