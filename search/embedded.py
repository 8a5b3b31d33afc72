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

import numpy as np

from indexer import ann
from indexer.analyze import Analyzer
from indexer.bm25_segments import SegmentedBM25
from indexer.errors import IndexFormatError
from indexer.index_dir import Stamp
from indexer.postings_file import release_pages
from indexer.records import PassageRecord, SentenceVectors
from indexer.store import IndexReader

from . import fusion
from .segments import LiveSegment, Segment, Segments
from .store import FieldValues, FilterCache, Filters, StoredText, Within, restriction_key, snapshot_info

logger = logging.getLogger(__name__)

#: A loaded segment's key: its name and the deletion file of the generation (None: nothing deleted).
_Key = tuple[str, str | None]

#: A new generation whose files not yet loaded hold at most this many passages is loaded by the search that
#: meets it (so a batch is visible to the next search of its own process); a larger one is loaded in the
#: background while searches go on with the previous generation (docs/performance.md, "Segments").
SYNC_LOAD_PASSAGES = 50_000


@dataclass(frozen=True)
class _Dense:
    ids: np.ndarray
    scores: np.ndarray
    segments: Segments
    vector: np.ndarray

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        return self.segments.vectors_of(ids) @ self.vector


@dataclass(frozen=True)
class _Lexical:
    ids: np.ndarray
    scores: np.ndarray
    coverage: float
    terms: list[str]
    bm25: SegmentedBM25

    def scores_of(self, ids: np.ndarray) -> np.ndarray:
        """BM25 scores of ``ids``: those retrieved already known (the same float32 numbers, bit for bit),
        the others computed, so that fusion pays only for the candidates the vector search added."""
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(self.ids)
        known = self.ids[order]
        at = np.minimum(np.searchsorted(known, ids), max(len(known) - 1, 0))
        hit = known[at] == ids if len(known) else np.zeros(len(ids), dtype=bool)
        scores = np.empty(len(ids), dtype=np.float32)
        scores[hit] = self.scores[order][at[hit]]
        scores[~hit] = self.bm25.scores_of(self.terms, ids[~hit])
        return scores


@dataclass(frozen=True)
class _Allowed:
    """The passages one filter lets through, in the form each retriever wants."""

    dense: ann.Allowed
    rows: list[np.ndarray]  # per segment, a boolean mask over its BM25 rows (Segments.row_masks)


