"""The BM25 postings of adjacent segments joined into one index, their deleted passages dropped.

A merge could re-read every passage's terms from SQLite and index them again,
but that holds a Python string per term occurrence: gigabytes for the
largest merges.  The segments already hold the postings, sorted by term then
row, over increasing passage ids; joining them is a renumbering of terms and
rows and one stable sort, all in NumPy.  The result is the
:class:`indexer.bm25.BM25Index` a fresh build of the live passages gives
(same postings, same lengths; terms numbered in first-seen order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .bm25 import BM25Index


def merge_postings(parts: Sequence[tuple[Mapping[str, np.ndarray], np.ndarray]], k1: float, b: float) -> BM25Index:
    """One index of ``parts`` (a segment's lexical arrays and its sorted deleted passage ids), in this order.

    The parts must hold increasing, disjoint passage-id ranges (adjacent
    segments); terms left without a posting are dropped.
    """
    terms: dict[str, int] = {}
    all_terms, all_rows, all_tfs, doc_len, row_ids = [], [], [], [], []
    first_row = 0
    for arrays, deleted in parts:
        text = bytes(arrays["vocab"]).decode("utf-8")
        numbers = np.array([terms.setdefault(w, len(terms)) for w in (text.split("\n") if text else [])],
                           dtype=np.int64)
        keep_row = ~np.isin(arrays["row_ids"], deleted)
        new_row = np.cumsum(keep_row) - 1 + first_row
        rows = np.asarray(arrays["rows"])
        keep = keep_row[rows]
        all_terms.append(np.repeat(numbers, np.diff(arrays["offsets"]))[keep])
        all_rows.append(new_row[rows[keep]])
        all_tfs.append(np.asarray(arrays["tfs"])[keep])
        doc_len.append(np.asarray(arrays["doc_len"])[keep_row])
        row_ids.append(np.asarray(arrays["row_ids"])[keep_row])
        first_row += int(keep_row.sum())
    term_of = np.concatenate([np.zeros(0, np.int64), *all_terms])
    counts = np.bincount(term_of, minlength=len(terms))
    used = counts > 0
    words = [w for w, n in terms.items() if used[n]]
    # parts come in row order and each is sorted by (term, row): a stable sort by term keeps rows ascending;
    # dropping the terms without postings keeps the order of the others, so their offsets are the counts
    order = np.argsort(term_of, kind="stable")
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum(counts[used], out=offsets[1:])
    return BM25Index(
        {w: i for i, w in enumerate(words)},
        offsets,
        np.concatenate([np.zeros(0, np.int64), *all_rows])[order].astype(np.int32),
        np.concatenate([np.zeros(0, np.float32), *all_tfs])[order].astype(np.float32),
        np.concatenate([np.zeros(0, np.float32), *doc_len]).astype(np.float32),
        np.concatenate([np.zeros(0, np.int64), *row_ids]).astype(np.int64),
        k1,
        b,
    )
