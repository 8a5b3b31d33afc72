"""Latency of the query syntax: an exact phrase, one exclusion against none, facet counting, the worst phrase.

    python -m bench.query_syntax --index /tmp/souyi-perf/100k

Runs on an index from ``bench.synth_index`` (real sentences, recombined) the
way ``bench.latency`` does, with real eval questions embedded at run time.
Per question, interleaved so that load from other processes falls on every
row alike:

* ``hybrid`` -- the question as typed, and ``hybrid, one exclusion`` -- the
  same with ``-WORD`` added (a jieba word of two or more Chinese characters
  cut from a random passage): their difference is what one exclusion costs;
* ``phrase`` -- a four-character phrase cut from a random passage, alone (a
  query of constraints only, ranked by the phrase's BM25), and
  ``hybrid + phrase`` -- the question with that phrase added;
* ``facet counting, 1,000 hits`` -- :func:`search.results.count_facets` over
  the stored records of 1,000 passages for ``doc`` and ``shard`` (the
  counting alone), and ``query() with facets`` -- the whole
  :meth:`Searcher.query` that ranks the full result list (1,000 deep) and
  counts it.

Then the worst phrases, a few times each: ``worst phrase, common bigrams`` is
three characters XYZ where XY is the index's most frequent bigram and YZ the
most frequent one starting with Y (its candidates hold both bigrams, and each
candidate's text is read and checked); ``worst phrase, one character`` is the
most frequent character alone (answered by the union of the postings of
every bigram holding it, no text read); ``worst phrase, a lone digit`` yields
no index term, so every passage's text is checked.  The "texts checked"
column counts the passages whose text a phrase (or excluded word) makes the
search read.
Rows are merged into ``docs/perf/query_syntax.json`` by passage count.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np

from bench import common
from indexer.analyze import BIGRAM_PREFIX, is_cjk
from search import Searcher
from search.constraints import candidates
from search.results import count_facets

COLUMNS = ["passages", "query", "p50 ms", "p99 ms", "texts checked"]
FACETS = ["doc", "shard"]
#: Passages whose records are counted by the facet row (the most a result list holds).
FACET_HITS = 1000


def probes(snap, n: int, seed: int = 7) -> list[tuple[str, str]]:
    """``(phrase, word)`` pairs cut from random passages: a four-character Chinese phrase and a word of two or
    more Chinese characters (jieba's), to add as a phrase and as an exclusion."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    while len(out) < n:
        ids = [int(snap.bm25.row_ids[rng.randrange(snap.size)]) for _ in range(50)]
        for rec in snap.passages(ids).values():
            runs = [i for i in range(len(rec.text) - 3) if all(is_cjk(c) for c in rec.text[i : i + 4])]
            words = [w for w, _, _ in snap.analyzer.words(rec.text) if len(w) >= 2 and all(is_cjk(c) for c in w)]
            if runs and words:
                start = rng.choice(runs)
                out.append((rec.text[start : start + 4], rng.choice(words)))
    return out[:n]


def worst_phrases(snap) -> dict[str, str]:
    """The phrases of the most common characters (see the module docstring), from the BM25 postings."""
    bm25 = snap.bm25
    df = np.diff(bm25.offsets)
    bigrams = sorted(((int(df[t]), term[len(BIGRAM_PREFIX):]) for term, t in bm25.terms.items()
                      if term.startswith(BIGRAM_PREFIX)), reverse=True)
    first = bigrams[0][1]
    follow = next(pair for _, pair in bigrams if pair[0] == first[1] and pair != first)
    return {"worst phrase, common bigrams": first + follow[1], "worst phrase, one character": first[0],
            "worst phrase, a lone digit": "1"}


def checked(snap, phrase: str) -> int:
    """Passages whose text a phrase constraint reads and checks (none when the postings are the answer)."""
    found, exact = candidates(snap, phrase)
    return 0 if exact else len(found)


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--worst-runs", type=int, default=5, help="runs of each worst phrase")
    common.add_eval_dir(parser)
    common.add_out(parser, "query_syntax")
    args = parser.parse_args(argv)
    questions = common.eval_questions(args.queries + args.warmup, eval_dir=args.eval_dir)
    searcher = Searcher.open(args.index)
    snap = common.snapshot(searcher)
    n = snap.size
    pairs = probes(snap, len(questions))
    facet_ids = [int(i) for i in np.random.default_rng(3).choice(snap.bm25.row_ids, min(FACET_HITS, n), replace=False)]
    records = snap.passages(facet_ids)  # the facet row times the counting, not the read
    runs = {
        "hybrid": lambda q, phrase, word: searcher.search(q),
        "hybrid, one exclusion": lambda q, phrase, word: searcher.search(f"{q} -{word}"),
        "phrase": lambda q, phrase, word: searcher.search(f'"{phrase}"'),
        "hybrid + phrase": lambda q, phrase, word: searcher.search(f'{q} "{phrase}"'),
        f"facet counting, {FACET_HITS:,} hits": lambda q, phrase, word: count_facets(records.values(), FACETS),
        "query() with facets": lambda q, phrase, word: searcher.query(q, facets=FACETS),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    found: dict[str, list[int]] = {name: [] for name in runs}
    for i, (q, (phrase, word)) in enumerate(zip(questions, pairs, strict=True)):
        for name, run in runs.items():
            tick = time.perf_counter()
            run(q, phrase, word)
            if i >= args.warmup:
                times[name].append((time.perf_counter() - tick) * 1000)
        if i >= args.warmup:
            found["phrase"].append(checked(snap, phrase))
            found["hybrid, one exclusion"].append(checked(snap, word))
    rows = [[n, name, round(float(np.percentile(t, 50)), 1), round(float(np.percentile(t, 99)), 1),
             round(float(np.mean(found[name]))) if found[name] else "-"] for name, t in times.items()]
    for name, phrase in worst_phrases(snap).items():
        t = common.times_ms(searcher.search, [f'"{phrase}"'] * args.worst_runs)
        rows.append([n, f"{name} ({phrase})", round(float(np.percentile(t, 50)), 1),
                     round(float(np.max(t)), 1), checked(snap, phrase)])
    for row in rows:
        print(row)
    merged = sorted(common.merged_rows(args.out, rows, lambda row: row[0] == n), key=lambda row: row[0])
    common.write_perf(args.out, {
        "title": "Query syntax: phrases, exclusions, facets",
        "command": "python -m bench.query_syntax --index DIR   "
                   "(DIR from python -m bench.synth_index --passages N --out DIR)",
        "machine": common.machine(),
        "columns": COLUMNS,
        "rows": merged,
        "notes": f"{args.queries} real eval questions after {args.warmup} warm-up ones, k=10, one at a time, rows "
                 "interleaved per question; the worst phrases run "
                 f"{args.worst_runs} times (their p99 column is the slowest run). 'texts checked' = passages whose "
                 "text the phrase or excluded word makes the search read (mean per query; a phrase of one or two "
                 "Chinese characters is answered by postings alone and reads none). Exclusion cost = the 'hybrid, one "
                 "exclusion' row minus the 'hybrid' row. Index: bench.synth_index (sentences recur about N / "
                 "11,600 times, so phrases have more candidates than in a real corpus), its vector index the "
                 "store's choice for each size (as in the latency table). Measured while other jobs shared the "
                 "2-core machine: read as upper bounds.",
    })


if __name__ == "__main__":
    main()
