"""One generation of an embedded index as a searcher reads it: immutable segments minus their deleted passages.

A segment (docs/index-format.md) holds the passages of one id range: a FAISS
index and BM25 postings that never change once written.  A later batch that
deletes some of its passages writes a small deletion file instead, so one
generation is a list of segments, each with the ids deleted as of that
generation.  The heavy parts (:class:`Segment`) are loaded once and shared by
every generation that names them; only :class:`LiveSegment`, the deleted ids
and what is derived from them, is per generation.

Everything here answers for all segments together, exactly as one index of
the live passages would: dense results are merged by score, id lists are
concatenated in segment order (segments hold increasing id ranges, so they
stay sorted), and deleted passages are never returned.
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import faiss
import numpy as np

from indexer import ann
from indexer.analyze import BIGRAM_PREFIX
from indexer.bm25 import DEFAULT_B, DEFAULT_K1
from indexer.bm25_segments import BM25Segment, SegmentedBM25
from indexer.postings_file import releasable_maps
from indexer.segment_files import SegmentData

#: Flat segments of at most this many live passages are searched together, as one block of vectors: one matrix
#: product instead of one FAISS call per segment, whose fixed cost dominates a search over many small segments
#: (docs/index-format.md, "Segments and searches").
SMALL_SEGMENT = 1_000


@dataclass(frozen=True, eq=False)
class Segment:
    """A segment's immutable files, loaded once and shared by every generation that holds the segment."""

    name: str
    vectors: faiss.Index
    lexical: BM25Segment  # without deletions: each generation adds its own (:meth:`live`)

    @classmethod
    def from_data(cls, data: SegmentData) -> Segment:
        """The segment of what :meth:`indexer.store.IndexReader.load_segment` read."""
        return cls(data.name, data.vectors, BM25Segment.from_arrays(data.lexical))

    def live(self, deleted: np.ndarray, terms: Mapping[str, int], length: int) -> LiveSegment:
        """This segment in a generation that deleted passages ``deleted`` (sorted) of it; ``terms`` and
        ``length`` are what they contributed to BM25's statistics (the segment's deletion file)."""
        return LiveSegment(self, self.lexical.with_deletions(deleted, terms, length))

    @property
    def first_id(self) -> int:
        return int(self.lexical.row_ids[0]) if self.lexical.n_rows else 0

    @property
    def last_id(self) -> int:
        return int(self.lexical.row_ids[-1]) if self.lexical.n_rows else -1

    @cached_property
    def training(self) -> bytes | None:
        """What the segment's IVF index was trained to (:func:`indexer.ann.training_key`; None: searched exactly)."""
        return ann.training_key(self.vectors)

    @cached_property
    def bigrams_of(self) -> dict[str, list[int]]:
        """Character -> numbers of the bigram terms holding it (built on first use: one pass over the terms)."""
        found: dict[str, list[int]] = {}
        for number, term in enumerate(self.lexical.vocabulary.words()):
            if term.startswith(BIGRAM_PREFIX):
                for char in set(term[len(BIGRAM_PREFIX) :]):
                    found.setdefault(char, []).append(number)
        return found

    def rows_holding(self, numbers: list[int]) -> np.ndarray:
        """Rows holding every term of ``numbers`` (rarest list first: each intersection is at most as large)."""
        offsets, rows = self.lexical.offsets, self.lexical.rows
        lists = sorted((rows[offsets[t] : offsets[t + 1]] for t in numbers), key=len)
        found = lists[0]
        for more in lists[1:]:
            found = np.intersect1d(found, more, assume_unique=True)
        return found


@dataclass(frozen=True, eq=False)
class LiveSegment:
    """A segment as one generation sees it: without the passages deleted as of that generation."""

    segment: Segment
    lexical: BM25Segment  # the segment's postings with this generation's deletions

    @property
    def row_ids(self) -> np.ndarray:
        return self.lexical.row_ids

    @property
    def deleted(self) -> np.ndarray:
        """Sorted passage ids of this segment deleted as of the generation."""
        return self.lexical.deleted

    @property
    def size(self) -> int:
        return self.lexical.n_live

    @property
    def live_rows(self) -> np.ndarray | None:
        """Boolean mask of the rows still live (None: nothing deleted)."""
        return self.lexical.live

    @cached_property
    def live_ids(self) -> np.ndarray:
        return self.row_ids if self.live_rows is None else self.row_ids[self.live_rows]

    @cached_property
    def allowed(self) -> ann.Allowed | None:
        """The FAISS restriction that leaves the deleted passages out (None: nothing deleted)."""
        return None if self.live_rows is None else ann.Allowed(self.live_ids)

    def ids_of(self, rows: np.ndarray) -> np.ndarray:
        """Passage ids of ``rows``, the deleted ones left out."""
        return self.lexical.live_ids(rows)


