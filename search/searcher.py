"""The public search API: open an index, ask it questions, get typed hits."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from indexer.analyze import Analyzer
from indexer.bm25 import BM25Index
from indexer.embedding import Embedder, load_embedder
from indexer.errors import BadQuery, IndexFormatError
from indexer.store import IndexReader

from . import fusion
from .highlight import highlight_spans, query_terms
from .hits import Hit
from .query import check_mode, check_paging, clean_query

logger = logging.getLogger(__name__)

#: How many candidates each retriever contributes to hybrid fusion (at least).
CANDIDATES = 100


@dataclass(frozen=True)
class _Generation:
    """Everything read from one committed generation of the index."""

    reader: IndexReader
    vectors: faiss.Index
    lexical: BM25Index
    analyzer: Analyzer
    stamp: object

    @classmethod
    def load(cls, reader: IndexReader, previous: _Generation | None = None) -> _Generation:
        """Load ``reader``'s generation; the analyzer is kept if its configuration did not change."""
        stamp = reader.stamp()
        config = reader.manifest["analyzer"]
        if previous is not None and previous.reader.manifest["analyzer"] == config:
            analyzer = previous.analyzer
        else:
            analyzer = Analyzer.from_config(config, reader.userdict())
        return cls(reader, reader.load_vectors(), reader.load_lexical(), analyzer, stamp)


@dataclass(frozen=True)
class _Ranked:
    """Scores of one query's candidates, before passages are fetched."""

    ids: np.ndarray  # passage ids, best first
    scores: np.ndarray
    dense_rank: dict[int, int]
    lexical_rank: dict[int, int]


