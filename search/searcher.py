"""The public search API: open an index, ask it questions, get typed hits."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from indexer.embedding import Embedder, load_embedder
from indexer.errors import BadQuery, ModelMismatch
from indexer.records import SentenceVectors
from indexer.stores import store_of

from . import fusion
from .answer import answer_span
from .backend import Backend, Filters, LexicalRetrieved, Snapshot
from .embedded import EmbeddedBackend
from .highlight import highlight_spans, query_terms
from .hits import Hit
from .query import check_mode, check_paging, clean_query

logger = logging.getLogger(__name__)

#: How many candidates each retriever contributes to hybrid fusion (at least).
CANDIDATES = 100
#: Nearest passages whose script is compared with the query's to weigh the rescorer.
SCRIPT_SAMPLE = 5


@dataclass(frozen=True)
class _Ranked:
    """Scores of one query's candidates, before passages are fetched."""

    ids: np.ndarray  # passage ids, best first
    scores: np.ndarray
    dense_rank: dict[int, int]
    lexical_rank: dict[int, int]
    sentences: dict[int, SentenceVectors]  # rescorer vectors of the candidates (empty without a rescorer)


class Searcher:
    """Hybrid (dense + BM25) passage search over one index.

    Open it once and share it: searches from several threads are safe.  Each
    search first asks the backend for its newest committed snapshot (for an
    index directory: one ``stat``), so results always come from the last
    committed state and never from half a batch.

    A hybrid search runs its BM25 retrieval on a worker thread while the
    calling thread embeds the query: the model releases the GIL, so on two
    cores the keyword side costs no wall time until it outgrows the embedding.
    """

    def __init__(self, backend: Backend, embedder: Embedder, rescorer: Embedder | None = None) -> None:
        backend.check_model(embedder.model_id, embedder.dim)
        wanted = backend.rescorer
        if wanted and rescorer is None:
            rescorer = load_embedder(wanted["id"])
        if rescorer is not None and (not wanted or (rescorer.model_id, rescorer.dim) != (wanted["id"], wanted["dim"])):
            raise ModelMismatch(
                f"the index was built with rescorer {wanted['id'] if wanted else None!r}, not {rescorer.model_id!r}"
            )
        self.backend = backend
        self.embedder = embedder
        self.rescorer = rescorer
        self._lexical_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="souyi-bm25")

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str], model: str | Embedder | None = None) -> Searcher:
        """Open the index at ``index_dir``.

        ``model`` defaults to the model that built the index; naming another
        one raises :class:`~indexer.errors.ModelMismatch` before any search.
        """
        if store_of(index_dir) == "milvus":  # recorded in the index directory's manifest
            from .milvus import MilvusBackend

            backend: Backend = MilvusBackend.open(index_dir)
        else:
            backend = EmbeddedBackend.open(index_dir)
        if model is None or isinstance(model, str):
            if model is not None and model != backend.model_id:
                backend.check_model(model, backend.dim)
            embedder = load_embedder(model or backend.model_id)
        else:
            embedder = model
        return cls(backend, embedder)

    @property
    def size(self) -> int:
        """Passages in the newest committed state."""
        return self.backend.snapshot().size

    def info(self) -> dict:
        """Passage count, model and format of the open index (for health checks)."""
        return self.backend.snapshot().info()

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
        wanted = _check_filters(filters)
        snap = self.backend.snapshot()  # one state for the whole batch
        if not cleaned or snap.matches_nothing(wanted):
            return [[] for _ in cleaned]
        depth = k + offset
        n_candidates = max(CANDIDATES, depth)
        if mode == "lexical":
            ranked = [_ranked_lexical(_lexical(snap, q, n_candidates, wanted)) for q in cleaned]
            return [self._hits(snap, q, r, offset, depth, None) for q, r in zip(cleaned, ranked, strict=True)]
        lexical = None
        if mode == "hybrid":  # BM25 on a worker while this thread embeds the queries
            lexical = [self._lexical_pool.submit(_lexical, snap, q, n_candidates, wanted) for q in cleaned]
        vectors = self.embedder.encode_queries(cleaned)
        seconds = self.rescorer.encode_queries(cleaned) if self.rescorer else None
        ranked = [
            _rank(snap, q, vectors[i], None if seconds is None else seconds[i], n_candidates, wanted,
                  None if lexical is None else lexical[i].result())
            for i, q in enumerate(cleaned)
        ]
        return [
            self._hits(snap, q, r, offset, depth, None if seconds is None else seconds[i])
            for i, (q, r) in enumerate(zip(cleaned, ranked, strict=True))
        ]

    def _hits(
        self, snap: Snapshot, query: str, ranked: _Ranked, offset: int, depth: int, second: np.ndarray | None
    ) -> list[Hit]:
        ids = [int(p) for p in ranked.ids[offset:depth]]
        records = snap.passages(ids)
        terms = query_terms(query, snap.analyzer)
        sentences = ranked.sentences
        if second is None and self.rescorer is not None:  # keyword mode: answers still use sentence vectors
            second = self.rescorer.encode_queries([query])[0]
        if second is not None and not sentences:
            sentences = snap.sentence_vectors(ids)
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
                    highlights=(spans := highlight_spans(terms, rec.text)),
                    heading=rec.heading,
                    meta=rec.meta,
                    answer=answer_span(rec.text, spans, sentences.get(pid), second),
                )
            )
        return hits

    def close(self) -> None:
        """Release the index; the searcher cannot be used afterwards."""
        self._lexical_pool.shutdown(wait=True)
        self.backend.close()


