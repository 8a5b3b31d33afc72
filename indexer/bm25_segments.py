"""BM25 over the immutable segments of one index generation, scoring exactly like a fresh build.

An index of format 3 (docs/index-format.md) is a list of segments written at
different times plus per-segment deletions.  Nothing here rewrites a segment:
the statistics BM25 needs (passage count, average length, each term's
document frequency) are combined at search time from the segments' sizes and
their deletion summaries, so the score of a passage is, bit for bit, the one a
fresh single-segment build of the live passages gives: the sum over the
query's distinct terms, in sorted term order, of :func:`indexer.bm25.term_weight`
in float64 with the global IDF and average length.

Scoring every posting that way would be slow on large segments, so a segment
also stores each posting's term-frequency part ``weights`` computed with the
average length of its own time (``avgdl_ref``).  ``idf · weights`` is an
*approximate* impact within a known factor of the exact one (between 1 and
``avgdl / avgdl_ref``), which lets :class:`indexer.bm25.MaxScore` find the
approximate top ``m`` quickly; those candidates are rescored exactly, and the
result is proven exact when the n-th best exact score beats every score a row
outside the candidates could reach, otherwise ``m`` doubles.  See
docs/index-format.md for the on-disk arrays; this module never touches files.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import bm25
from .bm25 import (
    DEFAULT_B,
    DEFAULT_K1,
    BM25Index,
    MaxScore,
    best_found,
    find_postings,
    inverse_frequency,
    row_sums,
    term_maxima,
    term_weight,
)
from .vocabulary import Vocabulary, hash_terms

#: The arrays a segment stores (:func:`segment_arrays`).
SEGMENT_ARRAYS = frozenset({"vocab", "offsets", "rows", "tfs", "doc_len", "row_ids", "weights", "max_weight", "params"})
#: The first rescoring round of a large segment takes this many approximate candidates per result wanted.
RESCORE_START = 2
#: Relative float32 rounding allowed for between an approximate score and the bound it is checked against.
ROUNDING = 1e-5
#: Segments of at most this many rows (one per small batch) form a generation's *tail*: their postings are
#: joined once per generation (:class:`_Tail`), so that a query over many of them costs a few NumPy calls,
#: not a few per segment and term.
SMALL_ROWS = 1_000
#: Queries whose per-segment term lookups a generation keeps (a search looks its terms up for retrieval, then
#: again for fusion and for coverage).
HELD_QUERIES = 64


def average_length(length: int, count: int) -> float:
    """The average passage length BM25 normalises by: total length over passages (1 for an empty index).

    Segment writers compute ``avgdl_ref`` and searches compute the global
    average with this one function, so both give identical numbers.
    """
    return length / count if count and length else 1.0


def segment_arrays(index: BM25Index, avgdl_ref: float) -> dict[str, np.ndarray]:
    """The arrays a segment saves: ``index``'s own plus each posting's weight at ``avgdl_ref``.

    ``weights`` is BM25's term part with IDF 1, computed in float64 and stored
    as float32; ``max_weight`` is its largest value per term (0 without
    postings); ``params`` is ``[k1, b, avgdl_ref]``.
    """
    weights = term_weight(1.0, index.tfs.astype(np.float64), index.doc_len[index.rows].astype(np.float64),
                          avgdl_ref, index.k1, index.b).astype(np.float32)
    return {
        **index.to_arrays(),
        "weights": weights,
        "max_weight": term_maxima(weights, index.offsets),
        "params": np.array([index.k1, index.b, avgdl_ref], dtype=np.float64),
    }


def term_values(values: np.ndarray, offsets: np.ndarray, term: int, positions: np.ndarray) -> np.ndarray:
    """``values`` (one per posting) at ``positions``, all among term ``term``'s postings.

    Taken from the term's whole span, so that a posting array read from its
    file (:mod:`indexer.postings_file`) reads that span once per query, not
    once per lookup.
    """
    start = int(offsets[term])
    return values[start : int(offsets[term + 1])][positions - start]


@dataclass(frozen=True)
class _Stored:
    """A segment's arrays as loaded (possibly read-only memory maps), shared by all its deletion states."""

    terms: Vocabulary
    arrays: Mapping[str, np.ndarray]

    @cached_property
    def total_length(self) -> int:
        """Summed length of all rows, deleted or not (computed once per segment, not per generation)."""
        return int(self.arrays["doc_len"].sum(dtype=np.float64))

    @cached_property
    def offset_list(self) -> list[int]:
        """``offsets`` as Python integers (a small segment's, read per query term without NumPy calls)."""
        return self.arrays["offsets"].tolist()


