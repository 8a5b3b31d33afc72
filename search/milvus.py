"""The Milvus store: the :mod:`search.store` protocols over a Milvus-backed index.

Every call to Milvus goes through :class:`indexer.milvus_store.MilvusIndex`;
this module decides what to ask and scores what comes back.

Milvus finds the candidates (dense search over ``vector``, BM25 full-text
search over ``sparse``); the exact scores that fusion needs are computed here:

* **dense** — the cosine of a candidate is the dot product of the query with
  its stored vector, exact whatever the vector index;
* **lexical** — BM25 (:func:`indexer.bm25.term_weight`, the formula of the
  embedded store) from each candidate's stored terms, the document
  frequencies kept in the index and the committed passage and term counts.
  Milvus's own BM25 score is only used to pick the candidates: milvus-lite
  returns it negated and computes its statistics over the *filtered* rows
  only (a filtered search scores a passage differently from an unfiltered
  one), so a raw score is neither comparable nor thresholdable; ranking by
  our exact score keeps the lexical side identical to the embedded store's
  and gives the IDF that *coverage* needs.

**Round trips.**  Both searches return their candidates' whole rows (vector,
terms, rescorer vectors, text), which the snapshot keeps, so fusing the union,
rescoring it and showing the hits need no further reads; a row is fetched
separately only when neither search of the query returned it and it has been
forgotten since.  Document frequencies are kept per snapshot, i.e. per
committed generation, so a term's count is read from Milvus once per
generation.  A hybrid search is thus the state read, two searches and at most
one read of term counts.

Filters become ``array_contains_any(tags, [...])`` clauses, one per field;
every expression also carries the committed generation (see
:mod:`indexer.milvus_store`), so a search never sees half a batch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from indexer.analyze import Analyzer
from indexer.bm25 import inverse_frequency, term_weight
from indexer.index_dir import manifest_stamp
from indexer.milvus_store import (
    MilvusIndex,
    decode_rescore,
    filter_tags,
    literal,
    passage_record,
    read_manifest,
    term_key,
    visible,
)
from indexer.records import PassageRecord, SentenceVectors

from . import fusion
from .store import FieldValues, FilterCache, Filters, StoredText, Within, restriction_key, snapshot_info

logger = logging.getLogger(__name__)

#: Passage rows a snapshot keeps: the candidates of about ten hybrid searches
#: at a time (rows with rescorer vectors are the large ones).
_ROW_CACHE = 2048
#: Term counts a snapshot keeps (small entries: a term and two numbers).
_TERM_CACHE = 100_000


class _Recent:
    """A thread-safe mapping that forgets its least recently used entries beyond ``size``.

    The web server's threads share one snapshot; what is forgotten is only
    read again, so the size bounds memory, never correctness.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def take(self, keys: Iterable[Hashable]) -> dict:
        with self._lock:
            found = {key: self._items[key] for key in keys if key in self._items}
            for key in found:
                self._items.move_to_end(key)
        return found

    def put(self, items: dict) -> None:
        with self._lock:
            self._items.update(items)
            for key in items:
                self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class _Row:
    """What a search uses of one stored passage."""

    vector: np.ndarray
    terms: str  # the ``lexical`` field: hashed terms, space-separated
    rescore: str  # the rescorer's vectors, encoded ("" without a rescorer)
    record: PassageRecord

    @classmethod
    def of(cls, row: dict) -> _Row:
        return cls(np.asarray(row["vector"], dtype=np.float32), row["lexical"], row.get("rescore", ""),
                   passage_record(row))


@dataclass(frozen=True)
class _Dense:
    ids: np.ndarray
    scores: np.ndarray
    snapshot: MilvusSnapshot
    vector: np.ndarray

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        rows = self.snapshot.rows(ids)
        zero = np.zeros(len(self.vector), dtype=np.float32)  # a passage deleted since: see MilvusSnapshot.rows
        vectors = np.array([rows[int(i)].vector if int(i) in rows else zero for i in ids], dtype=np.float32)
        return vectors.reshape(len(ids), len(self.vector)) @ self.vector


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
        return sum(term_weight(w, counts[k], len(keys), self.avg_len, self.k1, self.b)
                   for k, w in self.idf.items() if counts[k])


@dataclass
class _Lexical:
    ids: np.ndarray
    scores: np.ndarray
    coverage: float
    bm25: _BM25
    snapshot: MilvusSnapshot
    known: dict[int, float] = field(default_factory=dict)

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        missing = [int(i) for i in ids if int(i) not in self.known]
        if missing:
            rows = self.snapshot.rows(missing)
            self.known.update({pid: self.bm25.score(row.terms) for pid, row in rows.items()})
        return np.array([self.known.get(int(i), 0.0) for i in ids], dtype=np.float32)