class Searcher:
    """Hybrid (dense + BM25) passage search over one index directory.

    Open it once and share it: searches from several threads are safe.  Each
    search first checks (one ``stat``) whether a newer batch was committed and
    then moves to it, so results always come from the last committed state.
    """

    def __init__(self, reader: IndexReader, embedder: Embedder) -> None:
        reader.check_model(embedder.model_id, embedder.dim)
        self.embedder = embedder
        self._generation = _Generation.load(reader)
        self._refresh_lock = threading.Lock()

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
        return cls(reader, embedder)

    @property
    def size(self) -> int:
        """Passages in the generation being searched."""
        return int(self._generation.vectors.ntotal)

    def refresh(self) -> bool:
        """Move to the newest committed generation if there is one; True if it moved."""
        current = self._generation
        if current.reader.stamp() == current.stamp:
            return False
        with self._refresh_lock:
            current = self._generation
            if current.reader.stamp() == current.stamp:
                return False
            for attempt in range(3):
                reader = IndexReader.open(current.reader.path)
                reader.check_model(self.embedder.model_id, self.embedder.dim)
                try:
                    self._generation = _Generation.load(reader, current)
                    break
                except IndexFormatError:  # two commits in quick succession removed its files: read anew
                    reader.close()
                    if attempt == 2:
                        raise
            logger.info("now searching generation %d of %s", reader.generation, reader.path)
            return True  # the old reader is left to the garbage collector: other threads may still use it

    def info(self) -> dict:
        """Passage count, model and format of the open index (for health checks)."""
        manifest = self._generation.reader.manifest
        return {
            "passages": self.size,
            "documents": manifest["counts"]["documents"],
            "model": manifest["model"]["id"],
            "dim": manifest["model"]["dim"],
            "format_version": manifest["format_version"],
            "generation": manifest["generation"],
            "analyzer": manifest["analyzer"],
        }

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        offset: int = 0,
        filters: Mapping[str, object] | None = None,
    ) -> list[Hit]:
        """The ``k`` best passages for ``query`` after skipping ``offset``.

        ``mode`` is ``hybrid`` (default), ``dense`` or ``lexical``.
        ``filters`` restricts results to documents whose name (``doc``),
        ``title`` or metadata field equals the value given (or one of a list
        of values).  Raises :class:`~indexer.errors.BadQuery` for an empty or
        over-long query or bad ``k``/``offset``/``mode``/``filters``; asking
        for more than exists returns fewer.
        """
        return self.search_many([query], k=k, mode=mode, offset=offset, filters=filters)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        mode: str = "hybrid",
        offset: int = 0,
        filters: Mapping[str, object] | None = None,
    ) -> list[list[Hit]]:
        """Batch form of :meth:`search`: one list of hits per query."""
        cleaned = [clean_query(q) for q in queries]
        k, offset = check_paging(k, offset)
        mode = check_mode(mode)
        self.refresh()
        gen = self._generation  # one generation for the whole batch
        allowed = _allowed(gen.reader, filters)
        if not cleaned or gen.vectors.ntotal == 0 or (allowed is not None and not len(allowed)):
            return [[] for _ in cleaned]
        vectors = self.embedder.encode_queries(cleaned) if mode != "lexical" else None
        depth = k + offset
        ranked = [
            self._rank(gen, q, None if vectors is None else vectors[i], mode, depth, allowed)
            for i, q in enumerate(cleaned)
        ]
        return [self._hits(gen, q, r, offset, depth) for q, r in zip(cleaned, ranked, strict=True)]

    def _rank(
        self, gen: _Generation, query: str, vector: np.ndarray | None, mode: str, depth: int, allowed: np.ndarray | None
    ) -> _Ranked:
        n_candidates = min(gen.vectors.ntotal, max(CANDIDATES, depth))
        dense_ids = dense_scores = lexical_ids = top_rows = np.zeros(0, dtype=np.int64)
        lexical_all = None
        terms: list[str] = []
        if vector is not None:
            dense_ids, dense_scores = _dense(gen.vectors, vector, n_candidates, allowed)
        if mode != "dense":
            terms = gen.analyzer.tokens(query)
            lexical_all = gen.lexical.scores(terms)
            if allowed is not None:
                lexical_all[~np.isin(gen.lexical.row_ids, allowed)] = 0.0
            top_rows = _top(lexical_all, n_candidates)
            lexical_ids = gen.lexical.row_ids[top_rows]
        dense_rank = {int(p): r for r, p in enumerate(dense_ids, start=1)}
        lexical_rank = {int(p): r for r, p in enumerate(lexical_ids, start=1)}
        if mode == "dense":
            return _Ranked(dense_ids, dense_scores, dense_rank, {})
        if mode == "lexical":
            return _Ranked(lexical_ids, lexical_all[top_rows], {}, lexical_rank)
        candidates = np.array(sorted(set(dense_rank) | set(lexical_rank)), dtype=np.int64)
        dense = gen.vectors.reconstruct_batch(candidates) @ vector
        lexical = lexical_all[gen.lexical.rows_of(candidates)]
        weight = 0.0
        if len(top_rows):
            idf = gen.lexical.term_idf(terms)
            weight = fusion.lexical_weight(fusion.coverage(idf, gen.lexical.matched_terms(terms, int(top_rows[0]))))
        fused = fusion.combine(dense, lexical, weight)
        order = np.lexsort((candidates, -fused))
        return _Ranked(candidates[order], fused[order], dense_rank, lexical_rank)

    def _hits(self, gen: _Generation, query: str, ranked: _Ranked, offset: int, depth: int) -> list[Hit]:
        ids = [int(p) for p in ranked.ids[offset:depth]]
        records = gen.reader.passages(ids)
        terms = query_terms(query, gen.analyzer)
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
                    meta=rec.meta,
                )
            )
        return hits

    def close(self) -> None:
        """Release the index files; the searcher cannot be used afterwards."""
        self._generation.reader.close()


def _allowed(reader: IndexReader, filters: Mapping[str, object] | None) -> np.ndarray | None:
    """Sorted passage ids that pass ``filters``, or None when there are none."""
    if not filters:
        return None
    if not isinstance(filters, Mapping) or not all(isinstance(key, str) and key for key in filters):
        raise BadQuery("filters must map field names to a value or a list of values")
    return reader.filtered_ids(dict(filters))


def _dense(index: faiss.Index, vector: np.ndarray, n: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    params = None if allowed is None else faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
    scores, ids = index.search(vector[None, :].astype(np.float32), n, params=params)
    keep = ids[0] >= 0  # FAISS pads with -1 when it has fewer than n
    return ids[0][keep].astype(np.int64), scores[0][keep]


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` best positive scores, best first (ties by row)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > n:
        positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
    return positive[np.lexsort((positive, -scores[positive]))].astype(np.int64)
