"""Compare fusion rules on eval collections, holding everything else fixed.

For every query, both retrievers score the union of their top candidates
(exactly as the searcher does); each rule then only re-weights those scores.
Prints a table of MRR@10 per rule and collection and writes it as JSON.

    python bench/fusion_ablation.py ../shared/eval/xquad_zh-zh ../shared/eval/xquad_en-zh \
        ../shared/eval/cmrc2018_dev --index-root /tmp/souyi-eval --json docs/fusion_ablation.json

Indexes are built once under --index-root (one per collection) and reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.analyze import default_analyzer  # noqa: E402
from indexer.build import build_from_documents  # noqa: E402
from indexer.embedding import load_embedder  # noqa: E402
from indexer.store import IndexReader  # noqa: E402
from search import fusion  # noqa: E402
from search.evaluate import load_collection  # noqa: E402
from search.searcher import CANDIDATES  # noqa: E402

Rule = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def _rrf(weight: float) -> Rule:
    def rule(dense: np.ndarray, lexical: np.ndarray, cover: float) -> np.ndarray:
        ranks_d = np.argsort(np.argsort(-dense)) + 1
        ranks_l = np.argsort(np.argsort(-lexical)) + 1
        return 1.0 / (60 + ranks_d) + weight * np.where(lexical > 0, 1.0 / (60 + ranks_l), 0.0)

    return rule


def _fixed(weight: float) -> Rule:
    return lambda dense, lexical, cover: fusion.combine(dense, lexical, weight)


def _coverage(max_weight: float) -> Rule:
    return lambda dense, lexical, cover: fusion.combine(dense, lexical, max_weight * cover)


RULES: dict[str, Rule] = {
    "dense only": lambda dense, lexical, cover: dense,
    "lexical only": lambda dense, lexical, cover: lexical,
    "RRF k=60": _rrf(1.0),
    "RRF, lexical weight 0.1": _rrf(0.1),
    "min-max, fixed weight 0.3": _fixed(0.3),
    "min-max, fixed weight 0.5": _fixed(0.5),
    "coverage-weighted, max 0.5": _coverage(0.5),
    "coverage-weighted, max 0.8 (default)": _coverage(fusion.MAX_LEXICAL_WEIGHT),
    "coverage-weighted, max 1.0": _coverage(1.0),
}


def ablate(collection_dir: Path, index_root: Path) -> dict[str, float]:
    """MRR@10 of every rule on one collection."""
    collection = load_collection(collection_dir)
    index_dir = index_root / collection.name
    if not (index_dir / "manifest.json").is_file():
        build_from_documents(collection.documents, index_dir)
    reader = IndexReader.open(index_dir)
    embedder = load_embedder(reader.model_id)
    vectors_index, lexical = reader.load_vectors(), reader.load_lexical()
    passages = reader.all_passages()
    vectors = vectors_index.reconstruct_batch(np.array([p.passage_id for p in passages]))
    doc_of = np.array([p.doc_name for p in passages])
    analyzer = default_analyzer()
    queries = embedder.encode_queries([text for _, text in collection.queries])
    totals = dict.fromkeys(RULES, 0.0)
    for (qid, text), qvec in zip(collection.queries, queries, strict=True):
        terms = analyzer.tokens(text)
        lex_all = lexical.scores(terms)
        dense_all = vectors @ qvec
        top_l = np.argsort(-lex_all)[:CANDIDATES]
        cand = np.union1d(np.argsort(-dense_all)[:CANDIDATES], top_l[lex_all[top_l] > 0])
        best = int(top_l[0])
        cover = (
            fusion.coverage(lexical.term_idf(terms), lexical.matched_terms(terms, best)) if lex_all[best] > 0 else 0.0
        )
        for name, rule in RULES.items():
            scores = rule(dense_all[cand], lex_all[cand], cover)
            ranking = list(dict.fromkeys(doc_of[cand[np.argsort(-scores, kind="stable")]]))[:10]
            gold = collection.relevant[qid]
            rank = next((r for r, doc in enumerate(ranking, start=1) if doc in gold), None)
            totals[name] += 1.0 / rank if rank else 0.0
    return {name: round(total / len(collection.queries), 4) for name, total in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collections", nargs="+", type=Path)
    parser.add_argument("--index-root", type=Path, required=True, help="where to build/reuse one index each")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args()
    table = {c.name: ablate(c, args.index_root) for c in args.collections}
    names = list(table)
    print(f"{'rule (MRR@10)':<40}" + "".join(f"{n:>16}" for n in names))
    for rule in RULES:
        print(f"{rule:<40}" + "".join(f"{table[n][rule]:>16.4f}" for n in names))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