class BM25Segment:
    """One immutable segment's BM25 arrays and the deletions of one generation.

    The posting arrays keep the names of :class:`indexer.bm25.BM25Index`
    (``offsets``, ``rows``, ``tfs``, ``doc_len``, ``row_ids``) and are the
    loaded arrays themselves: never written into, never copied, so a
    memory-mapped segment costs only its term hashes to open
    (:class:`indexer.vocabulary.Vocabulary`: :meth:`held` looks terms up).
    """

    def __init__(self, stored: _Stored, deleted: np.ndarray | None = None,
                 deleted_terms: Mapping[str, int] | None = None, deleted_length: int = 0) -> None:
        arrays = stored.arrays
        self._stored = stored
        self.vocabulary = stored.terms
        self.offsets: np.ndarray = arrays["offsets"]
        self.rows: np.ndarray = arrays["rows"]
        self.tfs: np.ndarray = arrays["tfs"]
        self.doc_len: np.ndarray = arrays["doc_len"]
        self.row_ids: np.ndarray = arrays["row_ids"]
        self.weights: np.ndarray = arrays["weights"]
        self.max_weight: np.ndarray = arrays["max_weight"]
        self.k1, self.b, self.avgdl_ref = (float(x) for x in arrays["params"])
        self.deleted = np.zeros(0, np.int64) if deleted is None else deleted
        self.deleted_terms = dict(deleted_terms or {})
        self.deleted_length = int(deleted_length)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> BM25Segment:
        """A segment of :func:`segment_arrays` output (or the same arrays loaded with ``mmap_mode="r"``)."""
        missing = SEGMENT_ARRAYS - set(arrays)
        if missing:
            raise ValueError(f"segment arrays lack {sorted(missing)}")
        if len(arrays["params"]) != 3:
            raise ValueError("segment params must be [k1, b, avgdl_ref]")
        return cls(_Stored(Vocabulary(arrays["vocab"]), arrays))

    def with_deletions(self, ids: np.ndarray, term_counts: Mapping[str, int], length: int) -> BM25Segment:
        """This segment with passages ``ids`` deleted (cumulative: replaces earlier deletions).

        ``term_counts`` says how many deleted passages hold each term and
        ``length`` their summed length, so that global statistics need no pass
        over the postings.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if np.any(np.diff(ids) <= 0):
            raise ValueError("deleted ids must be sorted and distinct")
        if len(ids) and not self.holds(ids).all():
            raise ValueError("deleted ids must be passages of this segment")
        return BM25Segment(self._stored, ids, term_counts, length)

    @property
    def n_rows(self) -> int:
        """Rows of the segment, deleted ones included (row ``r`` holds passage ``row_ids[r]``)."""
        return len(self.row_ids)

    @property
    def n_live(self) -> int:
        return self.n_rows - len(self.deleted)

    @property
    def live_length(self) -> int:
        """Summed length of the live passages."""
        return self._stored.total_length - self.deleted_length

    @cached_property
    def live(self) -> np.ndarray | None:
        """Boolean mask of the rows not deleted (None when nothing is deleted)."""
        if not len(self.deleted):
            return None
        mask = np.ones(self.n_rows, dtype=bool)
        mask[self.rows_of(self.deleted)] = False
        return mask

    @property
    def terms(self) -> dict[str, int]:
        """Deprecated: every term and its number, as a new dict (the segment keeps only :attr:`vocabulary`)."""
        warnings.warn("BM25Segment.terms is deprecated; use held(terms) or vocabulary.words()", DeprecationWarning,
                      stacklevel=2)
        return {word: number for number, word in enumerate(self.vocabulary.words())}

    def held(self, terms: Sequence[str], hashes: np.ndarray | None = None) -> dict[str, int]:
        """The ``terms`` this segment holds and their term numbers, in the order of ``terms``
        (``hashes``: :func:`indexer.vocabulary.hash_terms` of them, computed once for all segments)."""
        return self.vocabulary.find(terms, hashes)

    def df(self, term: str) -> int:
        """Live passages holding ``term``."""
        return self.held_count(self.held([term]), term)

    def held_count(self, held: Mapping[str, int], term: str) -> int:
        """Live passages holding ``term``, from :meth:`held`'s answer for it."""
        t = held.get(term)
        count = 0 if t is None else int(self.offsets[t + 1] - self.offsets[t])
        return count - self.deleted_terms.get(term, 0)

    def rows_of(self, passage_ids: np.ndarray) -> np.ndarray:
        """Row of each passage id (ids must be present)."""
        return np.searchsorted(self.row_ids, passage_ids)

    def live_ids(self, rows: np.ndarray) -> np.ndarray:
        """Passage ids of the live ones of ``rows``: what a posting list holds, as passages."""
        rows = np.asarray(rows, dtype=np.int64)
        return self.row_ids[rows if self.live is None else rows[self.live[rows]]]

    def holds(self, ids: np.ndarray) -> np.ndarray:
        """Whether each passage id has a row here (deleted or not)."""
        rows = np.minimum(self.rows_of(ids), max(self.n_rows - 1, 0))
        return self.row_ids[rows] == ids if self.n_rows else np.zeros(len(ids), dtype=bool)

    def allowed_rows(self, allowed: np.ndarray | None) -> np.ndarray | None:
        """A row mask of the live rows ``allowed`` lets through (None: every row)."""
        if allowed is None or self.live is None:
            return self.live if allowed is None else allowed
        return allowed & self.live


