"""The cross-language bridge, one rule at a time, and what it costs.

    python -m bench.translation_ablation [--eval-dir ../shared/eval] [--index-root /tmp/souyi-quality]

Each variant changes one field of :class:`search.translate.Rules` from the
default and measures MRR@10 and Recall@10 of the English questions over the
Chinese passages (xquad_en-zh) in keyword and default (hybrid) mode, through
``Searcher.search`` itself; "off" is ``translate=False``.  Query vectors are
computed once and reused by every variant (the models are deterministic), so
only the keyword side changes between rows.  Also measured: parsing the
dictionary (once per process), the memory it holds, opening a searcher, and
translating one query.  Writes docs/perf/translation.json, which
``python -m bench.quality_report --render-only`` shows in docs/quality.md,
"Translation bridge".  The index is built once under --index-root and reused
(the same one bench.quality_report uses).
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
from pathlib import Path

import numpy as np

from bench.common import (
    add_eval_dir,
    add_out,
    collection_index,
    machine,
    parser_for,
    rss_bytes,
    timed,
    times_ms,
    write_json,
)
from indexer import bilingual, build_from_documents
from indexer.analyze import default_analyzer
from search import Searcher, translate
from search.evaluate import Collection, load_collection

#: The collection whose questions cross languages.
CROSSING_SET = "xquad_en-zh"
#: One field changed from the default per row.
VARIANTS: dict[str, dict] = {
    "default": {},
    "1 candidate per word": {"candidates": 1},
    "3 candidates per word": {"candidates": 3},
    "5 candidates per word": {"candidates": 5},
    "no phrases (single words only)": {"phrases": False},
    "no inflections (words as written)": {"inflections": False},
    "bridge weight max 0.7": {"max_weight": 0.7},
    "bridge weight max 1.3": {"max_weight": 1.3},
    "weight by dictionary coverage only, max 0.2": {"by_match": False, "max_weight": 0.2},
}


class _Remembered:
    """An embedder that encodes each query once: every variant asks for the same vectors."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self._known: dict[str, np.ndarray] = {}
        self.model_id, self.dim = embedder.model_id, embedder.dim

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._known]
        if missing:
            self._known.update(zip(missing, self._embedder.encode_queries(missing), strict=True))
        return np.stack([self._known[t] for t in texts])


def _measure(searcher: Searcher, collection: Collection, mode: str, translate_on: bool) -> tuple[float, float]:
    """MRR@10 and Recall@10 over documents, as ``souyi eval`` counts them."""
    reciprocal = found = 0.0
    for qid, text in collection.queries:
        hits = searcher.search(text, k=min(50, searcher.size), mode=mode, translate=translate_on)
        ranking = list(dict.fromkeys(hit.doc_id for hit in hits))[:10]
        rank = next((r for r, doc in enumerate(ranking, start=1) if doc in collection.relevant[qid]), None)
        if rank:
            reciprocal, found = reciprocal + 1.0 / rank, found + 1
    n = max(len(collection.queries), 1)
    return round(reciprocal / n, 4), round(found / n, 4)


def ablate(searcher: Searcher, collection: Collection) -> list[list]:
    """One row per variant: name, keyword MRR@10, keyword Recall@10, hybrid MRR@10, hybrid Recall@10."""
    searcher.embedder = _Remembered(searcher.embedder)
    if searcher.rescorer is not None:
        searcher.rescorer = _Remembered(searcher.rescorer)
    rows = [["off (translate=False)", *_measure(searcher, collection, "lexical", False),
             *_measure(searcher, collection, "hybrid", False)]]
    default = translate.RULES
    try:
        for name, change in VARIANTS.items():
            translate.RULES = dataclasses.replace(default, **change)
            rows.append([name, *_measure(searcher, collection, "lexical", True),
                         *_measure(searcher, collection, "hybrid", True)])
    finally:
        translate.RULES = default
    return rows


def costs(index_dir: Path, collection: Collection) -> dict:
    """Parse time and memory of the dictionary, open time, and one query's translation time."""
    gc.collect()
    before = rss_bytes()
    parse_seconds, parsed = timed(bilingual.Dictionary)  # a fresh copy: the shared one may be loaded already
    gc.collect()
    held = rss_bytes() - before
    del parsed
    opens = [timed(lambda: Searcher.open(index_dir).close())[0] for _ in range(3)]
    analyzer = default_analyzer()
    per_query = times_ms(lambda text: translate.translate(text, analyzer), [t for _, t in collection.queries])
    return {"parse_seconds": round(parse_seconds, 2), "memory_mb": round(held / 2**20, 1),
            "open_seconds_median": round(statistics.median(opens), 3),
            "translate_ms_p50": round(float(np.percentile(per_query, 50)), 3)}


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    add_eval_dir(parser)
    parser.add_argument("--index-root", type=Path, default=Path("/tmp/souyi-quality"))
    add_out(parser, "translation")
    args = parser.parse_args(argv)
    collection_dir = args.eval_dir / CROSSING_SET
    collection = load_collection(collection_dir)
    index_dir = collection_index(collection_dir, args.index_root)
    if not (index_dir / "manifest.json").is_file():
        build_from_documents(collection.documents, index_dir)
    measured = costs(index_dir, collection)  # first: the dictionary is parsed here, in a fresh process
    searcher = Searcher.open(index_dir)
    try:
        rows = ablate(searcher, collection)
    finally:
        searcher.close()
    data = {"collection": collection.name, "machine": machine(),
            "columns": ["rule", "keyword MRR@10", "keyword Recall@10", "hybrid MRR@10", "hybrid Recall@10"],
            "rows": rows, "costs": measured}
    write_json(args.out, data)
    for row in rows:
        print(*row, sep="\t")
    print(measured)


if __name__ == "__main__":
    main()
