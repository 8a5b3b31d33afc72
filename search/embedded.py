"""The embedded store: one index directory of FAISS + BM25 + SQLite files.

All file access goes through :mod:`indexer.store`; this module only turns a
committed generation into the :mod:`search.store` protocols and moves to a
newer generation when a writer commits one.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

import faiss
import numpy as np

from indexer import ann
from indexer.analyze import BIGRAM_PREFIX, Analyzer
from indexer.bm25 import BM25Index
from indexer.errors import IndexFormatError
from indexer.index_dir import Stamp
from indexer.records import PassageRecord, SentenceVectors
from indexer.store import IndexReader

from . import fusion
from .store import FieldValues, FilterCache, Filters, StoredText, Within, restriction_key, snapshot_info

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Dense:
    ids: np.ndarray
    scores: np.ndarray
    vectors: faiss.Index
    vector: np.ndarray

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        return self.vectors.reconstruct_batch(ids) @ self.vector


@dataclass(frozen=True)
class _Lexical:
    ids: np.ndarray
    scores: np.ndarray
    coverage: float
    terms: list[str]
    bm25: BM25Index

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        return self.bm25.scores_at(self.terms, self.bm25.rows_of(ids))


@dataclass(frozen=True)
class _Allowed:
    """The passages one filter lets through, in the form each retriever wants."""

    dense: ann.Allowed
    rows: np.ndarray  # boolean mask over BM25 rows


@dataclass(frozen=True)
class EmbeddedSnapshot:
    """Everything read from one committed generation of an index directory."""

    reader: IndexReader
    vectors: faiss.Index
    bm25: BM25Index
    analyzer: Analyzer
    stamp: Stamp
    _filtered: FilterCache[_Allowed] = field(default_factory=FilterCache, repr=False, compare=False)

    @classmethod
    def load(cls, reader: IndexReader, previous: EmbeddedSnapshot | None = None) -> EmbeddedSnapshot:
        """Load ``reader``'s generation; the analyzer is kept if its configuration did not change."""
        stamp = reader.stamp()
        config = reader.manifest["analyzer"]
        if previous is not None and previous.reader.manifest["analyzer"] == config:
            analyzer = previous.analyzer
        else:
            analyzer = Analyzer.from_config(config, reader.userdict())
        return cls(reader, reader.load_vectors(), reader.load_lexical(), analyzer, stamp)

    @property
    def size(self) -> int:
        return int(self.vectors.ntotal)

    def info(self) -> dict:
        manifest = self.reader.manifest
        return snapshot_info(manifest, "embedded", passages=self.size, documents=manifest["counts"]["documents"],
                             generation=manifest["generation"])

    @cached_property
    def _metadata(self) -> FieldValues:
        return FieldValues(doc.meta for doc in self.reader.documents().values())

    def field_names(self) -> frozenset[str]:
        return self._metadata.names

    def field_values(self, field: str) -> frozenset[str]:
        return self._metadata.of(field)

    def _allowed(self, filters: Filters | None, within: Within | None = None) -> _Allowed | None:
        """The passages passing ``filters`` and ``within`` (None: no restriction), cached per snapshot:
        a user paging through one filtered search asks for the same filter again and again."""
        if not filters and within is None:
            return None
        if within is None:
            return self._filtered.get(restriction_key(filters, None), lambda: self._filtered_by(filters))
        return self._filtered.get(restriction_key(filters, within), lambda: self._find_allowed(filters, within))

    def _filtered_by(self, filters: Filters) -> _Allowed:
        ids = self.reader.filtered_ids(dict(filters))
        return _Allowed(ann.Allowed(ids), np.isin(self.bm25.row_ids, ids))

    @cached_property
    def _everything(self) -> _Allowed:
        """Every passage, as a restriction: what an exclusion without filters removes passages from."""
        return _Allowed(ann.Allowed(self.bm25.row_ids), np.ones(self.bm25.n_rows, dtype=bool))

    def _find_allowed(self, filters: Filters | None, within: Within) -> _Allowed:
        """``filters`` narrowed by ``within``.  Phrase and exclusion ids come from the postings, so each has
        a BM25 row; an exclusion only clears the bits of its passages (no pass over every id)."""
        base = self._allowed(filters) if filters else self._everything
        if within.include is None:
            rows = base.rows.copy()
            rows[self.bm25.rows_of(within.exclude)] = False
            return _Allowed(base.dense.without(within.exclude), rows)
        include = within.include[base.rows[self.bm25.rows_of(within.include)]]
        ids = np.setdiff1d(include, within.exclude, assume_unique=True)
        rows = np.zeros(self.bm25.n_rows, dtype=bool)
        rows[self.bm25.rows_of(ids)] = True
        return _Allowed(ann.Allowed(ids), rows)

    def matches_nothing(self, filters: Filters | None, within: Within | None = None) -> bool:
        allowed = self._allowed(filters, within)
        return self.size == 0 or (allowed is not None and not len(allowed.dense))

    def dense(self, vector: np.ndarray, n: int, filters: Filters | None, within: Within | None = None) -> _Dense:
        allowed = self._allowed(filters, within)
        ids, scores = ann.search(self.vectors, vector, min(n, self.size), None if allowed is None else allowed.dense)
        return _Dense(ids, scores, self.vectors, vector)

    def holding(self, terms: list[str]) -> np.ndarray:
        ids = self.bm25.row_ids
        numbers = [self.bm25.terms.get(term) for term in dict.fromkeys(terms)]
        if None in numbers:
            return ids[:0]
        postings = sorted((self.bm25.rows[self.bm25.offsets[t] : self.bm25.offsets[t + 1]] for t in numbers), key=len)
        if not postings:
            return ids
        rows = postings[0]
        for more in postings[1:]:  # rarest first: each intersection is at most as large as the rarest list
            rows = np.intersect1d(rows, more, assume_unique=True)
        return ids[rows]

    @cached_property
    def _bigrams_of(self) -> dict[str, list[int]]:
        """Character -> numbers of the bigram terms holding it (built on first use: one pass over the terms)."""
        found: dict[str, list[int]] = {}
        for term, number in self.bm25.terms.items():
            if term.startswith(BIGRAM_PREFIX):
                for char in set(term[len(BIGRAM_PREFIX) :]):
                    found.setdefault(char, []).append(number)
        return found

    def holding_character(self, char: str) -> np.ndarray | None:
        numbers = self._bigrams_of.get(char, [])
        if char in self.bm25.terms:
            numbers = [*numbers, self.bm25.terms[char]]
        offsets = self.bm25.offsets
        rows = [self.bm25.rows[offsets[t] : offsets[t + 1]] for t in numbers]
        return self.bm25.row_ids[np.unique(np.concatenate(rows))] if rows else self.bm25.row_ids[:0]

    def first(self, n: int, filters: Filters | None, within: Within | None = None) -> np.ndarray:
        allowed = self._allowed(filters, within)
        return (self.bm25.row_ids if allowed is None else allowed.dense.ids)[:n]

    def lexical(self, terms: list[str], n: int, filters: Filters | None, within: Within | None = None) -> _Lexical:
        allowed = self._allowed(filters, within)
        rows, scores = self.bm25.top(terms, n, None if allowed is None else allowed.rows)
        coverage = 0.0
        if len(rows):
            matched = self.bm25.matched_terms(terms, int(rows[0]))
            coverage = fusion.coverage(self.bm25.term_idf(terms), matched)
        return _Lexical(self.bm25.row_ids[rows], scores, coverage, terms, self.bm25)

    def passages(self, ids: list[int]) -> dict[int, PassageRecord]:
        return self.reader.passages(ids)

    def passage_texts(self, ids: list[int]) -> dict[int, str]:
        return self.reader.passage_texts(ids)

    def sentence_vectors(self, ids: list[int]) -> dict[int, SentenceVectors]:
        return self.reader.sentence_vectors(ids)

    def passage_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        found = {}
        for pid in ids:
            try:  # FAISS holds exactly the passages of this generation
                found[pid] = self.vectors.reconstruct(int(pid))
            except RuntimeError:
                continue
        return found

    def document(self, name: str) -> StoredText | None:
        found = self.reader.document(name)
        return None if found is None else StoredText(*found)