class MilvusSnapshot:
    """One committed generation of a Milvus-backed index, with what its searches have read of it."""

    def __init__(self, index: MilvusIndex, analyzer: Analyzer, state: dict) -> None:
        self.index = index
        self.analyzer = analyzer
        self.state = state
        self._visible = visible(state)
        self._nothing: FilterCache[bool] = FilterCache()
        self._fields = index.row_fields()
        self._rows = _Recent(_ROW_CACHE)
        self._frequencies = _Recent(_TERM_CACHE)

    @property
    def size(self) -> int:
        return int(self.state["passages"])

    def info(self) -> dict:
        manifest = self.index.manifest
        info = snapshot_info(manifest, "milvus", passages=self.size, documents=int(self.state["documents"]),
                             generation=int(self.state["generation"]))
        return {**info, "collection": manifest["milvus"]["collection"]}

    @cached_property
    def _metadata(self) -> FieldValues:
        return FieldValues(doc.meta for doc in self.index.documents_at(self.state).values())

    def field_names(self) -> frozenset[str]:
        return self._metadata.names

    def field_values(self, field: str) -> frozenset[str]:
        return self._metadata.of(field)

    def _expr(self, filters: Filters | None, within: Within | None = None) -> str:
        clauses = [self._visible]
        for key, values in sorted((filters or {}).items()):
            clauses.append(f"array_contains_any(tags, {literal(filter_tags(key, v) for v in values)})")
        if within is not None:
            if within.include is not None:
                clauses.append(f"id in {literal(within.include.tolist())}")
            if len(within.exclude):
                clauses.append(f"id not in {literal(within.exclude.tolist())}")
        return " and ".join(clauses)

    def matches_nothing(self, filters: Filters | None, within: Within | None = None) -> bool:
        if self.size == 0:
            return True
        if not filters and within is None:
            return False
        return self._nothing.get(restriction_key(filters, within),
                                 lambda: not self.index.has_passage(self._expr(filters, within)))

    def dense(self, vector: np.ndarray, n: int, filters: Filters | None, within: Within | None = None) -> _Dense:
        ids, scores = self._search("vector", vector.astype(np.float32).tolist(), n, filters, "IP", within)
        return _Dense(ids, scores, self, vector)

    def holding(self, terms: list[str]) -> np.ndarray:
        # every stored key is 16 hex digits between spaces, so a substring match is a whole-key match
        clauses = [self._visible, *(f'lexical like "%{term_key(term)}%"' for term in dict.fromkeys(terms))]
        return self._ids(" and ".join(clauses))

    def holding_character(self, char: str) -> None:
        return None  # terms are stored hashed: the bigrams holding a character cannot be listed

    def first(self, n: int, filters: Filters | None, within: Within | None = None) -> np.ndarray:
        return self._ids(self._expr(filters, within))[:n]

    def searched(self) -> None:
        return None  # the Milvus server holds the index: nothing of it is mapped into this process

    def _ids(self, expr: str) -> np.ndarray:
        """Sorted ids of every passage matching ``expr``."""
        return np.array(sorted(int(row["id"]) for row in self.index.scan(self.index.passages_name, expr, ["id"])),
                        dtype=np.int64)

    def lexical(self, terms: list[str], n: int, filters: Filters | None, within: Within | None = None) -> _Lexical:
        distinct = sorted(set(terms))
        keys = {term: term_key(term) for term in distinct}
        bm25 = self._bm25(list(keys.values()))
        empty = np.zeros(0, dtype=np.int64)
        if not distinct or not self.size:
            return _Lexical(empty, np.zeros(0, np.float32), 0.0, bm25, self)
        found, _ = self._search("sparse", " ".join(keys.values()), n, filters, "BM25", within)
        rows = self.rows(found)
        known = {pid: bm25.score(row.terms) for pid, row in rows.items()}
        ranked = sorted((pid for pid, s in known.items() if s > 0), key=lambda pid: (-known[pid], pid))
        coverage = 0.0
        if ranked:
            present = set(rows[ranked[0]].terms.split())
            idf = {term: bm25.idf[key] for term, key in keys.items()}
            coverage = fusion.coverage(idf, {term for term, key in keys.items() if key in present})
        ids = np.array(ranked, dtype=np.int64)
        return _Lexical(ids, np.array([known[p] for p in ranked], np.float32), coverage, bm25, self, known)

    def _bm25(self, keys: list[str]) -> _BM25:
        """BM25 statistics of this generation for the query's term keys (term counts read once per generation)."""
        n = self.size
        df = self._frequencies.take(keys)
        missing = [key for key in keys if key not in df]
        if missing and n:
            stored = self.index.document_frequencies(missing, int(self.state["generation"]))
            counted = {key: stored.get(key, 0) for key in missing}
            self._frequencies.put(counted)
            df.update(counted)
        idf = {key: inverse_frequency(n, df.get(key, 0)) for key in keys}
        total = int(self.state["total_terms"])
        params = self.index.manifest["bm25"]
        return _BM25(idf, float(params["k1"]), float(params["b"]), total / n if n and total else 1.0)

    def _search(self, field: str, data: object, n: int, filters: Filters | None, metric: str,
                within: Within | None = None):
        """The ``n`` best candidates by ``field``; their rows are kept for scoring and showing them."""
        limit = min(n, self.size)
        if limit <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        hits = self.index.search(field, data, limit, self._expr(filters, within), metric)
        self._rows.put({int(h["id"]): _Row.of(h) for h in hits})
        ids = np.array([int(h["id"]) for h in hits], dtype=np.int64)
        return ids, np.array([float(h["distance"]) for h in hits], dtype=np.float32)

    def rows(self, ids: Iterable[int]) -> dict[int, _Row]:
        """The rows of passages ``ids``: kept ones, the others read in one round trip.

        Rows never change (a passage id is never reused), so a kept row is
        the one this generation's search found.  A row missing from the
        answer was deleted by a newer generation since the search found it
        and is left out: it scores 0 and is not shown.
        """
        wanted = list(dict.fromkeys(int(i) for i in ids))
        rows = self._rows.take(wanted)
        missing = [pid for pid in wanted if pid not in rows]
        if missing:
            read = {int(r["id"]): _Row.of(r) for r in self.index.get(self.index.passages_name, "id", missing,
                                                                       ["id", *self._fields])}
            self._rows.put(read)
            rows.update(read)
        return rows

    def passages(self, ids: list[int]) -> dict[int, PassageRecord]:
        return {pid: row.record for pid, row in self.rows(ids).items()}

    def passage_texts(self, ids: list[int]) -> dict[int, str]:
        return {pid: row.record.text for pid, row in self.rows(ids).items()}

    def sentence_vectors(self, ids: list[int]) -> dict[int, SentenceVectors]:
        rescorer = self.index.manifest.get("rescorer")
        if not ids or not rescorer:
            return {}
        return {pid: decode_rescore(row.rescore, int(rescorer["dim"])) for pid, row in self.rows(ids).items()
                if row.rescore}

    def passage_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        # read with this generation's filter: a passage of a batch being written is not one of this state
        rows = self.index.get(self.index.passages_name, "id", [int(i) for i in ids], ["id", "vector"], self._visible)
        return {int(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def document(self, name: str) -> StoredText | None:
        found = self.index.document_at(self.state, name)
        return None if found is None else StoredText(*found)


class MilvusStore:
    """A Milvus-backed index directory, followed from generation to generation.

    Each :meth:`snapshot` costs one ``stat`` of the manifest (``souyi index``
    may have switched the directory to new collections) and one read of the
    collection's committed state.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = manifest_stamp(path)
        self.index = MilvusIndex(path, read_manifest(path))
        self.index.load()
        self.model_id, self.dim = self.index.model_id, self.index.dim
        self.rescorer = self.index.rescorer
        self._analyzer = Analyzer.from_config(self.index.manifest["analyzer"], self.index.userdict())
        self._snapshot = MilvusSnapshot(self.index, self._analyzer, self.index.state())

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str]) -> MilvusStore:
        return cls(Path(index_dir))

    def check_model(self, model_id: str, dim: int) -> None:
        self.index.check_model(model_id, dim)

    def snapshot(self) -> MilvusSnapshot:
        with self._lock:
            if manifest_stamp(self.path) != self._stamp:  # rebuilt: new collections
                index = MilvusIndex(self.path, read_manifest(self.path))
                index.check_model(self.model_id, self.dim)
                index.load()
                self._analyzer = Analyzer.from_config(index.manifest["analyzer"], index.userdict())
                self.index, self._stamp = index, manifest_stamp(self.path)
            state = self.index.state()
            if self._snapshot.index is not self.index or state != self._snapshot.state:
                self._snapshot = MilvusSnapshot(self.index, self._analyzer, state)
                logger.info("now searching generation %d of %s", state["generation"], self.path)
            return self._snapshot

    def refresh(self) -> MilvusSnapshot:
        """As :meth:`snapshot`: Milvus loads a new state on its side, nothing waits here."""
        return self.snapshot()

    def close(self) -> None:
        self.index.close()