@dataclass(frozen=True)
class EmbeddedSnapshot:
    """Everything read from one committed generation of an index directory."""

    reader: IndexReader
    segments: Segments
    loaded: dict[_Key, LiveSegment]  # the segments of :attr:`segments` by name and deletion file
    analyzer: Analyzer
    stamp: Stamp
    _filtered: FilterCache[_Allowed] = field(default_factory=FilterCache, repr=False, compare=False)

    @classmethod
    def load(cls, reader: IndexReader, previous: EmbeddedSnapshot | None = None) -> EmbeddedSnapshot:
        """Load ``reader``'s generation, reading only what ``previous`` does not hold: segments it holds are
        kept (with this generation's deletion files), and so is the analyzer if its configuration is the same."""
        stamp = reader.stamp()
        config = reader.manifest["analyzer"]
        if previous is not None and previous.reader.manifest["analyzer"] == config:
            analyzer = previous.analyzer
        else:
            analyzer = Analyzer.from_config(config, reader.userdict())
        loaded = _live_segments(reader, {} if previous is None else previous.loaded)
        segments = Segments(list(loaded.values()), **reader.manifest.get("bm25", {}))
        return cls(reader, segments, loaded, analyzer, stamp)

    @property
    def size(self) -> int:
        return self.segments.size

    def info(self) -> dict:
        manifest = self.reader.manifest
        info = snapshot_info(manifest, "embedded", passages=self.size, documents=manifest["counts"]["documents"],
                             generation=manifest["generation"])
        return dict(info, segments=len(self.segments))

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
        return _Allowed(ann.Allowed(ids), self.segments.row_masks(ids))

    @cached_property
    def _everything(self) -> _Allowed:
        """Every passage, as a restriction: what an exclusion without filters removes passages from."""
        return _Allowed(ann.Allowed(self.segments.ids), self.segments.live_masks)

    def _find_allowed(self, filters: Filters | None, within: Within) -> _Allowed:
        """``filters`` narrowed by ``within``.  Phrase and exclusion ids come from the live postings, so each
        is a live passage; an exclusion only clears the bits of its passages (no pass over every id)."""
        base = self._allowed(filters) if filters else self._everything
        if within.include is None:
            return _Allowed(base.dense.without(within.exclude), self.segments.without(base.rows, within.exclude))
        include = within.include[self.segments.in_masks(base.rows, within.include)]
        ids = np.setdiff1d(include, within.exclude, assume_unique=True)
        return _Allowed(ann.Allowed(ids), self.segments.row_masks(ids))

    def matches_nothing(self, filters: Filters | None, within: Within | None = None) -> bool:
        allowed = self._allowed(filters, within)
        return self.size == 0 or (allowed is not None and not len(allowed.dense))

    def dense(self, vector: np.ndarray, n: int, filters: Filters | None, within: Within | None = None) -> _Dense:
        allowed = self._allowed(filters, within)
        ids, scores = self.segments.dense(vector, n, None if allowed is None else allowed.dense)
        return _Dense(ids, scores, self.segments, vector)

    def holding(self, terms: list[str]) -> np.ndarray:
        return self.segments.holding(terms)

    def holding_character(self, char: str) -> np.ndarray | None:
        return self.segments.holding_character(char)

    def searched(self) -> None:
        """In ``SOUYI_POSTINGS=release`` mode, unmap the posting pages searches touched once they add up (they
        stay in the page cache: :func:`indexer.postings_file.release_pages`); in the other modes, nothing to do."""
        release_pages(self.segments.posting_maps)

    def first(self, n: int, filters: Filters | None, within: Within | None = None) -> np.ndarray:
        allowed = self._allowed(filters, within)
        return self.segments.first(n) if allowed is None else allowed.dense.ids[:n]

    def lexical(self, terms: list[str], n: int, filters: Filters | None, within: Within | None = None) -> _Lexical:
        allowed = self._allowed(filters, within)
        bm25 = self.segments.bm25
        ids, scores = bm25.top(terms, n, None if allowed is None else allowed.rows)
        coverage = 0.0
        if len(ids):
            coverage = fusion.coverage(bm25.term_idf(terms), bm25.matched_terms(terms, int(ids[0])))
        return _Lexical(ids, scores, coverage, terms, bm25)

    def passages(self, ids: list[int]) -> dict[int, PassageRecord]:
        return self.reader.passages(ids)

    def passage_texts(self, ids: list[int]) -> dict[int, str]:
        return self.reader.passage_texts(ids)

    def sentence_vectors(self, ids: list[int]) -> dict[int, SentenceVectors]:
        return self.reader.sentence_vectors(ids)

    def passage_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        wanted = np.array([int(pid) for pid in ids], dtype=np.int64)
        live = wanted[self.segments.live_among(wanted)]  # the segments hold exactly the passages of this generation
        return dict(zip((int(pid) for pid in live), self.segments.vectors_of(live), strict=True))

    def document(self, name: str) -> StoredText | None:
        found = self.reader.document(name)
        return None if found is None else StoredText(*found)


def _live_segments(reader: IndexReader, previous: dict[_Key, LiveSegment]) -> dict[_Key, LiveSegment]:
    """``reader``'s segments with their deletions, in id order: taken from ``previous`` where it holds the same
    segment (only a deletion file newer than its own is read), loaded otherwise."""
    kept = {key[0]: live.segment for key, live in previous.items()}
    found = {}
    for entry in reader.segment_entries():
        key = (entry["name"], entry.get("deleted"))
        live, segment = previous.get(key), kept.get(entry["name"])
        if live is None and segment is not None:
            deletions = reader.load_deletions(entry)
            live = segment.live(deletions.ids, deletions.terms, deletions.length)
        elif live is None:
            data = reader.load_segment(entry)
            live = Segment.from_data(data).live(data.deleted_ids, data.deleted_terms, data.deleted_length)
        found[key] = live
    return found


