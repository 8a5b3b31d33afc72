"""The Milvus backend: the :mod:`search.backend` protocols over a Milvus-backed index.

Milvus finds the candidates (dense search over ``vector``, BM25 full-text
search over ``sparse``); the exact scores that fusion needs are computed here:

* **dense** — the cosine of a candidate is the dot product of the query with
  its stored vector (fetched by id), exact whatever the vector index;
* **lexical** — BM25 (same k1/b, IDF and length normalisation as
  :mod:`indexer.bm25`) from each candidate's stored terms, the document
  frequencies kept in the index and the committed passage and term counts.
  Milvus's own BM25 score is only used to pick the candidates: milvus-lite
  returns it negated and computes its statistics over the *filtered* rows
  only (a filtered search scores a passage differently from an unfiltered
  one), so a raw score is neither comparable nor thresholdable; ranking by
  our exact score keeps the lexical side identical to the embedded backend's
  and gives the IDF that *coverage* needs.

Filters become ``array_contains_any(tags, [...])`` clauses, one per field;
every expression also carries the committed generation (see
:mod:`indexer.milvus_store`), so a search never sees half a batch.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.analyze import Analyzer
from indexer.milvus_store import MilvusIndex, filter_tags, literal, read_manifest, term_key, visible
from indexer.store import MANIFEST, PassageRecord, SentenceVectors

from . import fusion
from .backend import Filters

logger = logging.getLogger(__name__)

_FILTER_CACHE = 64


@dataclass(frozen=True)
class _Dense:
    ids: np.ndarray
    scores: np.ndarray
    index: MilvusIndex
    vector: np.ndarray

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        rows = {int(r["id"]): r["vector"] for r in self.index.get(self.index.passages_name, "id",
                                                                   [int(i) for i in ids], ["id", "vector"])}
        vectors = np.array([rows[int(i)] for i in ids], dtype=np.float32).reshape(len(ids), -1)
        return vectors @ self.vector


@dataclass(frozen=True)
class _BM25:
    """Exact BM25 of stored term lists for one query."""

    idf: dict[str, float]  # term key -> IDF, for the distinct query terms
    k1: float
    b: float
    avg_len: float

    def score(self, lexical: str) -> float:
        keys = lexical.split()
        counts = Counter(keys)
        norm = self.k1 * (1.0 - self.b + self.b * len(keys) / self.avg_len)
        return sum(w * counts[k] * (self.k1 + 1.0) / (counts[k] + norm) for k, w in self.idf.items() if counts[k])


@dataclass
class _Lexical:
    ids: np.ndarray
    scores: np.ndarray
    coverage: float
    bm25: _BM25
    index: MilvusIndex
    known: dict[int, float] = field(default_factory=dict)

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        missing = [int(i) for i in ids if int(i) not in self.known]
        if missing:
            self.known.update(_score_rows(self.index, missing, self.bm25))
        return np.array([self.known.get(int(i), 0.0) for i in ids], dtype=np.float32)


def _score_rows(index: MilvusIndex, ids: list[int], bm25: _BM25) -> dict[int, float]:
    rows = index.get(index.passages_name, "id", ids, ["id", "lexical"])
    return {int(r["id"]): bm25.score(r["lexical"]) for r in rows}


class MilvusSnapshot:
    """One committed generation of a Milvus-backed index."""

    def __init__(self, index: MilvusIndex, analyzer: Analyzer, state: dict) -> None:
        self.index = index
        self.analyzer = analyzer
        self.state = state
        self._visible = visible(state)
        self._filtered: dict[tuple, bool] = {}

    @property
    def size(self) -> int:
        return int(self.state["passages"])

    def info(self) -> dict:
        manifest = self.index.manifest
        return {
            "passages": self.size,
            "documents": int(self.state["documents"]),
            "model": manifest["model"]["id"],
            "dim": manifest["model"]["dim"],
            "format_version": manifest["format_version"],
            "generation": int(self.state["generation"]),
            "analyzer": manifest["analyzer"],
            "backend": "milvus",
            "collection": manifest["milvus"]["collection"],
        }

    def _expr(self, filters: Filters | None) -> str:
        clauses = [self._visible]
        for key, values in sorted((filters or {}).items()):
            clauses.append(f"array_contains_any(tags, {literal(filter_tags(key, v) for v in values)})")
        return " and ".join(clauses)

    def matches_nothing(self, filters: Filters | None) -> bool:
        if self.size == 0:
            return True
        if not filters:
            return False
        key = tuple(sorted(filters.items()))
        if key not in self._filtered:
            if len(self._filtered) >= _FILTER_CACHE:
                self._filtered.clear()
            rows = self.index.client.query(self.index.passages_name, filter=self._expr(filters),
                                           output_fields=["id"], limit=1)
            self._filtered[key] = not rows
        return self._filtered[key]

    def dense(self, vector: np.ndarray, n: int, filters: Filters | None) -> _Dense:
        ids, scores = self._search("vector", vector.astype(np.float32).tolist(), n, filters, "IP")
        return _Dense(ids, scores, self.index, vector)

    def lexical(self, terms: list[str], n: int, filters: Filters | None) -> _Lexical:
        distinct = sorted(set(terms))
        keys = {term: term_key(term) for term in distinct}
        bm25 = self._bm25(list(keys.values()))
        empty = np.zeros(0, dtype=np.int64)
        if not distinct or not self.size:
            return _Lexical(empty, np.zeros(0, np.float32), 0.0, bm25, self.index)
        found, _ = self._search("sparse", " ".join(keys.values()), n, filters, "BM25")
        rows = self.index.get(self.index.passages_name, "id", [int(i) for i in found], ["id", "lexical"])
        lexical = {int(r["id"]): r["lexical"] for r in rows}
        known = {pid: bm25.score(text) for pid, text in lexical.items()}
        ranked = sorted((pid for pid, s in known.items() if s > 0), key=lambda pid: (-known[pid], pid))
        coverage = 0.0
        if ranked:
            present = set(lexical[ranked[0]].split())
            idf = {term: bm25.idf[key] for term, key in keys.items()}
            coverage = fusion.coverage(idf, {term for term, key in keys.items() if key in present})
        ids = np.array(ranked, dtype=np.int64)
        return _Lexical(ids, np.array([known[p] for p in ranked], np.float32), coverage, bm25, self.index, known)

    def _bm25(self, keys: list[str]) -> _BM25:
        """BM25 statistics of this generation for the query's term keys (one round trip)."""
        n = self.size
        df = self.index.document_frequencies(keys) if keys and n else {}
        idf = {key: math.log1p((n - df.get(key, 0) + 0.5) / (df.get(key, 0) + 0.5)) for key in keys}
        total = int(self.state["total_terms"])
        params = self.index.manifest["bm25"]
        return _BM25(idf, float(params["k1"]), float(params["b"]), total / n if n and total else 1.0)

    def _search(self, field: str, data: object, n: int, filters: Filters | None, metric: str):
        limit = min(n, self.size)
        if limit <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        result = self.index.client.search(self.index.passages_name, data=[data], anns_field=field, limit=limit,
                                          filter=self._expr(filters), output_fields=["id"],
                                          search_params={"metric_type": metric})
        hits = result[0] if result else []
        ids = np.array([int(h["id"]) for h in hits], dtype=np.int64)
        return ids, np.array([float(h["distance"]) for h in hits], dtype=np.float32)

    def passages(self, ids: list[int]) -> dict[int, PassageRecord]:
        return self.index.passage_records(ids)

    def sentence_vectors(self, ids: list[int]) -> dict[int, SentenceVectors]:
        return self.index.sentence_vectors(ids)


