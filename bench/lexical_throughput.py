"""Lexical retrieval speed: souyi's BM25Index against bm25s and rank_bm25, same tokens, same corpus.

Corpus: N distinct passages of real Chinese text, made by recombining the sentences of the
eval corpora (../shared/eval/*/corpus.jsonl) and the bundled sample report at random (fixed
seed) into passages of about 100 characters, the size `souyi index` cuts.  bm25s and rank_bm25
come with the ``bench`` extra; a library not installed is left out of the table.  Every passage and
query is tokenised once by souyi's analyzer (jieba search mode + CJK bigrams, folded), and
the three libraries index and score those same token lists with k1 = 1.2, b = 0.75:

- souyi: ``BM25Index.build`` / ``top`` (what the searcher calls: MaxScore top-n);
- bm25s: ``BM25(method="lucene")`` (souyi's formula up to a constant factor), ``retrieve`` one
  query at a time, and also all queries in one call (its batched mode);
- rank_bm25: ``BM25Okapi`` ``get_scores`` + ``bm25.best_rows`` (the same order; slow: fewer queries).

Queries are the questions of the Chinese eval sets.  Reported: indexing seconds, queries/s
for scoring + top-100 (medians of rounds) and how often each library's top 10 equals souyi's.

    nice -n 10 python -m bench.lexical_throughput --passages 50000 --rounds 3
"""

from __future__ import annotations

import importlib.util
import logging
import random
import statistics
from importlib.metadata import version

import numpy as np

from bench import common
from indexer.analyze import default_analyzer
from indexer.bm25 import BM25Index, best_rows
from indexer.split import DEFAULT_PASSAGE_SIZE

logger = logging.getLogger(__name__)
K = 100
OURS = "souyi BM25Index"


