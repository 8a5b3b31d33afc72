"""Lexical retrieval speed: souyi's BM25Index against bm25s and rank_bm25, same tokens, same corpus.

Corpus: N distinct passages of real Chinese text, made by recombining the sentences of the
eval corpora (../shared/eval/*/corpus.jsonl) and the bundled sample report at random (fixed
seed) into passages of about 100 characters, the size `souyi index` cuts.  Every passage and
query is tokenised once by souyi's analyzer (jieba search mode + CJK bigrams, folded), and
the three libraries index and score those same token lists with k1 = 1.2, b = 0.75:

- souyi: ``BM25Index.build`` / ``top`` (what the searcher calls: MaxScore top-n);
- bm25s: ``BM25(method="lucene")`` (souyi's formula up to a constant factor), ``retrieve`` one
  query at a time, and also all queries in one call (its batched mode);
- rank_bm25: ``BM25Okapi`` ``get_scores`` + ``bm25.best_rows`` (the same order; slow: fewer queries).

Queries are the questions of the Chinese eval sets.  Reported: indexing seconds, queries/s
for scoring + top-100 (medians of rounds) and how often each library's top 10 equals souyi's.

    nice -n 10 python bench/lexical_throughput.py --passages 50000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexer.analyze import default_analyzer  # noqa: E402
from indexer.bm25 import BM25Index, best_rows  # noqa: E402
from indexer.split import DEFAULT_PASSAGE_SIZE, sentences  # noqa: E402
from souyi import SAMPLE_DIR  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
K = 100


def source_sentences(eval_dir: Path) -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE_DIR.glob("*.txt"))]
    for corpus in sorted(eval_dir.glob("*/corpus.jsonl")):
        texts += [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines()]
    found = {text[a:b].strip() for text in texts for a, b in sentences(text)}
    return sorted(s for s in found if len(s) >= 4)


def make_passages(pool: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` distinct passages of random sentences, each up to about one passage size."""
    rng = random.Random(seed)
    passages: dict[str, None] = {}
    while len(passages) < n:
        text = rng.choice(pool)
        while len(text) < DEFAULT_PASSAGE_SIZE * 0.7:
            text += rng.choice(pool)
        passages[text[: DEFAULT_PASSAGE_SIZE * 2]] = None
    return list(passages)


def chinese_queries(eval_dir: Path, n: int) -> list[str]:
    out = []
    for name in ("xquad_zh-zh", "cmrc2018_dev"):
        lines = (eval_dir / name / "queries.jsonl").read_text(encoding="utf-8").splitlines()
        out += [json.loads(line)["text"] for line in lines]
    return out[:n]


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-dir", type=Path, default=EVAL)
    parser.add_argument("--passages", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rank-bm25-queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "perf" / "lexical.json")
    args = parser.parse_args()

    import bm25s
    from rank_bm25 import BM25Okapi

    analyzer = default_analyzer()
    passages = make_passages(source_sentences(args.eval_dir), args.passages)
    tokenize_seconds, corpus = timed(lambda: [analyzer.tokens(p) for p in passages])
    queries = [list(dict.fromkeys(analyzer.tokens(q))) for q in chinese_queries(args.eval_dir, args.queries)]
    queries = [q for q in queries if q]
    print(
        f"{len(passages)} passages, {sum(map(len, corpus))} tokens (analyzer {tokenize_seconds:.1f} s), "
        f"{len(queries)} queries",
        flush=True,
    )

    def build_ours() -> BM25Index:
        return BM25Index.build(corpus)

    def build_bm25s() -> bm25s.BM25:
        index = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        index.index(corpus, show_progress=False)
        return index

    def build_rank() -> BM25Okapi:
        return BM25Okapi(corpus, k1=1.2, b=0.75)

    builders = {"souyi BM25Index": build_ours, "bm25s": build_bm25s, "rank_bm25 BM25Okapi": build_rank}
    index_seconds = {name: [] for name in builders}
    indexes = {}
    for _ in range(args.rounds):
        for name, build in builders.items():
            seconds, indexes[name] = timed(build)
            index_seconds[name].append(seconds)

    ours, bm25s_index, rank = indexes["souyi BM25Index"], indexes["bm25s"], indexes["rank_bm25 BM25Okapi"]
    vocabulary = bm25s_index.vocab_dict

    def bm25s_one(query: list[str]) -> np.ndarray:
        known = [t for t in query if t in vocabulary]  # bm25s refuses unknown tokens; they score 0 anyway
        if not known:
            return np.zeros(0, np.int64)
        docs, _ = bm25s_index.retrieve([known], k=K, show_progress=False, n_threads=1)
        return docs[0]

    searchers = {
        "souyi BM25Index": (lambda q: ours.top(q, K)[0], queries),
        "bm25s": (bm25s_one, queries),
        "rank_bm25 BM25Okapi": (lambda q: best_rows(rank.get_scores(q), K), queries[: args.rank_bm25_queries]),
    }
    qps = {name: [] for name in searchers}
    qps["bm25s, all queries in one call"] = []
    tops = {}
    for _ in range(args.rounds):
        for name, (search, qs) in searchers.items():
            seconds, tops[name] = timed(lambda search=search, qs=qs: [search(q) for q in qs])
            qps[name].append(len(qs) / seconds)
        known = [[t for t in q if t in vocabulary] or [next(iter(vocabulary))] for q in queries]
        seconds, _ = timed(lambda known=known: bm25s_index.retrieve(known, k=K, show_progress=False, n_threads=1))
        qps["bm25s, all queries in one call"].append(len(queries) / seconds)

    def agreement(name: str) -> float:
        pairs = zip(tops["souyi BM25Index"], tops[name], strict=False)
        return float(np.mean([list(a[:10]) == list(b[:10]) for a, b in pairs]))

    columns = ["library", "index seconds (median)", "queries/s, top-100 (median)", "× bm25s", "top-10 = souyi's"]
    reference = statistics.median(qps["bm25s"])
    rows = []
    for name in qps:
        build_name = "bm25s" if name.startswith("bm25s") else name
        same = agreement(build_name) if build_name in tops else None
        rows.append(
            [
                name,
                round(statistics.median(index_seconds[build_name]), 2),
                round(statistics.median(qps[name]), 1),
                round(statistics.median(qps[name]) / reference, 2),
                None if same is None else round(same, 3),
            ]
        )
    print("\t".join(columns))
    for row in rows:
        print("\t".join(str(v) for v in row))
    report = {
        "title": "Lexical retrieval: souyi BM25Index vs bm25s vs rank_bm25 (same tokens, same corpus)",
        "command": f"nice -n 10 python bench/lexical_throughput.py --passages {args.passages} --rounds {args.rounds} "
        f"--queries {args.queries} --rank-bm25-queries {args.rank_bm25_queries}",
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores (shared with other jobs), "
        f"Python {platform.python_version()}, bm25s {bm25s.__version__}",
        "columns": columns,
        "rows": rows,
        "notes": f"{len(passages)} distinct passages recombined from real sentences (eval corpora + sample report), "
        f"{sum(map(len, corpus))} analyzer tokens; {len(queries)} Chinese eval questions "
        f"({args.rank_bm25_queries} for rank_bm25), one at a time unless stated, one thread. Medians of "
        f"{args.rounds} rounds; ratios from the same run. rank_bm25's Okapi IDF differs from Lucene's, hence "
        "its lower agreement. Tokenising the corpus (shared by all three, not in the index times) took "
        f"{tokenize_seconds:.1f} s.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