class EmbeddedStore:
    """An index directory, followed from generation to generation.

    Each :meth:`snapshot` costs one ``stat`` of the manifest; when a writer
    committed, the new generation is loaded whole (under a lock, once) and
    readers still holding the old snapshot finish on it undisturbed.
    """

    def __init__(self, reader: IndexReader) -> None:
        self.path = reader.path
        self.model_id = reader.model_id
        self.dim = reader.dim
        self.rescorer = reader.rescorer
        self._snapshot = EmbeddedSnapshot.load(reader)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: str | os.PathLike[str]) -> EmbeddedStore:
        return cls(IndexReader.open(index_dir))

    @property
    def reader(self) -> IndexReader:
        return self._snapshot.reader

    def check_model(self, model_id: str, dim: int) -> None:
        self._snapshot.reader.check_model(model_id, dim)

    def snapshot(self) -> EmbeddedSnapshot:
        current = self._snapshot
        if current.reader.stamp() == current.stamp:
            return current
        with self._lock:
            current = self._snapshot
            if current.reader.stamp() == current.stamp:
                return current
            for attempt in range(3):
                reader = IndexReader.open(current.reader.path)
                reader.check_model(self.model_id, self.dim)
                try:
                    self._snapshot = EmbeddedSnapshot.load(reader, current)
                    break
                except IndexFormatError:  # two commits in quick succession removed its files: read anew
                    reader.close()
                    if attempt == 2:
                        raise
            logger.info("now searching generation %d of %s", reader.generation, reader.path)
            return self._snapshot  # the old reader is left to the garbage collector: other threads may use it

    def close(self) -> None:
        self._snapshot.reader.close()