def peers(corpus: list[list[str]], queries: list[list[str]], rank_bm25_queries: int) -> dict[str, tuple]:
    """The installed peer libraries: name -> (build, search one query, its queries, search all at once)."""
    out: dict[str, tuple] = {}
    if importlib.util.find_spec("bm25s"):
        import bm25s

        def build_bm25s() -> bm25s.BM25:
            index = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
            index.index(corpus, show_progress=False)
            return index

        def bm25s_one(index: bm25s.BM25, query: list[str]) -> np.ndarray:
            known = [t for t in query if t in index.vocab_dict]  # bm25s refuses unknown tokens; they score 0 anyway
            if not known:
                return np.zeros(0, np.int64)
            return index.retrieve([known], k=K, show_progress=False, n_threads=1)[0][0]

        def bm25s_all(index: bm25s.BM25, qs: list[list[str]]) -> object:
            known = [[t for t in q if t in index.vocab_dict] or [next(iter(index.vocab_dict))] for q in qs]
            return index.retrieve(known, k=K, show_progress=False, n_threads=1)

        out["bm25s"] = (build_bm25s, bm25s_one, queries, bm25s_all)
    if importlib.util.find_spec("rank_bm25"):
        from rank_bm25 import BM25Okapi

        out["rank_bm25 BM25Okapi"] = (lambda: BM25Okapi(corpus, k1=1.2, b=0.75),
                                      lambda index, q: best_rows(index.get_scores(q), K),
                                      queries[:rank_bm25_queries], None)
    missing = {"bm25s", "rank_bm25 BM25Okapi"} - out.keys()
    if missing:
        logger.warning("not installed (pip install 'souyi[bench]'), left out: %s", ", ".join(sorted(missing)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = common.parser_for(__doc__, summary_only=True)
    common.add_eval_dir(parser)
    parser.add_argument("--passages", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rank-bm25-queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    common.add_out(parser, "lexical")
    args = parser.parse_args(argv)

    analyzer = default_analyzer()
    sentences = common.real_sentences(common.real_passages(args.eval_dir))
    runs = common.sentence_runs([len(s) for s in sentences], args.passages, random.Random(0),
                         int(DEFAULT_PASSAGE_SIZE * 0.7), DEFAULT_PASSAGE_SIZE * 2)
    passages = ["".join(sentences[i] for i in run) for run in runs]
    tokenize_seconds, corpus = common.timed(lambda: [analyzer.tokens(p) for p in passages])
    questions = common.first_questions(args.eval_dir, ("xquad_zh-zh", "cmrc2018_dev"), args.queries)
    queries = [list(dict.fromkeys(analyzer.tokens(q))) for qs in questions.values() for q in qs][: args.queries]
    queries = [q for q in queries if q]
    print(
        f"{len(passages)} passages, {sum(map(len, corpus))} tokens (analyzer {tokenize_seconds:.1f} s), "
        f"{len(queries)} queries",
        flush=True,
    )
    systems = {OURS: (lambda: BM25Index.build(corpus), lambda index, q: index.top(q, K)[0], queries, None)}
    systems.update(peers(corpus, queries, args.rank_bm25_queries))
    index_seconds: dict[str, list[float]] = {name: [] for name in systems}
    indexes = {}
    for _ in range(args.rounds):
        for name, (build, *_) in systems.items():
            seconds, indexes[name] = common.timed(build)
            index_seconds[name].append(seconds)

    qps: dict[str, list[float]] = {}
    tops = {}
    for _ in range(args.rounds):
        for name, (_, search, qs, search_all) in systems.items():
            index = indexes[name]
            seconds, tops[name] = common.timed(lambda search=search, qs=qs, index=index: [search(index, q) for q in qs])
            qps.setdefault(name, []).append(len(qs) / seconds)
            if search_all is not None:
                seconds, _ = common.timed(lambda search_all=search_all, index=index: search_all(index, queries))
                qps.setdefault(f"{name}, all queries in one call", []).append(len(queries) / seconds)

    def agreement(name: str) -> float:
        pairs = zip(tops[OURS], tops[name], strict=False)
        return float(np.mean([list(a[:10]) == list(b[:10]) for a, b in pairs]))

    columns = ["library", "index seconds (median)", "queries/s, top-100 (median)", "× bm25s", "top-10 = souyi's"]
    reference = statistics.median(qps["bm25s"]) if "bm25s" in qps else None
    rows = []
    for name in qps:
        build_name = next(n for n in systems if name.startswith(n))
        rows.append([
            name,
            round(statistics.median(index_seconds[build_name]), 2),
            round(statistics.median(qps[name]), 1),
            round(statistics.median(qps[name]) / reference, 2) if reference else None,
            round(agreement(build_name), 3),
        ])
    print("\t".join(columns))
    for row in rows:
        print("\t".join(str(v) for v in row))
    versions = f", bm25s {version('bm25s')}" if "bm25s" in systems else ""
    common.write_perf(args.out, {
        "title": "Lexical retrieval: souyi BM25Index vs bm25s vs rank_bm25 (same tokens, same corpus)",
        "command": f"nice -n 10 python -m bench.lexical_throughput --passages {args.passages} --rounds {args.rounds} "
        f"--queries {args.queries} --rank-bm25-queries {args.rank_bm25_queries}",
        "machine": f"{common.machine()} (shared with other jobs){versions}",
        "columns": columns,
        "rows": rows,
        "notes": f"{len(passages)} distinct passages recombined from real sentences (eval corpora + sample report), "
        f"{sum(map(len, corpus))} analyzer tokens; {len(queries)} Chinese eval questions "
        f"({args.rank_bm25_queries} for rank_bm25), one at a time unless stated, one thread. Medians of "
        f"{args.rounds} rounds; ratios from the same run. rank_bm25's Okapi IDF differs from Lucene's, hence "
        "its lower agreement. Tokenising the corpus (shared by all three, not in the index times) took "
        f"{tokenize_seconds:.1f} s.",
    })


if __name__ == "__main__":
    main()