def _lexical(snap: Snapshot, query: str, n: int, filters: Filters | None) -> LexicalRetrieved:
    """The ``n`` best BM25 candidates of ``query``."""
    return snap.lexical(snap.analyzer.tokens(query), n, filters)


def _ranked_lexical(lexical: LexicalRetrieved) -> _Ranked:
    """Keyword mode: BM25's own order and scores."""
    return _Ranked(lexical.ids, lexical.scores, {}, _ranks(lexical.ids), {})


def _ranks(ids: np.ndarray) -> dict[int, int]:
    """Passage id → 1-based rank in one retriever's list."""
    return {int(p): r for r, p in enumerate(ids, start=1)}


def _rank(
    snap: Snapshot,
    query: str,
    vector: np.ndarray,
    second: np.ndarray | None,
    n_candidates: int,
    filters: Filters | None,
    lexical: LexicalRetrieved | None,
) -> _Ranked:
    """Candidates of one query, best first, with the score shown for each.

    ``vector`` is the query under the primary model, ``second`` under the
    rescorer (None without one); ``lexical`` is BM25's retrieval (None in
    semantic mode).
    """
    dense = snap.dense(vector, n_candidates, filters)
    dense_rank = _ranks(dense.ids)
    lexical_rank = {} if lexical is None else _ranks(lexical.ids)
    candidates = np.array(sorted(set(dense_rank) | set(lexical_rank)), dtype=np.int64)
    if not len(candidates):
        return _Ranked(candidates, np.zeros(0, dtype=np.float32), {}, {}, {})
    parts, sentences, share = [dense.scores_of(candidates)], {}, 0.0
    if second is not None:
        sentences = snap.sentence_vectors([int(p) for p in candidates])
        parts += _rescored(candidates, sentences, second)
        nearest = [int(p) for p in dense.ids[:SCRIPT_SAMPLE]]
        share = fusion.rescorer_share(query, [rec.text for rec in snap.passages(nearest).values()])
    fused = fusion.semantic(parts, share)
    if lexical is not None:
        weight = fusion.lexical_weight(lexical.coverage) if len(lexical.ids) else 0.0
        fused = fusion.combine(fused, lexical.scores_of(candidates), weight)
    order = np.lexsort((candidates, -fused))
    return _Ranked(candidates[order], fused[order], dense_rank, lexical_rank, sentences)


def _rescored(
    candidates: np.ndarray, sentences: dict[int, SentenceVectors], second: np.ndarray
) -> list[np.ndarray]:
    """The rescorer's passage score and best-sentence score of each candidate.

    A candidate without stored vectors gets the lowest score of the others, so
    it is neither lifted nor buried by a vote it could not take part in.
    """
    found = [sentences.get(int(pid)) for pid in candidates]
    present = np.array([f is not None for f in found])
    if not present.any():
        return []
    stored = [f for f in found if f is not None]
    passage = np.full(len(candidates), np.nan)
    passage[present] = np.stack([f.passage for f in stored]) @ second
    counts = np.array([len(f.sentences) for f in stored])
    best = passage.copy()
    if counts.sum():  # one product for all sentences, then the best of each passage's run
        cosines = np.vstack([f.sentences for f in stored if len(f.sentences)]) @ second
        runs = np.maximum.reduceat(cosines, np.concatenate([[0], np.cumsum(counts[counts > 0])[:-1]]))
        best[np.flatnonzero(present)[counts > 0]] = runs
    return [np.nan_to_num(part, nan=float(np.nanmin(part))) for part in (passage, best)]


def _check_filters(filters: Mapping[str, object] | None) -> Filters | None:
    """Validated filters with every value as a tuple of strings (None when there are none)."""
    if not filters:
        return None
    if not isinstance(filters, Mapping) or not all(isinstance(key, str) and key for key in filters):
        raise BadQuery("filters must map field names to a value or a list of values")
    checked = {
        key: tuple(sorted({str(v) for v in (wanted if isinstance(wanted, (list, tuple, set)) else [wanted])}))
        for key, wanted in filters.items()
    }
    for text in (text for key, values in checked.items() for text in (key, *values)):
        # SQLite stores UTF-8 text and a NUL ends it: refuse what it would otherwise fail on
        if any(ch < " " or ch == "\x7f" or "\ud800" <= ch <= "\udfff" for ch in text):
            raise BadQuery(f"filter {text[:40]!r} holds a control character or a lone surrogate")
    return checked