def unloaded_passages(reader: IndexReader, loaded: EmbeddedSnapshot) -> int:
    """Passages of ``reader``'s generation in segments ``loaded`` does not hold: what moving to it reads."""
    held = {name for name, _ in loaded.loaded}
    return sum(int(entry["passages"]) for entry in reader.segment_entries() if entry["name"] not in held)


class EmbeddedStore:
    """An index directory, followed from generation to generation.

    Each :meth:`snapshot` costs one ``stat`` of the manifest.  When a writer
    committed, the new generation is loaded by the request that meets it only
    if that is cheap (at most :data:`SYNC_LOAD_PASSAGES` passages not loaded
    yet): a writer's own small batch is then visible to the next search in
    the same process.  A larger generation is loaded on one background thread
    while searches go on with the previous snapshot; readers still holding an
    old snapshot finish on it undisturbed.  :meth:`refresh` is for a thread
    that follows the index on purpose (``souyi serve``): it waits for the load.
    """

    def __init__(self, reader: IndexReader) -> None:
        self.path = reader.path
        self.model_id = reader.model_id
        self.dim = reader.dim
        self.rescorer = reader.rescorer
        self._snapshot = EmbeddedSnapshot.load(reader)
        self._lock = threading.Lock()  # one decision (and one cheap load) at a time
        self._background: threading.Thread | None = None
        self._failed: Stamp | None = None  # a manifest whose generation failed to load in the background

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
            self._follow(wait=False)
            return self._snapshot

    def refresh(self) -> EmbeddedSnapshot:
        """The newest committed state, waiting for it to load whatever its size (never for a request thread)."""
        with self._lock:
            loading = self._follow(wait=True)
        if loading is not None:
            loading.join()
        return self._snapshot

    def _follow(self, wait: bool) -> threading.Thread | None:
        """Move towards the generation on disk (caller holds the lock): load it now if it is cheap, else make
        sure a background load runs; returns that load's thread, if any."""
        if self._background is not None:
            return self._background
        current = self._snapshot
        stamp = current.reader.stamp()
        if stamp == current.stamp or (stamp == self._failed and not wait):
            return None
        reader = self._open_newest()
        if unloaded_passages(reader, current) <= SYNC_LOAD_PASSAGES:
            self._snapshot = self._load(reader, current)
            return None
        logger.info("loading generation %d of %s in the background", reader.generation, reader.path)
        self._background = threading.Thread(
            target=self._load_in_background, args=(reader, current, stamp), name="souyi-generation", daemon=True
        )
        self._background.start()
        return self._background

    def _load_in_background(self, reader: IndexReader, current: EmbeddedSnapshot, stamp: Stamp) -> None:
        loaded = None
        try:
            loaded = self._load(reader, current)
        except Exception:  # searches go on with the previous generation; a later commit tries again
            logger.exception("cannot load generation %d of %s; still searching generation %d",
                             reader.generation, reader.path, current.reader.generation)
        with self._lock:
            self._background = None
            if loaded is None:
                self._failed = stamp
            else:
                self._snapshot, self._failed = loaded, None

    def _open_newest(self) -> IndexReader:
        reader = IndexReader.open(self.path)
        try:
            reader.check_model(self.model_id, self.dim)
        except BaseException:
            reader.close()
            raise
        return reader

    def _load(self, reader: IndexReader, current: EmbeddedSnapshot) -> EmbeddedSnapshot:
        """``reader``'s generation loaded; reopened at most twice when two commits in quick succession
        removed its files before they were read."""
        for attempt in range(3):
            try:
                loaded = EmbeddedSnapshot.load(reader, current)
                break
            except IndexFormatError:
                reader.close()
                if attempt == 2:
                    raise
                reader = self._open_newest()
        logger.info("now searching generation %d of %s", reader.generation, reader.path)
        return loaded  # the old reader is left to the garbage collector: other threads may use it

    def close(self) -> None:
        self._snapshot.reader.close()
