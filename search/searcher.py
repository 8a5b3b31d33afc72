"""The public search API: open an index, ask it questions, get typed hits."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.analyze import Analyzer, default_analyzer
from indexer.bm25 import BM25Index
from indexer.embedding import Embedder, load_embedder
from indexer.store import IndexReader

from . import fusion
from .highlight import highlight_spans, query_terms
from .hits import Hit
from .query import check_mode, check_paging, clean_query

logger = logging.getLogger(__name__)

#: How many candidates each retriever contributes to hybrid fusion (at least).
CANDIDATES = 100


@dataclass(frozen=True)
class _Ranked:
    """Scores of one query's candidates, before passages are fetched."""

    ids: np.ndarray  # passage ids, best first
    scores: np.ndarray
    dense_rank: dict[int, int]
    lexical_rank: dict[int, int]


class Searcher:
    """Hybrid (dense + BM25) passage search over one index directory.

    Open it once and share it: searches from several threads are safe.
    """

    def __init__(self, reader: IndexReader, embedder: Embedder, analyzer: Analyzer) -> None:
        reader.check_model(embedder.model_id, embedder.dim)
        self._reader = reader
        self.embedder = embedder
        self._analyzer = analyzer
        self._vectors = reader.load_vectors()
        self._lexical: BM25Index = reader.load_lexical()
        self.size = int(self._vectors.ntotal)

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str], model: str | Embedder | None = None) -> Searcher:
        """Open the index at ``index_dir``.

        ``model`` defaults to the model that built the index; naming another
        one raises :class:`~indexer.errors.ModelMismatch` before any search.
        """
        reader = IndexReader.open(index_dir)
        if model is None or isinstance(model, str):
            if model is not None and model != reader.model_id:
                reader.check_model(model, reader.dim)
            embedder = load_embedder(model or reader.model_id)
        else:
            embedder = model
        return cls(reader, embedder, default_analyzer())

    def info(self) -> dict:
        """Passage count, model and format of the open index (for health checks)."""
        manifest = self._reader.manifest
        return {
            "passages": self.size,
            "documents": manifest["counts"]["documents"],
            "model": manifest["model"]["id"],
            "dim": manifest["model"]["dim"],
            "format_version": manifest["format_version"],
            "analyzer": manifest["analyzer"],
        }

    def search(self, query: str, k: int = 10, mode: str = "hybrid", offset: int = 0) -> list[Hit]:
        """The ``k`` best passages for ``query`` after skipping ``offset``.

        ``mode`` is ``hybrid`` (default), ``dense`` or ``lexical``.  Raises
        :class:`~indexer.errors.BadQuery` for an empty or over-long query or
        bad ``k``/``offset``/``mode``; asking for more than exists returns fewer.
        """
        return self.search_many([query], k=k, mode=mode, offset=offset)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, mode: str = "hybrid", offset: int = 0
    ) -> list[list[Hit]]:
        """Batch form of :meth:`search`: one list of hits per query."""
        cleaned = [clean_query(q) for q in queries]
        k, offset = check_paging(k, offset)
        mode = check_mode(mode)
        depth = k + offset
        if not cleaned or self.size == 0:
            return [[] for _ in cleaned]
        vectors = self.embedder.encode_queries(cleaned) if mode != "lexical" else None
        ranked = [self._rank(q, None if vectors is None else vectors[i], mode, depth) for i, q in enumerate(cleaned)]
        return [self._hits(q, r, offset, depth) for q, r in zip(cleaned, ranked, strict=True)]

    def _rank(self, query: str, vector: np.ndarray | None, mode: str, depth: int) -> _Ranked:
        n_candidates = min(self.size, max(CANDIDATES, depth))
        dense_ids = dense_scores = lexical_ids = np.zeros(0, dtype=np.int64)
        lexical_all = None
        terms: list[str] = []
        if vector is not None:
            dense_ids, dense_scores = self._dense(vector, n_candidates)
        if mode != "dense":
            terms = self._analyzer.tokens(query)
            lexical_all = self._lexical.scores(terms)
            lexical_ids = _top(lexical_all, n_candidates)
        dense_rank = {int(p): r for r, p in enumerate(dense_ids, start=1)}
        lexical_rank = {int(p): r for r, p in enumerate(lexical_ids, start=1)}
        if mode == "dense":
            return _Ranked(dense_ids, dense_scores, dense_rank, {})
        if mode == "lexical":
            return _Ranked(lexical_ids, lexical_all[lexical_ids], {}, lexical_rank)
        candidates = np.array(sorted(set(dense_rank) | set(lexical_rank)), dtype=np.int64)
        dense = self._vectors.reconstruct_batch(candidates) @ vector
        lexical = lexical_all[candidates]
        weight = 0.0
        if len(lexical_ids) and lexical_all[lexical_ids[0]] > 0:
            idf = self._lexical.term_idf(terms)
            weight = fusion.lexical_weight(
                fusion.coverage(idf, self._lexical.matched_terms(terms, int(lexical_ids[0])))
            )
        fused = fusion.combine(dense, lexical, weight)
        order = np.lexsort((candidates, -fused))
        return _Ranked(candidates[order], fused[order], dense_rank, lexical_rank)

    def _dense(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._vectors.search(vector[None, :].astype(np.float32), n)
        keep = ids[0] >= 0  # FAISS pads with -1 when it has fewer than n
        return ids[0][keep].astype(np.int64), scores[0][keep]

    def _hits(self, query: str, ranked: _Ranked, offset: int, depth: int) -> list[Hit]:
        ids = [int(p) for p in ranked.ids[offset:depth]]
        records = self._reader.passages(ids)
        terms = query_terms(query, self._analyzer)
        hits = []
        for position, pid in enumerate(ids):
            rec = records.get(pid)
            if rec is None:  # vector without a stored passage: never shown
                logger.warning("passage %d has a vector but no stored text", pid)
                continue
            hits.append(
                Hit(
                    passage_id=pid,
                    doc_id=rec.doc_name,
                    title=rec.title,
                    paragraph=rec.paragraph,
                    start=rec.start,
                    end=rec.end,
                    text=rec.text,
                    score=round(float(ranked.scores[offset + position]), 6),
                    rank=offset + position + 1,
                    dense_rank=ranked.dense_rank.get(pid),
                    lexical_rank=ranked.lexical_rank.get(pid),
                    highlights=highlight_spans(terms, rec.text),
                    heading=rec.heading,
                )
            )
        return hits

    def close(self) -> None:
        """Release the index files; the searcher cannot be used afterwards."""
        self._reader.close()


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Ids of the ``n`` best positive scores, best first (ties by id)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > n:
        positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
    return positive[np.lexsort((positive, -scores[positive]))].astype(np.int64)