class MilvusBackend:
    """A Milvus-backed index directory, followed from generation to generation.

    Each :meth:`snapshot` costs one ``stat`` of the manifest (``souyi index``
    may have switched the directory to new collections) and one read of the
    collection's committed state.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self.index = MilvusIndex(path, read_manifest(path))
        self.index.load()
        self.model_id, self.dim = self.index.model_id, self.index.dim
        self.rescorer = self.index.manifest.get("rescorer")
        self._analyzer = Analyzer.from_config(self.index.manifest["analyzer"], self.index.userdict())
        self._snapshot = MilvusSnapshot(self.index, self._analyzer, self.index.state())

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str]) -> MilvusBackend:
        return cls(Path(index_dir))

    def check_model(self, model_id: str, dim: int) -> None:
        self.index.check_model(model_id, dim)

    def snapshot(self) -> MilvusSnapshot:
        with self._lock:
            if _stamp(self.path) != self._stamp:  # rebuilt: new collections
                index = MilvusIndex(self.path, read_manifest(self.path))
                index.check_model(self.model_id, self.dim)
                index.load()
                self._analyzer = Analyzer.from_config(index.manifest["analyzer"], index.userdict())
                self.index, self._stamp = index, _stamp(self.path)
            state = self.index.state()
            if self._snapshot.index is not self.index or state != self._snapshot.state:
                self._snapshot = MilvusSnapshot(self.index, self._analyzer, state)
                logger.info("now searching generation %d of %s", state["generation"], self.path)
            return self._snapshot

    def close(self) -> None:
        self.index.close()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = (path / MANIFEST).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)
