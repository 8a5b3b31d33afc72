"""A segment's terms looked up through 64-bit hashes, without a Python object per term (docs/index-format.md).

A segment stores its terms as UTF-8 joined by newlines (``vocab``).  A
``dict`` of them costs a string, an integer and a slot per term — tens of
bytes and a few hundred nanoseconds to build each — and the segments of one
index repeat most of each other's terms, so an index of many segments paid
for its vocabulary many times over, in memory and in the time to open it.
:class:`Vocabulary` keeps one 64-bit hash per term instead, computed by NumPy
over the stored bytes and sorted, with the term numbers in that order.  A
lookup hashes the query's terms once for all segments (:func:`hash_terms`),
finds them by binary search, and compares each hit with the stored bytes, so
that a hash collision can never return another term.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The polynomial hash's base (FNV-64's prime); arithmetic wraps modulo 2**64.
_BASE = np.uint64(0x100000001B3)
_NEWLINE = 10


def _hash_joined(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hash of each newline-separated word of ``data`` (uint8, at least one word) and where each word
    starts; the word ``w`` is ``data[starts[w] : starts[w + 1] - 1]``, the last one ending with ``data``."""
    padded = np.concatenate([data, np.array([_NEWLINE], dtype=np.uint8)])  # each word then ends with a newline
    ends = np.flatnonzero(padded == _NEWLINE)
    starts = np.concatenate([[0], ends[:-1] + 1])
    word_start = np.zeros(len(padded), dtype=np.int64)
    word_start[starts] = starts
    position = np.arange(len(padded)) - np.maximum.accumulate(word_start)  # of each byte within its word
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(int(position.max()) + 1, _BASE, dtype=np.uint64))
        parts = padded.astype(np.uint64)
        parts += np.uint64(1)
        parts *= powers[position]
        parts[ends] = 0  # the newlines are no part of a word
        hashes = np.add.reduceat(parts, starts) * _BASE + (ends - starts).astype(np.uint64)
    return hashes ^ (hashes >> np.uint64(29)), np.append(starts, len(padded))


def hash_terms(terms: Sequence[str]) -> np.ndarray:
    """The hashes :class:`Vocabulary` looks ``terms`` up by (uint64, one per term; terms hold no newline)."""
    if not terms:
        return np.zeros(0, dtype=np.uint64)
    return _hash_joined(np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8))[0]


class Vocabulary:
    """The terms of one segment, numbered in stored order, found by hash."""

    def __init__(self, data: np.ndarray) -> None:
        """``data``: the stored ``vocab`` array (UTF-8 terms joined by newlines; empty for no term)."""
        self._data = np.asarray(data, dtype=np.uint8)
        if not len(self._data):
            hashes, self._starts = np.zeros(0, dtype=np.uint64), np.zeros(1, dtype=np.int64)
        else:
            hashes, self._starts = _hash_joined(self._data)
        self._numbers = np.argsort(hashes)  # equal hashes (if any) are all compared
        self._hashes = hashes[self._numbers]

    def __len__(self) -> int:
        return len(self._hashes)

    def word(self, number: int) -> str:
        """Term number ``number``."""
        return bytes(self._data[self._starts[number] : self._starts[number + 1] - 1]).decode("utf-8")

    def words(self) -> list[str]:
        """Every term, in number order."""
        return bytes(self._data).decode("utf-8").split("\n") if len(self) else []

    def find(self, terms: Sequence[str], hashes: np.ndarray | None = None) -> dict[str, int]:
        """The ``terms`` this vocabulary holds, with their numbers, in the order of ``terms``
        (``hashes``: :func:`hash_terms` of them, when already computed for another segment)."""
        if not len(self) or not terms:
            return {}
        hashes = hash_terms(terms) if hashes is None else hashes
        at = np.searchsorted(self._hashes, hashes)
        inside = np.minimum(at, len(self) - 1)
        found = {}
        for i in np.flatnonzero(self._hashes[inside] == hashes).tolist():
            term, k = terms[i], int(at[i])
            while k < len(self) and self._hashes[k] == hashes[i]:  # equal hashes: the stored bytes decide
                number = int(self._numbers[k])
                if self.word(number) == term:
                    found[term] = number
                    break
                k += 1
        return found
