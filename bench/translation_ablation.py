"""The cross-language bridge, one rule at a time, and what it costs.

    python -m bench.translation_ablation [--eval-dir ../shared/eval] [--index-root /tmp/souyi-quality]

Each variant changes one field of :class:`search.translate.Rules` from the
default and measures MRR@10 and Recall@10 of the English questions over the
Chinese passages (xquad_en-zh) in keyword and default (hybrid) mode, through
``Searcher.search`` itself; "off" is ``translate=False``.  Query vectors are
computed once and reused by every variant (the models are deterministic), so
only the keyword side changes between rows.  Also measured: parsing the
dictionary (once per process) and loading its compiled copy, the memory it holds, opening a searcher,
translating one query, and the bridge's effect on every shared set
(``--effect-sets``): quality and p50 latency off and on, each question searched
both ways back to back, in hybrid and keyword mode.  Writes docs/perf/translation.json, which
``python -m bench.quality_report --render-only`` shows in docs/quality.md,
"Translation bridge".  The index is built once under --index-root and reused
(the same one bench.quality_report uses).
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import tempfile
import time
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
from bench.quality_report import COLLECTIONS
from indexer import bilingual, build_from_documents
from indexer.analyze import default_analyzer
from search import Searcher, translate
from search.evaluate import PASSAGE_DEPTH, Collection, load_collection

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


def _reciprocal_rank(hits: list, gold: set[str]) -> float:
    """1/rank of the first relevant document among the top 10 (documents rank by their best passage), or 0."""
    ranking = list(dict.fromkeys(hit.doc_id for hit in hits))[:10]
    return next((1.0 / r for r, doc in enumerate(ranking, start=1) if doc in gold), 0.0)


def _measure(searcher: Searcher, collection: Collection, mode: str, translate_on: bool) -> tuple[float, float]:
    """MRR@10 and Recall@10 over documents, as ``souyi eval`` counts them."""
    ranks = [_reciprocal_rank(searcher.search(text, k=min(PASSAGE_DEPTH, searcher.size), mode=mode,
                                              translate=translate_on), collection.relevant[qid])
             for qid, text in collection.queries]
    n = max(len(ranks), 1)
    return round(sum(ranks) / n, 4), round(sum(r > 0 for r in ranks) / n, 4)


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


def effect(collection: Collection, index_dir: Path) -> list[list]:
    """Per mode: MRR@10, Recall@10 and p50 latency with the bridge off and on, every question searched both ways.

    The two searches of a question run back to back, in alternating order, with
    the real query embedding, so a busy machine slows both alike; the latency
    cost is the difference of the two p50s.  The mean number of hits returned
    is kept too: a search that finds more passages also spends more time
    building hits (highlights, answer sentences) for them.
    """
    searcher = Searcher.open(index_dir)
    rows = []
    try:
        searcher.search(collection.queries[0][1])  # the dictionary and the models warm, as in a served index
        for mode in ("hybrid", "lexical"):
            ranks: dict[bool, list[float]] = {False: [], True: []}
            latencies: dict[bool, list[float]] = {False: [], True: []}
            shown: dict[bool, list[int]] = {False: [], True: []}
            for position, (qid, text) in enumerate(collection.queries):
                for translate_on in (position % 2 == 0, position % 2 == 1):
                    started = time.perf_counter()
                    hits = searcher.search(text, k=min(PASSAGE_DEPTH, searcher.size), mode=mode,
                                           translate=translate_on)
                    latencies[translate_on].append((time.perf_counter() - started) * 1000.0)
                    ranks[translate_on].append(_reciprocal_rank(hits, collection.relevant[qid]))
                    shown[translate_on].append(len(hits))
            p50 = {on: round(statistics.median(latencies[on]), 2) for on in (False, True)}
            rows.append([collection.name, mode,
                         *(round(sum(ranks[on]) / len(ranks[on]), 4) for on in (False, True)),
                         *(round(sum(r > 0 for r in ranks[on]) / len(ranks[on]), 4) for on in (False, True)),
                         p50[False], p50[True], round(p50[True] - p50[False], 2),
                         *(round(statistics.mean(shown[on]), 1) for on in (False, True))])
    finally:
        searcher.close()
    return rows


def costs(index_dir: Path, collection: Collection) -> dict:
    """Parse time and memory of the dictionary, open time, and one query's translation time."""
    gc.collect()
    before = rss_bytes()
    parse_seconds, parsed = timed(bilingual.Dictionary)  # a fresh copy: the shared one may be loaded already
    gc.collect()
    held = rss_bytes() - before
    del parsed
    with tempfile.TemporaryDirectory() as cache:
        bilingual.load_dictionary(Path(cache))  # parses and writes the compiled copy
        compiled_seconds = statistics.median(timed(lambda: bilingual.load_dictionary(Path(cache)))[0]
                                             for _ in range(3))
    opens = [timed(lambda: Searcher.open(index_dir).close())[0] for _ in range(3)]
    analyzer = default_analyzer()
    per_query = times_ms(lambda text: translate.translate(text, analyzer), [t for _, t in collection.queries])
    return {"parse_seconds": round(parse_seconds, 2), "compiled_load_seconds": round(compiled_seconds, 3),
            "memory_mb": round(held / 2**20, 1),
            "open_seconds_median": round(statistics.median(opens), 3),
            "translate_ms_p50": round(float(np.percentile(per_query, 50)), 3)}


def _built_index(collection_dir: Path, collection: Collection, index_root: Path) -> Path:
    """The collection's index under ``index_root`` (the one bench.quality_report uses), built when missing."""
    index_dir = collection_index(collection_dir, index_root)
    if not (index_dir / "manifest.json").is_file():
        build_from_documents(collection.documents, index_dir)
    return index_dir


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    add_eval_dir(parser)
    parser.add_argument("--index-root", type=Path, default=Path("/tmp/souyi-quality"))
    parser.add_argument("--effect-sets", nargs="*", default=list(COLLECTIONS),
                        help="collections whose quality and latency are measured with the bridge off and on")
    add_out(parser, "translation")
    args = parser.parse_args(argv)
    collection_dir = args.eval_dir / CROSSING_SET
    collection = load_collection(collection_dir)
    index_dir = _built_index(collection_dir, collection, args.index_root)
    measured = costs(index_dir, collection)  # first: the dictionary is parsed here, in a fresh process
    searcher = Searcher.open(index_dir)
    try:
        rows = ablate(searcher, collection)
    finally:
        searcher.close()
    effects = []
    for name in args.effect_sets:
        other = load_collection(args.eval_dir / name)
        effects += effect(other, _built_index(args.eval_dir / name, other, args.index_root))
    data = {"collection": collection.name, "machine": machine(),
            "columns": ["rule", "keyword MRR@10", "keyword Recall@10", "hybrid MRR@10", "hybrid Recall@10"],
            "rows": rows, "costs": measured,
            "effect_columns": ["set", "mode", "MRR@10 off", "MRR@10 on", "Recall@10 off", "Recall@10 on",
                               "p50 ms off", "p50 ms on", "p50 change ms", "hits off", "hits on"],
            "effect": effects}
    write_json(args.out, data)
    for row in rows + effects:
        print(*row, sep="\t")
    print(measured)


if __name__ == "__main__":
    main()
