"""Ablation of the ranking levers on eval collections, everything else held fixed.

Every passage of a collection is scored once per query by each signal the
searcher has: the primary model (e5) passage cosine, the rescorer's (USE)
passage cosine and best-sentence cosine (stored in the index), and BM25.
Candidates are the union of the e5 and BM25 top lists (exactly as in
:mod:`search.searcher`); each rule below re-weights those signals.  The
default rule calls the searcher's own fusion functions.

    python -m bench.experiments.fusion_ablation ../shared/eval/xquad_zh-zh ../shared/eval/xquad_en-zh \
        ../shared/eval/cmrc2018_dev --index-root /tmp/souyi-eval [--json FILE]

Indexes are built once under --index-root (one per distinct corpus, default
settings: rescorer included) and reused, also by bench.quality_report (which keeps the
table in docs/perf/quality.json and renders it into docs/quality.md).
Prints MRR@10 per rule and collection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import IndexReader, collection_index, parser_for, write_json
from indexer import build_from_documents, load_embedder
from indexer.analyze import Analyzer
from search import fusion
from search.evaluate import load_collection
from search.searcher import CANDIDATES, SCRIPT_SAMPLE


@dataclass(frozen=True)
class Signals:
    """One query's scores of its candidates (and of all passages, for single-signal rules)."""

    e5: np.ndarray
    use: np.ndarray
    sentence: np.ndarray
    bm25: np.ndarray
    coverage: float  # of the best BM25 passage
    coverage_top10: float  # best coverage among the 10 best BM25 passages
    doc: np.ndarray  # document of each candidate
    share: float  # the rescorer's share for this query (script gap to the nearest passages)


Rule = Callable[[Signals], np.ndarray]
mm = fusion.minmax


def _rrf(*parts: np.ndarray) -> np.ndarray:
    return sum(1.0 / (60 + np.argsort(np.argsort(-p)) + 1) for p in parts)


def _mix(
    shares: tuple[float, float, float], max_weight: float = fusion.MAX_LEXICAL_WEIGHT, top10: bool = False
) -> Rule:
    def rule(s: Signals) -> np.ndarray:
        semantic = sum(share * mm(part) for share, part in zip(shares, (s.e5, s.use, s.sentence), strict=True))
        weight = max_weight * (s.coverage_top10 if top10 else s.coverage)
        return (1 - weight) * semantic + weight * mm(s.bm25)

    return rule


def _default(s: Signals) -> np.ndarray:
    """The searcher's rule, through its own functions."""
    semantic = fusion.semantic([s.e5, s.use, s.sentence], s.share)
    return fusion.combine(semantic, s.bm25, fusion.lexical_weight(s.coverage))


def _neighbours(weight: float) -> Rule:
    """Default plus ``weight`` × the best score of another passage of the same document."""

    def rule(s: Signals) -> np.ndarray:
        base = _default(s)
        best_other = np.array([
            base[(s.doc == d) & (np.arange(len(base)) != i)].max(initial=base.min()) for i, d in enumerate(s.doc)
        ])
        return base + weight * best_other

    return rule


RULES: dict[str, Rule] = {
    "BM25 only": lambda s: s.bm25,
    "e5 only": lambda s: s.e5,
    "USE passage only": lambda s: s.use,
    "USE best sentence only": lambda s: s.sentence,
    "RRF e5 + USE passage": lambda s: _rrf(s.e5, s.use),
    "RRF e5 + BM25": lambda s: _rrf(s.e5, s.bm25),
    "e5 + BM25, coverage-weighted (before)": lambda s: fusion.combine(s.e5, s.bm25, fusion.lexical_weight(s.coverage)),
    "e5 + USE passage, no BM25": lambda s: 0.5 * mm(s.e5) + 0.5 * mm(s.use),
    "e5 .5 + USE passage .5 + BM25": _mix((0.5, 0.5, 0.0)),
    "e5 .5 + USE sentence .5 + BM25": _mix((0.5, 0.0, 0.5)),
    "e5 .5 + USE passage .25 + sentence .25 + BM25, always": _mix((0.5, 0.25, 0.25)),
    "same, shares .6/.2/.2": _mix((0.6, 0.2, 0.2)),
    "same, shares .4/.3/.3": _mix((0.4, 0.3, 0.3)),
    "same, lexical weight max 0.5": _mix((0.5, 0.25, 0.25), 0.5),
    "same, lexical weight max 1.0": _mix((0.5, 0.25, 0.25), 1.0),
    "same, coverage from the best of top-10 BM25": _mix((0.5, 0.25, 0.25), top10=True),
    "USE share 0.5 × script gap query/passages + BM25 (default)": _default,
    "default + 0.1 × best other passage of the document": _neighbours(0.1),
}
#: Rules scored over every passage rather than over the fused candidates.
_SINGLE = {"BM25 only", "e5 only", "USE passage only", "USE best sentence only", "RRF e5 + USE passage"}


