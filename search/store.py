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

import json
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import numpy as np

from indexer.analyze import Analyzer
from indexer.records import PassageRecord, SentenceVectors, StoredDocument

#: Validated filters: field name → accepted values.
Filters = Mapping[str, tuple[str, ...]]
#: Filter results kept per snapshot (a page of results asks the same filters twice: dense and lexical).
FILTER_CACHE = 64

_Found = TypeVar("_Found")


@dataclass(frozen=True, eq=False)
class Within:
    """Passages a search is confined to besides its filters: what a query's phrases and exclusions resolve to.

    Resolved once per search by :mod:`search.constraints` (the same for every
    store); each store turns it into its own restriction (a FAISS bitmap and a
    BM25 row mask, or a Milvus ``id in`` expression).
    """

    include: np.ndarray | None  # sorted passage ids every hit must be among (None: no such restriction)
    exclude: np.ndarray  # sorted passage ids no hit may be
    key: Hashable  # the constraints resolved (phrases, exclusions): identifies the restriction within a snapshot


def field_text(value: object) -> str:
    """A metadata value as filters compare it and facets show it: as SQLite's ``CAST(... AS TEXT)`` writes it."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class FieldValues:
    """The metadata keys of one generation's documents and the distinct values of each (as :func:`field_text`).

    What ``field:`` in a query may name, and what a range is matched
    against; both stores build it once per snapshot from their documents.
    """

    def __init__(self, metas: Iterable[Mapping[str, object]]) -> None:
        values: dict[str, set[str]] = {}
        for meta in metas:
            for key, value in meta.items():
                values.setdefault(key, set()).add(field_text(value))
        self.names = frozenset(values)
        self._values = {key: frozenset(found) for key, found in values.items()}

    def of(self, field: str) -> frozenset[str]:
        return self._values.get(field, frozenset())


def restriction_key(filters: Filters | None, within: Within | None) -> tuple:
    """What identifies a restriction of one snapshot, for :class:`FilterCache`."""
    return tuple(sorted((filters or {}).items())), None if within is None else within.key


class Retrieved(Protocol):
    """One retriever's best candidates for one query."""

    ids: np.ndarray  # passage ids, best first
    scores: np.ndarray  # their scores, same order

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        """Exact scores of any passages ``ids`` (0 for a lexical non-match)."""


class LexicalRetrieved(Retrieved, Protocol):
    """BM25 candidates plus how much of the query the best one covers."""

    coverage: float  # share of the query's IDF mass present in the best passage (0..1)


@dataclass(frozen=True)
class StoredText:
    """One document as a store holds it: its facts, decoded text and passages."""

    document: StoredDocument
    text: str | None  # None: the store keeps no decoded text (Milvus), see search.documents
    passages: list[PassageRecord]


class Snapshot(Protocol):
    """One committed, consistent state of an index; all reads of one search use one snapshot."""

    analyzer: Analyzer

    @property
    def size(self) -> int:
        """Passages searchable in this state."""

    def info(self) -> dict:
        """Counts, model and format facts for health checks."""

    def field_names(self) -> frozenset[str]:
        """The metadata keys the documents of this state hold (what ``field:`` in a query may name)."""

    def field_values(self, field: str) -> frozenset[str]:
        """The distinct values (as :func:`field_text`) of metadata key ``field``: what a range is matched against."""

    def matches_nothing(self, filters: Filters | None, within: Within | None = None) -> bool:
        """True when ``filters`` (and ``within``) leave no passage (so a search can stop early)."""

    def dense(self, vector: np.ndarray, n: int, filters: Filters | None, within: Within | None = None) -> Retrieved:
        """The ``n`` nearest passages to ``vector`` (inner product)."""

    def lexical(
        self, terms: list[str], n: int, filters: Filters | None, within: Within | None = None
    ) -> LexicalRetrieved:
        """The ``n`` best BM25 passages for the analyzed query ``terms``."""

    def holding(self, terms: list[str]) -> np.ndarray:
        """Sorted ids of the passages whose analyzed terms include every one of ``terms`` (all passages for none)."""

    def holding_character(self, char: str) -> np.ndarray | None:
        """Sorted ids of the passages holding the Chinese character ``char`` among their terms (in a bigram
        or as a word of its own), or None when this store cannot tell without reading every passage."""

    def first(self, n: int, filters: Filters | None, within: Within | None = None) -> np.ndarray:
        """The ``n`` smallest ids of the passages passing ``filters`` and ``within`` (document order)."""

    def searched(self) -> None:
        """A search of this state is done: let go of what it needed only while it ran (a store holding
        nothing of the kind does nothing)."""

    def passages(self, ids: list[int]) -> dict[int, PassageRecord]:
        """Stored text and metadata of passages ``ids`` (missing ids are absent)."""

    def passage_texts(self, ids: list[int]) -> dict[int, str]:
        """The text alone of passages ``ids`` (missing ids are absent): what a phrase check reads, without the
        document facts :meth:`passages` joins in."""

    def sentence_vectors(self, ids: list[int]) -> dict[int, SentenceVectors]:
        """The rescorer's vectors of passages ``ids`` (empty when the index has no rescorer)."""

    def passage_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The stored dense vectors of passages ``ids`` of this state (others are absent)."""

    def document(self, name: str) -> StoredText | None:
        """The document named ``name`` in this state (None: there is none)."""


class Store(Protocol):
    """An open index: hands out the newest committed snapshot."""

    path: Path  # the index directory
    model_id: str
    dim: int
    rescorer: dict | None  # {"id", "dim"} of the index's rescoring model, if it has one

    def snapshot(self) -> Snapshot:
        """The newest committed state (cheap when nothing changed)."""

    def refresh(self) -> Snapshot:
        """The newest committed state, waiting for it to load (for a thread that follows the index,
        never a request: :meth:`snapshot` may keep serving the previous state while a large one loads)."""

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

    def get(self, key: Hashable, find: Callable[[], _Found]) -> _Found:
        """``find()``, computed once per distinct ``key`` (see :func:`restriction_key`)."""
        found = self._found.get(key)
        if found is None:
            found = find()
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
