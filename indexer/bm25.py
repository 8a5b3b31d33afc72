"""BM25 over pre-tokenized passages, as plain NumPy arrays.

Scores are computed eagerly at build time (as bm25s does): every posting
stores its finished BM25 contribution, so a query is one gather and one
``bincount`` over the postings of its terms, with no per-document Python
loop.  The arrays are what the index store saves; this module never touches
files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75


@dataclass(frozen=True)
class BM25Index:
    """Impact-scored inverted index; row ``r`` is the ``r``-th passage given to :meth:`build`."""

    terms: dict[str, int]  # term -> term number
    offsets: np.ndarray  # int64 (n_terms + 1,): postings of term t are [offsets[t], offsets[t+1])
    rows: np.ndarray  # int32 (n_postings,): passage row of each posting
    impacts: np.ndarray  # float32 (n_postings,): BM25 contribution of the term to that row
    idf: np.ndarray  # float32 (n_terms,)
    n_rows: int
    k1: float = DEFAULT_K1
    b: float = DEFAULT_B

    @classmethod
    def build(
        cls, token_lists: Sequence[Sequence[str]], k1: float = DEFAULT_K1, b: float = DEFAULT_B
    ) -> BM25Index:
        """Index ``token_lists`` (one list of terms per passage row)."""
        n_rows = len(token_lists)
        doc_len = np.array([len(tokens) for tokens in token_lists], dtype=np.float32)
        avg_len = float(doc_len.mean()) if n_rows and doc_len.sum() else 1.0
        terms: dict[str, int] = {}
        post_term, post_row, post_tf = [], [], []
        for row, tokens in enumerate(token_lists):
            for term, tf in Counter(tokens).items():
                post_term.append(terms.setdefault(term, len(terms)))
                post_row.append(row)
                post_tf.append(tf)
        term_ids = np.array(post_term, dtype=np.int64)
        rows = np.array(post_row, dtype=np.int32)
        tf = np.array(post_tf, dtype=np.float32)
        order = np.argsort(term_ids, kind="stable")
        term_ids, rows, tf = term_ids[order], rows[order], tf[order]
        df = np.bincount(term_ids, minlength=len(terms)).astype(np.float32)
        idf = np.log1p((n_rows - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = k1 * (1.0 - b + b * doc_len[rows] / avg_len)
        impacts = (idf[term_ids] * tf * (k1 + 1.0) / (tf + norm)).astype(np.float32)
        offsets = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(df.astype(np.int64), out=offsets[1:])
        return cls(terms, offsets, rows, impacts, idf, n_rows, k1, b)

    def scores(self, query_terms: Iterable[str]) -> np.ndarray:
        """BM25 score of every row for the distinct ``query_terms`` (float32, ``n_rows``)."""
        ids = [self.terms[t] for t in set(query_terms) if t in self.terms]
        if not ids or not self.n_rows:
            return np.zeros(self.n_rows, dtype=np.float32)
        slices = [slice(self.offsets[t], self.offsets[t + 1]) for t in ids]
        rows = np.concatenate([self.rows[s] for s in slices])
        impacts = np.concatenate([self.impacts[s] for s in slices])
        return np.bincount(rows, weights=impacts, minlength=self.n_rows).astype(np.float32)

    def matched_terms(self, query_terms: Iterable[str], row: int) -> set[str]:
        """The distinct ``query_terms`` that occur in passage ``row``."""
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
            "impacts": self.impacts,
            "idf": self.idf,
            "params": np.array([self.n_rows, self.k1, self.b], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> BM25Index:
        """Rebuild from :meth:`to_arrays` output."""
        vocab = bytes(arrays["vocab"]).decode("utf-8")
        words = vocab.split("\n") if vocab else []
        n_rows, k1, b = arrays["params"].tolist()
        return cls(
            {w: i for i, w in enumerate(words)},
            arrays["offsets"],
            arrays["rows"],
            arrays["impacts"],
            arrays["idf"],
            int(n_rows),
            float(k1),
            float(b),
        )
