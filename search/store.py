"""The small interface between ranking and storage, and what every store's reading side shares.

:class:`~search.searcher.Searcher` owns everything a user sees (query
checks, fusion, highlighting, hits); a *store* owns where passages, vectors
and term statistics live.  The embedded FAISS + SQLite store
(:mod:`search.embedded`) is the default; Milvus (:mod:`search.milvus`)
implements the same protocols so that ranking stays identical whichever one
holds the data.

Retrieval returns result objects rather than bare arrays because fusion needs
the *exact* score of every candidate in both lists: a passage that only the
lexical side found still needs its dense score, and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np

from indexer.analyze import Analyzer
from indexer.records import PassageRecord, SentenceVectors

#: Validated filters: field name → accepted values.
Filters = Mapping[str, tuple[str, ...]]
#: Filter results kept per snapshot (a page of results asks the same filters twice: dense and lexical).
FILTER_CACHE = 64

_Found = TypeVar("_Found")


class Retrieved(Protocol):
    """One retriever's best candidates for one query."""

    ids: np.ndarray  # passage ids, best first
    scores: np.ndarray  # their scores, same order

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        """Exact scores of any passages ``ids`` (0 for a lexical non-match)."""


class LexicalRetrieved(Retrieved, Protocol):
    """BM25 candidates plus how much of the query the best one covers."""

    coverage: float  # share of the query's IDF mass present in the best passage (0..1)


class Snapshot(Protocol):
    """One committed, consistent state of an index; all reads of one search use one snapshot."""

    analyzer: Analyzer

    @property
    def size(self) -> int:
        """Passages searchable in this state."""

    def info(self) -> dict:
        """Counts, model and format facts for health checks."""

    def matches_nothing(self, filters: Filters | None) -> bool:
        """True when ``filters`` leave no passage (so a search can stop early)."""

    def dense(self, vector: np.ndarray, n: int, filters: Filters | None) -> Retrieved:
        """The ``n`` nearest passages to ``vector`` (inner product)."""

    def lexical(self, terms: list[str], n: int, filters: Filters | None) -> LexicalRetrieved:
        """The ``n`` best BM25 passages for the analyzed query ``terms``."""

    def passages(self, ids: list[int]) -> dict[int, PassageRecord]:
        """Stored text and metadata of passages ``ids`` (missing ids are absent)."""

    def sentence_vectors(self, ids: list[int]) -> dict[int, SentenceVectors]:
        """The rescorer's vectors of passages ``ids`` (empty when the index has no rescorer)."""


class Store(Protocol):
    """An open index: hands out the newest committed snapshot."""

    path: Path  # the index directory
    model_id: str
    dim: int
    rescorer: dict | None  # {"id", "dim"} of the index's rescoring model, if it has one

    def snapshot(self) -> Snapshot:
        """The newest committed state (cheap when nothing changed)."""

    def check_model(self, model_id: str, dim: int) -> None:
        """Raise :class:`~indexer.errors.ModelMismatch` unless this model built the index."""

    def close(self) -> None:
        """Release files and connections."""


class FilterCache(Generic[_Found]):
    """What a snapshot found for each filter it was asked, kept for that snapshot only.

    A user paging through one filtered search asks for the same filter again
    and again; the answer cannot change within one committed generation.  The
    cache is emptied when it is full: the filters of one session are few.
    """

    def __init__(self, size: int = FILTER_CACHE) -> None:
        self._size = size
        self._found: dict[tuple, _Found] = {}

    def get(self, filters: Filters, find: Callable[[Filters], _Found]) -> _Found:
        """``find(filters)``, computed once per distinct ``filters``."""
        key = tuple(sorted(filters.items()))
        found = self._found.get(key)
        if found is None:
            found = find(filters)
            if len(self._found) >= self._size:
                self._found.clear()
            self._found[key] = found
        return found


def snapshot_info(manifest: dict, store: str, *, passages: int, documents: int, generation: int) -> dict:
    """What :meth:`Snapshot.info` reports, the same keys for every store (``store`` names it)."""
    return {
        "passages": passages,
        "documents": documents,
        "model": manifest["model"]["id"],
        "dim": manifest["model"]["dim"],
        "format_version": manifest["format_version"],
        "generation": generation,
        "analyzer": manifest["analyzer"],
        # the dictionary of the cross-language bridge when the index was built (None: built before it existed)
        "translation": manifest.get("translation"),
        "backend": store,
    }