@dataclass(frozen=True)
class _Block:
    """The live passages of several small flat segments, searched exactly as one FAISS index.

    One exhaustive FAISS search (single-threaded, like every search: :func:`indexer.ann.search`) rather
    than a NumPy matrix product: NumPy hands a product of this size to a multi-threaded BLAS, whose
    threads fight the query encoder and the BM25 workers for two cores (docs/index-format.md).
    """

    index: faiss.Index

    @classmethod
    def of(cls, segments: Sequence[LiveSegment]) -> _Block:
        ids = np.concatenate([s.live_ids for s in segments])
        vectors = np.vstack([s.segment.vectors.reconstruct_batch(s.live_ids) for s in segments])
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
        return cls(index)

    def search(self, vector: np.ndarray, n: int, allowed: ann.Allowed | None) -> tuple[np.ndarray, np.ndarray]:
        return ann.search(self.index, vector, min(n, self.index.ntotal), allowed)


class Segments:
    """The live segments of one generation, ordered by id, answering as one index of the live passages."""

    def __init__(self, live: Sequence[LiveSegment], k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> None:
        self.live = tuple(s for s in live if len(s.row_ids))
        self.size = sum(s.size for s in self.live)
        small = [s for s in self.live if 0 < s.size <= SMALL_SEGMENT and ann.kind_of(s.segment.vectors) == "flat"]
        self._block = _Block.of(small) if len(small) > 1 else None
        blocked = {id(s) for s in small} if self._block is not None else set()
        self._searched = tuple(s for s in self.live if id(s) not in blocked)  # by FAISS, one call each
        # Unfiltered, IVF segments trained alike are probed together, as one index of their passages would be.
        alike: dict[bytes, list[LiveSegment]] = {}
        for segment in self._searched:
            if segment.segment.training is not None:
                alike.setdefault(segment.segment.training, []).append(segment)
        self._alike = tuple(group for group in alike.values() if len(group) > 1)
        grouped = {id(s) for group in self._alike for s in group}
        self._apart = tuple(s for s in self._searched if id(s) not in grouped)
        #: BM25 over the same segments, in the same order: ``allowed`` row masks line up with :attr:`live`.
        self.bm25 = SegmentedBM25([s.lexical for s in self.live], k1, b)

    def __len__(self) -> int:
        return len(self.live)

    def _restricted(self, allowed: ann.Allowed, segment: LiveSegment) -> ann.Allowed | None:
        """``allowed`` for one segment: its own ids when they are few (so that a small filter is scored
        exactly within the segment), the shared bitmap otherwise; None when none is in the segment."""
        ids = allowed.ids if len(allowed) <= ann.EXACT_FILTER_MAX else None
        if ids is None:
            return allowed
        lo, hi = np.searchsorted(ids, [segment.segment.first_id, segment.segment.last_id + 1])
        return ann.Allowed(ids[lo:hi]) if hi > lo else None

    def dense(self, vector: np.ndarray, n: int, allowed: ann.Allowed | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` nearest live passages (of ``allowed``, if given) by inner product over every segment.

        ``allowed`` holds live passages only (filters are resolved per
        generation), so it replaces a segment's own deletion restriction.
        """
        found = [] if self._block is None else [self._block.search(vector, n, allowed)]
        if allowed is None:
            for group in self._alike:
                found.extend(ann.search_alike([(s.segment.vectors, s.allowed) for s in group], vector, n))
        for segment in self._searched if allowed is not None else self._apart:
            restriction = segment.allowed if allowed is None else self._restricted(allowed, segment)
            if allowed is not None and restriction is None:
                continue
            found.append(ann.search(segment.segment.vectors, vector, min(n, segment.size), restriction))
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids, scores = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
        best = np.lexsort((ids, -scores))[:n]  # by score, ties by id whatever the segment layout
        return ids[best], scores[best]

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of live passages ``ids`` (each must be live), rows in the order of ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self.live[0].segment.vectors.d if self.live else 0), dtype=np.float32)
        where = self.bm25.segment_of(ids)
        if (where < 0).any():
            raise KeyError(f"not live passages: {ids[where < 0][:5].tolist()}")
        for number in np.unique(where):
            at = np.flatnonzero(where == number)
            out[at] = self.live[number].segment.vectors.reconstruct_batch(ids[at])
        return out

    def live_among(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` are live passages of this generation (boolean, in the order of ``ids``)."""
        return self.bm25.segment_of(np.asarray(ids, dtype=np.int64)) >= 0

    def row_masks(self, ids: np.ndarray) -> list[np.ndarray]:
        """For each segment, the boolean mask of its rows holding one of the live passages ``ids`` (sorted):
        a restriction in the form BM25 retrieval takes, at the cost of ``ids``, not of the index."""
        masks = []
        for segment in self.live:
            lo, hi = np.searchsorted(ids, [segment.segment.first_id, segment.segment.last_id + 1])
            mask = np.zeros(len(segment.row_ids), dtype=bool)
            mask[np.searchsorted(segment.row_ids, ids[lo:hi])] = True
            masks.append(mask)
        return masks

    def without(self, masks: list[np.ndarray], ids: np.ndarray) -> list[np.ndarray]:
        """``masks`` (of :meth:`row_masks`) with the rows of the live passages ``ids`` (sorted) cleared."""
        cleared = [mask.copy() for mask in masks]
        for segment, mask in zip(self.live, cleared, strict=True):
            lo, hi = np.searchsorted(ids, [segment.segment.first_id, segment.segment.last_id + 1])
            mask[np.searchsorted(segment.row_ids, ids[lo:hi])] = False
        return cleared

    def in_masks(self, masks: list[np.ndarray], ids: np.ndarray) -> np.ndarray:
        """Which of the live passages ``ids`` (sorted) ``masks`` let through (boolean, in the order of ``ids``)."""
        found = np.zeros(len(ids), dtype=bool)
        for segment, mask in zip(self.live, masks, strict=True):
            lo, hi = np.searchsorted(ids, [segment.segment.first_id, segment.segment.last_id + 1])
            found[lo:hi] = mask[np.searchsorted(segment.row_ids, ids[lo:hi])]
        return found

    @cached_property
    def posting_maps(self) -> list[mmap.mmap]:
        """The maps of every segment's per-posting BM25 arrays (what a search reads most of an index's bytes
        from) whose pages can be released (:func:`indexer.postings_file.releasable_maps`: none but in
        ``release`` mode)."""
        return releasable_maps([array for s in self.live for array in (s.lexical.rows, s.lexical.tfs,
                                                                         s.lexical.weights)])

    @cached_property
    def live_masks(self) -> list[np.ndarray]:
        """Each segment's live rows, as :meth:`row_masks` gives them: no restriction but the deletions."""
        return [np.ones(len(s.row_ids), dtype=bool) if s.live_rows is None else s.live_rows for s in self.live]

    @cached_property
    def ids(self) -> np.ndarray:
        """Every live passage id, sorted."""
        parts = [s.live_ids for s in self.live]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def first(self, n: int) -> np.ndarray:
        """The ``n`` smallest live ids, reading only as many segments as that takes."""
        parts, count = [], 0
        for segment in self.live:
            if count >= n:
                break
            parts.append(segment.live_ids[: n - count])
            count += len(parts[-1])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def holding(self, terms: list[str]) -> np.ndarray:
        """Sorted live ids of the passages holding every one of ``terms`` (every live passage for none)."""
        wanted = list(dict.fromkeys(terms))
        if not wanted:
            return self.ids
        parts = []
        for segment in self.live:
            held = segment.lexical.held(wanted)
            if len(held) == len(wanted):
                parts.append(segment.ids_of(segment.segment.rows_holding(list(held.values()))))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def holding_character(self, char: str) -> np.ndarray:
        """Sorted live ids of the passages holding ``char`` in a bigram term or as a term of its own."""
        parts = []
        for segment in self.live:
            postings = segment.lexical
            numbers = [*segment.segment.bigrams_of.get(char, []), *postings.held([char]).values()]
            if numbers:
                rows = [postings.rows[postings.offsets[t] : postings.offsets[t + 1]] for t in numbers]
                parts.append(segment.ids_of(np.unique(np.concatenate(rows))))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