@dataclass(frozen=True)
class SegmentTop:
    """One segment's exact top rows, best first, and how many approximate rounds it took (0: scanned)."""

    rows: np.ndarray
    scores: np.ndarray
    rounds: int


class _Approximate(MaxScore):
    """A segment's postings scored ``idf · weight`` for one query: :class:`MaxScore`'s impact source."""

    def __init__(self, segment: BM25Segment, idf: Mapping[int, float]) -> None:
        self.offsets = segment.offsets
        self.rows = segment.rows
        self._segment = segment
        self._idf = {t: np.float32(v) for t, v in idf.items()}

    @property
    def n_rows(self) -> int:
        return self._segment.n_rows

    def _impacts(self, term: int, postings: slice | np.ndarray) -> np.ndarray:
        weights = self._segment.weights
        found = weights[postings] if isinstance(postings, slice) else term_values(weights, self.offsets, term, postings)
        return found * self._idf[int(term)]

    def _bounds(self, ids: np.ndarray) -> np.ndarray:
        idf = np.array([self._idf[int(t)] for t in ids], dtype=np.float32)
        return self._segment.max_weight[ids] * idf


class _Tail:
    """The small segments of one generation with their postings joined: rows numbered through the tail
    (a segment's rows follow those of the segments before it), term frequencies and row lengths in float64,
    and where each segment's postings start."""

    def __init__(self, segments: Sequence[BM25Segment]) -> None:
        self.segments = list(segments)
        sizes = [s.n_rows for s in self.segments]
        self.row_base = np.cumsum([0, *sizes])
        self.posting_base = [0, *np.cumsum([len(s.rows) for s in self.segments]).tolist()]
        rows = [np.asarray(s.rows, dtype=np.int64) for s in self.segments]  # read whole: the segments are small
        self.rows = np.concatenate([r + base for r, base in zip(rows, self.row_base, strict=False)])
        self.tfs = np.concatenate([np.asarray(s.tfs) for s in self.segments]).astype(np.float64)
        self.lengths = np.concatenate([s.doc_len[r] for s, r in zip(self.segments, rows, strict=True)]).astype(
            np.float64)
        self.row_ids = np.concatenate([s.row_ids for s in self.segments])

    def postings(self, held: Sequence[Mapping[str, int]], idf: Callable[[str], float]) -> tuple[np.ndarray, ...]:
        """Rows, term frequencies, lengths and IDFs of every posting of the query terms each segment holds
        (``held``: one :meth:`BM25Segment.held` per segment, in sorted term order), segment after segment and
        in term order within one: each row's postings come in sorted term order."""
        starts, counts, idfs = [], [], []
        for segment, base, found in zip(self.segments, self.posting_base, held, strict=False):
            offsets = segment._stored.offset_list
            for term, t in found.items():
                if offsets[t + 1] > offsets[t]:
                    starts.append(base + offsets[t])
                    counts.append(offsets[t + 1] - offsets[t])
                    idfs.append(idf(term))
        if not counts:
            return (np.zeros(0, np.int64),) + (np.zeros(0, np.float64),) * 3
        lengths = np.array(counts, dtype=np.int64)
        at = np.repeat(np.array(starts, dtype=np.int64) - (np.cumsum(lengths) - lengths), lengths) + np.arange(
            int(lengths.sum()))
        return self.rows[at], self.tfs[at], self.lengths[at], np.repeat(np.array(idfs, dtype=np.float64), lengths)


