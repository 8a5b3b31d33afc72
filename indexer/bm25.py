"""BM25 over pre-tokenized passages, as plain NumPy arrays.

What is stored are raw postings (term, row, term frequency), document lengths
and the passage id of every row, so that an index can be *updated*: removing
passages drops their postings, adding passages appends postings, and nothing
else is re-tokenized.  The BM25 contribution of every posting ("impact") is
computed from those arrays in one vectorised pass whenever an index is built
or loaded (as bm25s does eagerly), because IDF and the average length change
with every update.  A query is then one gather and one ``bincount`` over the
postings of its terms, with no per-document Python loop.

Top-n retrieval (:meth:`BM25Index.top`, through :class:`MaxScore`) skips most of that work on large
indexes with the MaxScore argument: a passage that contains none of a
query's rare terms can score at most the sum of its common terms' largest
impacts, so once ``n`` passages found through the rare terms beat that sum,
the long posting lists of the common terms only need to be looked up for
those candidates, never scanned.  The result is exactly that of scoring every
row (the check fails safe to the full scan).

The arrays are what the index store saves; this module never touches files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
#: :meth:`BM25Index.top` proves its score floor on this many rows per result wanted, the best of the
#: rows holding at least FLOOR_POSTINGS times as many postings of the query's rarest terms.
FLOOR_ROWS = 2
FLOOR_POSTINGS = 10
#: Below this many postings in all, :meth:`BM25Index.top` scans every list: the bookkeeping would cost more.
SCAN_ALWAYS = 200_000
#: A scan adds up its postings per row through a sort of the rows it found when they are fewer than the
#: rows of the index over this, else in one array over all rows (:func:`row_sums`; docs/performance.md).
SPARSE_SCAN = 8
#: What the BM25 formulas take and give: NumPy arrays (all postings at once) or plain numbers (one term).
Number = np.ndarray | float


def inverse_frequency(n_rows: Number, df: Number) -> Number:
    """BM25's IDF of a term held by ``df`` of ``n_rows`` passages (never negative).

    Arrays go through NumPy's vectorised ``log1p``, single numbers through
    :func:`math.log1p`; the two may differ in the last bit, and each store
    keeps the one its rankings were measured with.
    """
    ratio = (n_rows - df + 0.5) / (df + 0.5)
    return np.log1p(ratio) if isinstance(ratio, np.ndarray) else math.log1p(ratio)


def term_weight(idf: Number, tf: Number, length: Number, avg_len: float, k1: float, b: float) -> Number:
    """BM25's score for one term of IDF ``idf`` that occurs ``tf`` times in a passage of ``length`` terms.

    The one formula of both stores: the embedded one applies it to all
    postings at once, the Milvus one to the candidates' stored terms.
    """
    norm = k1 * (1.0 - b + b * length / avg_len)
    return idf * tf * (k1 + 1.0) / (tf + norm)


class MaxScore:
    """Exact top-n over an inverted index by the MaxScore argument, whatever a posting's impact is.

    A subclass has ``offsets`` (postings of term ``t`` are ``[offsets[t], offsets[t+1])``), ``rows``
    (ascending within a term) and ``n_rows``, and says what a posting scores (:meth:`_impacts`) and the
    largest score of a term (:meth:`_bounds`).  :class:`BM25Index` stores its impacts; a segment of a
    segmented index (:mod:`indexer.bm25_segments`) derives approximate ones from its stored weights and
    the query's global IDFs, so both rank through this one implementation:

    1. a *floor*: the exact scores of a few likely rows (those of the
       rarest terms) prove that the n-th best score is at least that much;
    2. the terms with the smallest largest-impacts whose sum stays under the
       floor are *skipped*: a row that has only those cannot make the top n;
    3. the rows of the other terms are scored, and those that could still
       reach the floor get the skipped terms' impacts by lookup.
    """

    offsets: np.ndarray
    rows: np.ndarray

    @property
    def n_rows(self) -> int:
        raise NotImplementedError

    def _impacts(self, term: int, postings: slice | np.ndarray) -> np.ndarray:
        """Impacts of the postings at ``postings`` (absolute positions), all of term ``term``."""
        raise NotImplementedError

    def _bounds(self, ids: np.ndarray) -> np.ndarray:
        """Largest impact of each of the terms ``ids`` (0 for a term without postings)."""
        raise NotImplementedError

    def _top(self, ids: np.ndarray, n: int, allowed: np.ndarray | None, floor: float = 0.0,
             prune_above: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and float32 scores of the ``n`` best positive rows for the distinct term numbers ``ids``,
        best first, ties by row; ``allowed`` is an optional boolean mask over rows.

        ``floor``: a score the caller needs no row below (another segment's results reach it), so rows
        proven to score less may be missing; without one, a floor is proven from the rarest terms.  Lists
        of more than ``prune_above`` postings in all (default :data:`SCAN_ALWAYS`) are pruned by MaxScore;
        fewer are scanned.
        """
        if not len(ids) or not self.n_rows or n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        lengths = self.offsets[ids + 1] - self.offsets[ids]
        if lengths.sum() > (SCAN_ALWAYS if prune_above is None else prune_above):
            floor = floor or self._score_floor(ids, lengths, n, allowed)
            by_bound = ids[np.argsort(self._bounds(ids), kind="stable")]
            bounds = np.cumsum(self._bounds(by_bound).astype(np.float64))
            skip = int(np.searchsorted(bounds, floor * (1 - 1e-6)))  # float32 rounding: err towards scanning
            kept = by_bound[skip:]
            if not len(kept):  # every term together stays under the floor: no row is needed
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            if skip and self._postings_count(kept) < lengths.sum() / 2:
                return self._top_pruned(kept, by_bound[:skip], float(bounds[skip - 1]), floor, n, allowed)
        found, sums = row_sums(*self._postings_of(ids), self.n_rows)
        scores = sums.astype(np.float32)
        if allowed is not None:
            scores[~allowed[found]] = 0.0
        return best_found(found, scores, n)

    def _score_floor(self, ids: np.ndarray, lengths: np.ndarray, n: int, allowed: np.ndarray | None) -> float:
        """A score the n-th best row is proven to reach (0 when not found): the n-th best exact score of
        the rows that score best on the query's rarest terms."""
        order = np.argsort(lengths, kind="stable")
        rarest = ids[order]
        enough = int(np.searchsorted(np.cumsum(lengths[order]), FLOOR_POSTINGS * n)) + 1
        rows, partial = self._accumulate(rarest[:enough])
        if allowed is not None:
            rows, partial = rows[allowed[rows]], partial[allowed[rows]]
        if len(rows) < n:
            return 0.0
        likely = rows[np.argsort(-partial, kind="stable")[: FLOOR_ROWS * n]]
        full = self._impacts_at(ids, likely)
        return float(-np.partition(-full, n - 1)[n - 1])

    def _top_pruned(
        self, kept: np.ndarray, skipped: np.ndarray, bound: float, floor: float, n: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top` when rows holding only the ``skipped`` terms (at most ``bound`` < ``floor``) are out."""
        candidates, partial = self._accumulate(kept)
        if allowed is not None:
            candidates, partial = candidates[allowed[candidates]], partial[allowed[candidates]]
        # Add the skipped terms, largest bound first; after each, drop the candidates that can no longer reach the
        # floor even with every term still to come, and raise the floor (partial scores are lower bounds).
        for term, term_bound in zip(skipped[::-1], self._bounds(skipped[::-1]), strict=True):
            if len(partial) >= n:
                floor = max(floor, float(-np.partition(-partial, n - 1)[n - 1]))
            hopeful = partial + bound >= floor * (1 - 1e-6)
            candidates, partial = candidates[hopeful], partial[hopeful]
            partial += self._impact_of(int(term), candidates)
            bound -= float(term_bound)
        scores = partial.astype(np.float32)
        best, _ = _best(np.arange(len(candidates)), scores, n)  # candidates ascend, so ties go by row
        return candidates[best].astype(np.int64), scores[best]

    def _accumulate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding any of terms ``ids`` (ascending) and their summed impacts (float64)."""
        rows, impacts = self._postings_of(ids)
        found, inverse = np.unique(rows, return_inverse=True)
        return found, np.bincount(inverse, weights=impacts)

    def _postings_count(self, ids: np.ndarray) -> int:
        return int((self.offsets[ids + 1] - self.offsets[ids]).sum())

    def _impacts_at(self, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Sum over terms ``ids`` of each row's impact (0 where the row lacks the term), float64."""
        total = np.zeros(len(rows), dtype=np.float64)
        for t in ids:
            total += self._impact_of(int(t), rows)
        return total

    def _impact_of(self, term: int, rows: np.ndarray) -> np.ndarray:
        """Each row's impact for one term (0 where the row lacks it), float64."""
        at, hit = self._postings_at(term, rows)
        found = np.zeros(len(rows), dtype=np.float64)
        found[hit] = self._impacts(term, at[hit])
        return found

    def _postings_at(self, term: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each of ``rows`` would be among term ``term``'s postings (absolute position) and
        whether it is there."""
        return find_postings(self.offsets, self.rows, term, rows)

    def _postings_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and impacts of all postings of terms ``ids``, concatenated."""
        slices = [slice(self.offsets[t], self.offsets[t + 1]) for t in ids]
        if not slices:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        impacts = [self._impacts(t, s) for t, s in zip(ids, slices, strict=True)]
        return np.concatenate([self.rows[s] for s in slices]), np.concatenate(impacts)


@dataclass(frozen=True)
class BM25Index(MaxScore):
    """Inverted index; row ``r`` holds passage ``row_ids[r]`` (ascending ids)."""

    terms: dict[str, int]  # term -> term number
    offsets: np.ndarray  # int64 (n_terms + 1,): postings of term t are [offsets[t], offsets[t+1])
    rows: np.ndarray  # int32 (n_postings,): row of each posting, ascending within a term
    tfs: np.ndarray  # float32 (n_postings,): term frequency
    doc_len: np.ndarray  # float32 (n_rows,): number of terms of each row
    row_ids: np.ndarray  # int64 (n_rows,): passage id of each row
    k1: float = DEFAULT_K1
    b: float = DEFAULT_B
    idf: np.ndarray = field(init=False, repr=False)
    impacts: np.ndarray = field(init=False, repr=False)
    max_impact: np.ndarray = field(init=False, repr=False)  # largest impact of each term (0 for none)

    def __post_init__(self) -> None:
        n_rows = len(self.row_ids)
        df = np.diff(self.offsets).astype(np.float32)
        idf = inverse_frequency(n_rows, df).astype(np.float32)
        avg_len = float(self.doc_len.mean()) if n_rows and self.doc_len.sum() else 1.0
        term_of = np.repeat(np.arange(len(df)), np.diff(self.offsets))
        impacts = term_weight(idf[term_of], self.tfs, self.doc_len[self.rows], avg_len, self.k1, self.b)
        impacts = impacts.astype(np.float32)
        object.__setattr__(self, "idf", idf)
        object.__setattr__(self, "impacts", impacts)
        object.__setattr__(self, "max_impact", term_maxima(impacts, self.offsets))

    @property
    def n_rows(self) -> int:
        return len(self.row_ids)

    @classmethod
    def empty(cls, k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> BM25Index:
        """An index of nothing, to start updating from."""
        return cls(
            {},
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            k1,
            b,
        )

    @classmethod
    def build(
        cls,
        token_lists: Sequence[Sequence[str]],
        ids: Sequence[int] | None = None,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
    ) -> BM25Index:
        """Index ``token_lists``; passage ids default to 0, 1, 2, ..."""
        ids = list(range(len(token_lists))) if ids is None else ids
        return cls.empty(k1, b).updated((), ids, token_lists)

    def updated(
        self, removed_ids: Iterable[int], added_ids: Sequence[int], added_tokens: Sequence[Sequence[str]]
    ) -> BM25Index:
        """A new index without ``removed_ids`` and with the added passages.

        Added ids must be larger than every id already present (the store
        hands out ids in increasing order), so rows stay sorted by id.
        """
        if len(added_ids) != len(added_tokens):
            raise ValueError("added_ids and added_tokens must line up")
        if len(added_ids) and (np.any(np.diff(added_ids) <= 0) or (self.n_rows and added_ids[0] <= self.row_ids[-1])):
            raise ValueError("added ids must be increasing and above the present ones")
        removed = np.fromiter(removed_ids, dtype=np.int64)
        keep_row = ~np.isin(self.row_ids, removed)
        new_row_of = np.cumsum(keep_row) - 1  # old row -> row after removal
        term_of = np.repeat(np.arange(len(self.terms), dtype=np.int64), np.diff(self.offsets))
        keep = keep_row[self.rows]
        terms = dict(self.terms)
        n_kept = int(keep_row.sum())
        add_term, add_row, add_tf = _postings(added_tokens, terms, n_kept)
        all_terms = np.concatenate([term_of[keep], add_term])
        all_rows = np.concatenate([new_row_of[self.rows[keep]], add_row])
        all_tfs = np.concatenate([self.tfs[keep], add_tf])
        # Both parts are sorted by (term, row) and every added row follows every kept one, so a stable
        # sort by term is a linear merge of two runs (timsort) instead of a full sort of all postings.
        order = np.argsort(all_terms, kind="stable")
        offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(all_terms, minlength=len(terms)), out=offsets[1:])
        doc_len = np.concatenate(
            [self.doc_len[keep_row], np.array([len(t) for t in added_tokens], dtype=np.float32)]
        )
        row_ids = np.concatenate([self.row_ids[keep_row], np.asarray(added_ids, dtype=np.int64)])
        return BM25Index(
            terms,
            offsets,
            all_rows[order].astype(np.int32),
            all_tfs[order].astype(np.float32),
            doc_len,
            row_ids,
            self.k1,
            self.b,
        )

    def scores(self, query_terms: Iterable[str]) -> np.ndarray:
        """BM25 score of every row for the distinct ``query_terms`` (float32, ``n_rows``)."""
        ids = [self.terms[t] for t in set(query_terms) if t in self.terms]
        if not ids or not self.n_rows:
            return np.zeros(self.n_rows, dtype=np.float32)
        rows, impacts = self._postings_of(ids)
        return np.bincount(rows, weights=impacts, minlength=self.n_rows).astype(np.float32)

    def top(
        self, query_terms: Iterable[str], n: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``n`` best positive-scoring rows, best first (ties by row).

        ``allowed`` is an optional boolean mask over rows (a filter).  Same
        result as ranking :meth:`scores`, usually without scanning the long
        posting lists of common terms (:class:`MaxScore`).
        """
        return self._top(self._numbers(query_terms), n, allowed)

    def scores_at(self, query_terms: Iterable[str], rows: np.ndarray) -> np.ndarray:
        """BM25 score of the given ``rows`` only (float32), looked up in each term's postings."""
        return self._impacts_at(self._numbers(query_terms), np.asarray(rows, dtype=np.int64)).astype(np.float32)

    def _numbers(self, query_terms: Iterable[str]) -> np.ndarray:
        """Term numbers of the distinct known ``query_terms``, ascending."""
        return np.array(sorted({self.terms[t] for t in query_terms if t in self.terms}), dtype=np.int64)

    def _impacts(self, term: int, postings: slice | np.ndarray) -> np.ndarray:
        return self.impacts[postings]

    def _bounds(self, ids: np.ndarray) -> np.ndarray:
        return self.max_impact[ids]

    def rows_of(self, passage_ids: np.ndarray) -> np.ndarray:
        """Row of each passage id (ids must be present)."""
        return np.searchsorted(self.row_ids, passage_ids)

    def matched_terms(self, query_terms: Iterable[str], row: int) -> set[str]:
        """The distinct ``query_terms`` that occur in ``row``."""
        found = set()
        for term in set(query_terms):
            t = self.terms.get(term)
            if t is None:
                continue
            postings = self.rows[self.offsets[t] : self.offsets[t + 1]]  # ascending rows
            at = int(np.searchsorted(postings, row))
            if at < len(postings) and postings[at] == row:
                found.add(term)
        return found

    def max_idf(self) -> float:
        """IDF a term would have if no passage contained it."""
        return float(np.log1p((self.n_rows + 0.5) / 0.5))

    def term_idf(self, terms: Iterable[str]) -> dict[str, float]:
        """IDF of each distinct term; unseen terms get :meth:`max_idf`."""
        top = self.max_idf()
        return {t: float(self.idf[self.terms[t]]) if t in self.terms else top for t in set(terms)}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to persist (see :meth:`from_arrays`)."""
        vocab = "\n".join(self.terms).encode("utf-8")
        return {
            "vocab": np.frombuffer(vocab, dtype=np.uint8),
            "offsets": self.offsets,
            "rows": self.rows,
            "tfs": self.tfs,
            "doc_len": self.doc_len,
            "row_ids": self.row_ids,
            "params": np.array([self.k1, self.b], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BM25Index:
        """Rebuild from :meth:`to_arrays` output."""
        vocab = bytes(arrays["vocab"]).decode("utf-8")
        words = vocab.split("\n") if vocab else []
        k1, b = arrays["params"].tolist()[:2]  # a segment's params also hold its avgdl_ref
        return cls(
            {w: i for i, w in enumerate(words)},
            arrays["offsets"],
            arrays["rows"],
            arrays["tfs"],
            arrays["doc_len"],
            arrays["row_ids"],
            float(k1),
            float(b),
        )


def _postings(
    token_lists: Sequence[Sequence[str]], terms: dict[str, int], first_row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term, row, tf) postings of ``token_lists`` as rows ``first_row``, ``first_row + 1``, ...,
    sorted by term then row; new terms are numbered into ``terms``.

    One dictionary lookup per token and a ``np.unique`` of term-major keys,
    rather than a Counter per passage: a million passages stay in NumPy.
    """
    lengths = np.fromiter((len(tokens) for tokens in token_lists), dtype=np.int64, count=len(token_lists))
    numbers = np.fromiter((terms.setdefault(t, len(terms)) for tokens in token_lists for t in tokens),
                          dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(first_row, first_row + len(token_lists), dtype=np.int64), lengths)
    span = first_row + len(token_lists)
    keys, tfs = np.unique(numbers * span + rows, return_counts=True)
    return keys // span, keys % span, tfs.astype(np.float32)


def find_postings(offsets: np.ndarray, rows: np.ndarray, term: int, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each row of ``which`` would be among term ``term``'s postings (absolute position into
    ``rows``) and whether it is there; postings are ascending by row within a term."""
    start, end = int(offsets[term]), int(offsets[term + 1])
    postings = rows[start:end]  # read once: ``rows`` may be read from its file on demand
    # Rows in the postings' own type: with wider ones NumPy would first convert the whole posting list.
    at = np.searchsorted(postings, np.asarray(which).astype(postings.dtype, copy=False))
    inside = at < end - start
    hit = np.zeros(len(which), dtype=bool)
    hit[inside] = postings[at[inside]] == which[inside]
    return start + at, hit


def term_maxima(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The largest of ``values`` (one per posting) within each term's postings, 0 for a term without any."""
    maxima = np.zeros(len(offsets) - 1, dtype=np.float32)
    present = np.diff(offsets) > 0
    if present.any():
        maxima[present] = np.maximum.reduceat(values, offsets[:-1][present])
    return maxima


def row_sums(rows: np.ndarray, weights: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``rows`` (ascending, all below ``n_rows``) and the float64 sum of each one's ``weights``.

    ``bincount`` adds each row's weights in input order, whichever way is
    taken, so the sums are bit for bit those of a full score array.  Few
    postings are summed through their distinct rows (``np.unique``), many in
    an array over all ``n_rows`` (:data:`SPARSE_SCAN`): a rare term in a
    large segment then costs its postings, not the segment's size.
    """
    if len(rows) * SPARSE_SCAN < n_rows:
        found, inverse = np.unique(rows, return_inverse=True)
        return found.astype(np.int64), np.bincount(inverse, weights=weights, minlength=len(found))
    sums = np.bincount(rows, weights=weights, minlength=n_rows)
    found = np.flatnonzero(sums)
    return found, sums[found]


def best_found(found: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best positive of ``scores`` (one per row of the ascending ``found``) as rows and
    scores, best first, ties by row: the order of :func:`best_rows`."""
    best, _ = _best(np.arange(len(found)), scores, n)
    return found[best], scores[best]


def best_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` best positive entries of a score per row, best first, ties by row: the order of
    :meth:`BM25Index.top`, for ranking a full score array the same way."""
    return _best(np.flatnonzero(scores > 0), scores, n)[0]


def _best(rows: np.ndarray, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best of ``rows`` by ``scores[rows]`` (positive only), best first, ties by row."""
    rows = rows[scores[rows] > 0]
    if len(rows) > n:  # keep every row tied with the n-th best, so that ties are broken by row below
        nth = np.partition(scores[rows], len(rows) - n)[len(rows) - n]
        rows = rows[scores[rows] >= nth]
    rows = rows[np.lexsort((rows, -scores[rows]))][:n].astype(np.int64)
    return rows, scores[rows]