def ablate(collection_dir: Path, index_root: Path) -> dict[str, float]:
    """MRR@10 of every rule on one collection (its index is built first if missing)."""
    collection = load_collection(collection_dir)
    index_dir = collection_index(collection_dir, index_root)
    if not (index_dir / "manifest.json").is_file():
        build_from_documents(collection.documents, index_dir)
    reader = IndexReader.open(index_dir)
    passages = reader.all_passages()
    ids = np.array([p.passage_id for p in passages])
    e5_vectors = reader.load_vectors().reconstruct_batch(ids)
    stored = reader.sentence_vectors(ids)
    use_vectors = np.stack([stored[int(i)].passage for i in ids])
    sentence_rows = [stored[int(i)].sentences for i in ids]
    owner = np.repeat(np.arange(len(ids)), [len(rows) for rows in sentence_rows])
    sentence_matrix = np.vstack(sentence_rows)
    lexical = reader.load_lexical()
    rows = lexical.rows_of(ids)
    analyzer = Analyzer.from_config(reader.manifest["analyzer"], reader.userdict())
    doc_of = np.array([p.doc_name for p in passages])
    texts = [text for _, text in collection.queries]
    e5_queries = load_embedder(reader.model_id).encode_queries(texts)
    use_queries = load_embedder(reader.manifest["rescorer"]["id"]).encode_queries(texts)
    totals = dict.fromkeys(RULES, 0.0)
    for (qid, text), e5_q, use_q in zip(collection.queries, e5_queries, use_queries, strict=True):
        terms = analyzer.tokens(text)
        bm25 = lexical.scores(terms)[rows]
        e5 = e5_vectors @ e5_q
        best_sentence = np.full(len(ids), -1.0)
        np.maximum.at(best_sentence, owner, sentence_matrix @ use_q)
        top_lexical = np.argsort(-bm25, kind="stable")[:CANDIDATES]
        top_lexical = top_lexical[bm25[top_lexical] > 0]
        candidates = np.union1d(np.argsort(-e5, kind="stable")[:CANDIDATES], top_lexical)
        idf = lexical.term_idf(terms)
        covers = [fusion.coverage(idf, lexical.matched_terms(terms, int(rows[i]))) for i in top_lexical[:10]]
        nearest = np.argsort(-e5, kind="stable")[:SCRIPT_SAMPLE]
        share = fusion.rescorer_share(text, [passages[i].text for i in nearest])
        everything = Signals(e5, use_vectors @ use_q, best_sentence, bm25, 0.0, 0.0, doc_of, share)
        fused = Signals(e5[candidates], everything.use[candidates], best_sentence[candidates], bm25[candidates],
                        covers[0] if covers else 0.0, max(covers, default=0.0), doc_of[candidates], share)
        gold = collection.relevant[qid]
        for name, rule in RULES.items():
            pool, signals = (np.arange(len(ids)), everything) if name in _SINGLE else (candidates, fused)
            order = pool[np.argsort(-rule(signals), kind="stable")]
            ranking = list(dict.fromkeys(doc_of[order[:60]]))[:10]
            rank = next((r for r, doc in enumerate(ranking, start=1) if doc in gold), None)
            totals[name] += 1.0 / rank if rank else 0.0
    return {name: round(total / len(collection.queries), 4) for name, total in totals.items()}


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("collections", nargs="+", type=Path)
    parser.add_argument("--index-root", type=Path, required=True, help="where to build/reuse one index each")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    args.index_root.mkdir(parents=True, exist_ok=True)
    table = {c.name: ablate(c, args.index_root) for c in args.collections}
    names = list(table)
    print(f"{'rule (MRR@10)':<58}" + "".join(f"{n:>14}" for n in names))
    for rule in RULES:
        print(f"{rule:<58}" + "".join(f"{table[n][rule]:>14.4f}" for n in names))
    if args.json:
        write_json(args.json, table)


if __name__ == "__main__":
    main()