class SegmentedBM25:
    """The lexical side of one generation: its segments under global BM25 statistics.

    ``N`` is the live passages of all segments, the average length their
    summed length over ``N``, and a term's document frequency the sum over
    segments of its postings minus its deleted count; IDFs are computed on
    first use and kept for the life of this object (one generation).
    """

    def __init__(self, segments: Sequence[BM25Segment], k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> None:
        if any((s.k1, s.b) != (k1, b) for s in segments):
            raise ValueError("every segment must be written with the index's k1 and b")
        self.segments = list(segments)
        self.k1 = k1
        self.b = b
        self.n_live = sum(s.n_live for s in self.segments)
        self.avgdl = average_length(sum(s.live_length for s in self.segments), self.n_live)
        self._idf: dict[str, float] = {}
        self._held: OrderedDict[tuple[str, ...], list[dict[str, int]]] = OrderedDict()
        filled = [i for i, s in enumerate(self.segments) if s.n_rows]
        self._filled = np.array(filled, dtype=np.int64)
        self._starts = np.array([self.segments[i].row_ids[0] for i in filled], dtype=np.int64)

    @cached_property
    def _layout(self) -> tuple[list[int], list[int], _Tail | None]:
        """The segments searched one by one and the small ones (indexes into :attr:`segments`), and the small
        ones' joined postings (None: fewer than two, searched one by one too); built on the generation's
        first query."""
        small = [i for i, s in enumerate(self.segments) if 0 < s.n_rows <= SMALL_ROWS]
        if len(small) < 2:
            small = []
        others = [i for i in range(len(self.segments)) if i not in set(small)]
        return others, small, _Tail([self.segments[i] for i in small]) if small else None

    def df(self, term: str) -> int:
        """Live passages holding ``term``, over all segments."""
        return sum(s.df(term) for s in self.segments)

    def idf(self, term: str) -> float:
        """Global IDF of ``term`` (that of a term no passage holds when unseen)."""
        found = self._idf.get(term)
        if found is None:
            found = self._idf[term] = inverse_frequency(self.n_live, self.df(term))
        return found

    def max_idf(self) -> float:
        """IDF a term would have if no passage contained it."""
        return inverse_frequency(self.n_live, 0)

    def term_idf(self, terms: Iterable[str]) -> dict[str, float]:
        """Global IDF of each distinct term."""
        distinct = sorted(set(terms))
        if any(t not in self._idf for t in distinct):
            self.held(distinct)
        return {t: self.idf(t) for t in distinct}

    def held(self, terms: Sequence[str]) -> list[dict[str, int]]:
        """:meth:`BM25Segment.held` of the distinct ``terms`` for every segment, the terms hashed once and the
        answer kept for the next :data:`HELD_QUERIES` queries; their global IDFs are kept on the way (the
        counts they need are at hand)."""
        key = tuple(terms)
        held = self._held.get(key)
        if held is not None:
            return held
        hashes = hash_terms(terms)
        held = [segment.held(terms, hashes) for segment in self.segments]
        for term in terms:
            if term not in self._idf:
                df = sum(s.held_count(h, term) for s, h in zip(self.segments, held, strict=True))
                self._idf[term] = inverse_frequency(self.n_live, df)
        if len(self._held) >= HELD_QUERIES:
            with suppress(KeyError):  # another search thread may just have dropped the oldest itself
                self._held.popitem(last=False)
        self._held[key] = held
        return held

    def top(self, query_terms: Iterable[str], n: int,
            allowed: Sequence[np.ndarray | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and float32 scores of the ``n`` best positive-scoring live passages, best first,
        ties by id; ``allowed`` holds one boolean row mask (or None) per segment."""
        if allowed is not None and len(allowed) != len(self.segments):
            raise ValueError("allowed needs one row mask (or None) per segment")
        terms = sorted(set(query_terms))
        held = self.held(terms)
        masks = [None] * len(self.segments) if allowed is None else list(allowed)
        found_ids, found_scores = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
        if n <= 0:
            return found_ids[0], found_scores[0]
        # Up to SCAN_ALWAYS postings in all, the segments holding the fewest are scored outright; the others are
        # pruned by MaxScore, largest first: the first proves a floor of its own, each later one takes the n-th
        # best score found so far, below which nothing it holds is needed.  Small segments go together (tail).
        others, small, tail = self._layout
        counts = {i: self._postings(self.segments[i], held[i]) for i in others}
        scanned, pruned, budget = [], [], bm25.SCAN_ALWAYS
        for i in sorted(others, key=lambda i: counts[i]):
            if counts[i] <= budget:
                scanned.append(i)
                budget -= counts[i]
            else:
                pruned.append(i)
        for i in [*reversed(pruned), *scanned]:
            so_far = np.concatenate(found_scores)
            floor = float(np.partition(so_far, len(so_far) - n)[len(so_far) - n]) if len(so_far) >= n else 0.0
            segment = self.segments[i]
            best = self.segment_top(segment, terms, n, masks[i], floor=floor,
                                    prune_above=0 if i in pruned else bm25.SCAN_ALWAYS, held=held[i])
            found_ids.append(segment.row_ids[best.rows])
            found_scores.append(best.scores)
        if tail is not None:
            rows, scores = self._scan_tail(tail, [masks[i] for i in small], [held[i] for i in small], n)
            found_ids.append(tail.row_ids[rows])
            found_scores.append(scores)
        ids, scores = np.concatenate(found_ids), np.concatenate(found_scores)
        order = np.lexsort((ids, -scores))[:n]
        return ids[order], scores[order]

    @staticmethod
    def _postings(segment: BM25Segment, held: Mapping[str, int]) -> int:
        """How many postings ``segment`` holds for the terms of ``held`` (:meth:`BM25Segment.held`)."""
        numbers = np.fromiter(held.values(), dtype=np.int64, count=len(held))
        return int((segment.offsets[numbers + 1] - segment.offsets[numbers]).sum())

    def segment_top(self, segment: BM25Segment, terms: list[str], n: int, allowed: np.ndarray | None = None,
                    floor: float = 0.0, prune_above: int | None = None,
                    held: Mapping[str, int] | None = None) -> SegmentTop:
        """The exact top ``n`` live rows of one segment for the distinct sorted ``terms``.

        Up to ``prune_above`` postings (default :data:`indexer.bm25.SCAN_ALWAYS`)
        are scored exactly outright; more go through MaxScore on approximate
        impacts and exact rescoring (module docstring).  With a ``floor`` (a
        score the query's n-th best passage is known to reach), rows scoring
        less may be left out: they cannot be among the query's best.  ``held``: the segment's
        :meth:`BM25Segment.held` of ``terms``, when already looked up.
        """
        held = segment.held(terms) if held is None else held
        mask = segment.allowed_rows(allowed)
        if not held or n <= 0 or not segment.n_rows:
            return SegmentTop(np.zeros(0, np.int64), np.zeros(0, np.float32), 0)
        numbers = np.fromiter(held.values(), dtype=np.int64, count=len(held))
        limit = bm25.SCAN_ALWAYS if prune_above is None else prune_above
        if int((segment.offsets[numbers + 1] - segment.offsets[numbers]).sum()) <= limit:
            rows, scores = self._scan(segment, allowed, held, n)
            return SegmentTop(rows, scores, 0)
        approximate = _Approximate(segment, {t: self.idf(w) for w, t in held.items()})
        ceiling = max(1.0, self.avgdl / segment.avgdl_ref)  # exact / approximate <= ceiling
        # A row whose approximate score is below this scores below ``floor`` exactly (float32 rounding included).
        below = floor / (ceiling * (1 + ROUNDING))
        ids = np.sort(numbers)
        m = RESCORE_START * n
        rounds = 0
        while True:
            rounds += 1
            rows, approx = approximate._top(ids, m, mask, below, limit)
            exact = self._score_rows(segment, held, rows).astype(np.float32)
            order = np.lexsort((rows, -exact))[:n]
            if len(rows) < m:  # every row that may reach the floor is a candidate
                break
            # Rows outside the candidates score at most ceiling × the m-th approximate score (or below the floor).
            outside = np.float32(ceiling * float(approx[-1]) * (1 + ROUNDING))
            if outside < floor or (len(order) == n and exact[order[-1]] > outside):
                break
            m *= 2
        return SegmentTop(rows[order], exact[order], rounds)

    def _scan_tail(self, tail: _Tail, masks: list[np.ndarray | None], held: list[dict[str, int]],
                   n: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_scan` of the generation's small segments (``held``: the query terms each holds), from their
        joined postings: the same float64 sums, bit for bit (one row's weights are added in sorted term order
        either way)."""
        rows, tfs, lengths, idfs = tail.postings(held, self.idf)
        if not len(rows):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        weights = term_weight(idfs, tfs, lengths, self.avgdl, self.k1, self.b)
        found, sums = row_sums(rows, weights, int(tail.row_base[-1]))
        return self._best_allowed(found, sums, list(zip(tail.segments, masks, strict=True)), n)

    def _scan(self, segment: BM25Segment, allowed: np.ndarray | None, held: Mapping[str, int],
              n: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top ``n`` rows of one segment scored outright for the terms it holds of a query
        (``held``, in sorted term order); scores are float32.

        ``bincount`` adds each row's weights in posting order, which is sorted
        term order here: the same float64 sums as :meth:`_score_rows`, bit for bit.
        """
        rows, tfs = [], []
        for t in held.values():
            span = slice(segment.offsets[t], segment.offsets[t + 1])
            rows.append(segment.rows[span])
            tfs.append(segment.tfs[span])
        found = np.concatenate(rows)
        weights = self._weights(list(held), [len(r) for r in rows], np.concatenate(tfs), segment.doc_len[found])
        return self._best_allowed(*row_sums(found, weights, segment.n_rows), [(segment, allowed)], n)

    @staticmethod
    def _best_allowed(rows: np.ndarray, sums: np.ndarray, parts: Sequence[tuple[BM25Segment, np.ndarray | None]],
                      n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best of ``rows`` (ascending, numbered through the parts in order) by their float64
        ``sums``, as float32 scores, among each part's allowed live rows."""
        scores = sums.astype(np.float32)
        masks = [segment.allowed_rows(mask) for segment, mask in parts]
        if any(mask is not None for mask in masks):
            keep = masks[0] if len(parts) == 1 else np.concatenate(
                [np.ones(segment.n_rows, dtype=bool) if mask is None else mask
                 for (segment, _), mask in zip(parts, masks, strict=True)])
            scores[~keep[rows]] = 0.0
        return best_found(rows, scores, n)

    def _score_rows(self, segment: BM25Segment, held: Mapping[str, int], rows: np.ndarray) -> np.ndarray:
        """Exact float64 score of ``rows`` of ``segment`` for the query terms it holds (``held``, sorted).

        Each term's postings are searched once for all ``rows``; then the
        weights of every posting found are computed together and added per row
        by ``bincount``, which adds in input order, here sorted term order: the
        same float64 sums as adding term by term (and as :meth:`_scan`).
        """
        found, tfs = [], []
        for number in held.values():
            at, hit = find_postings(segment.offsets, segment.rows, number, rows)
            found.append(np.flatnonzero(hit))
            tfs.append(term_values(segment.tfs, segment.offsets, number, at[found[-1]]))
        if not found:
            return np.zeros(len(rows), dtype=np.float64)
        where = np.concatenate(found)
        weights = self._weights(list(held), [len(f) for f in found], np.concatenate(tfs),
                                segment.doc_len[rows[where]])
        return np.bincount(where, weights=weights, minlength=len(rows))

    def _weights(self, terms: list[str], counts: list[int], tfs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """BM25 in float64 of postings of these term frequencies and passage lengths: the first ``counts[0]``
        of ``terms[0]``, the next ``counts[1]`` of ``terms[1]``, and so on (one NumPy pass for all terms)."""
        idfs = np.repeat(np.array([self.idf(term) for term in terms], dtype=np.float64), counts)
        return term_weight(idfs, tfs.astype(np.float64), lengths.astype(np.float64), self.avgdl, self.k1, self.b)

    def scores_of(self, query_terms: Iterable[str], ids: np.ndarray) -> np.ndarray:
        """Exact float32 scores of any passage ids (0 for an id that is not a live passage)."""
        ids = np.asarray(ids, dtype=np.int64)
        scores = np.zeros(len(ids), dtype=np.float32)
        where, rows = self._locate(ids)
        if not (where >= 0).any():
            return scores
        held = self.held(sorted(set(query_terms)))
        for i in np.unique(where[where >= 0]):
            at = where == i
            scores[at] = self._score_rows(self.segments[i], held[i], rows[at]).astype(np.float32)
        return scores

    def matched_terms(self, query_terms: Iterable[str], passage_id: int) -> set[str]:
        """The distinct ``query_terms`` that a live passage holds (none for any other id)."""
        where, rows = self._locate(np.array([passage_id], dtype=np.int64))
        if where[0] < 0:
            return set()
        i = int(where[0])
        segment = self.segments[i]
        return {term for term, t in self.held(sorted(set(query_terms)))[i].items()
                if find_postings(segment.offsets, segment.rows, t, rows)[1][0]}

    def segment_of(self, ids: np.ndarray) -> np.ndarray:
        """Index into :attr:`segments` of each passage id, -1 where it is not a live passage."""
        return self._locate(np.asarray(ids, dtype=np.int64))[0]

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segment index (-1: not a live passage) and row of each passage id."""
        where = np.full(len(ids), -1, dtype=np.int64)
        rows = np.zeros(len(ids), dtype=np.int64)
        if not len(self._starts):
            return where, rows
        at = np.searchsorted(self._starts, ids, side="right") - 1
        for k in np.unique(at[at >= 0]):
            i = int(self._filled[k])
            segment, mine = self.segments[i], np.flatnonzero(at == k)
            present = segment.holds(ids[mine])
            mine = mine[present]
            rows[mine] = segment.rows_of(ids[mine])
            alive = np.ones(len(mine), dtype=bool) if segment.live is None else segment.live[rows[mine]]
            where[mine[alive]] = i
        return where, rows
