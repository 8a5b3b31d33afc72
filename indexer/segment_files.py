"""One segment of an embedded index as the search side loads it (issue 18; docs/index-format.md).

A segment is a FAISS index plus BM25 arrays over an increasing range of
passage ids, and the deletions a later generation recorded against it.  The
search side caches :class:`SegmentData` by ``name`` across generations, so a
new generation only costs loading its new segments and deletion files.

An index of format 2 is read as exactly one segment: its
``vectors-<gen>.faiss`` and ``lexical-<gen>.npz`` of the generation, with the
per-posting weights computed at load (:func:`indexer.bm25_segments.segment_arrays`)
and no deletions (format 2 rewrote its files at every batch, so they hold live rows only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .bm25 import BM25Index
from .bm25_segments import average_length, segment_arrays
from .errors import IndexFormatError

_NO_IDS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class SegmentDeletions:
    """Passages of one segment deleted as of a generation, and what they contributed to BM25's statistics."""

    ids: np.ndarray  # int64, sorted passage ids
    terms: dict[str, int]  # how many deleted passages hold each term
    length: int  # summed doc_len of the deleted passages

    @classmethod
    def none(cls) -> SegmentDeletions:
        return cls(_NO_IDS, {}, 0)


@dataclass(frozen=True)
class SegmentData:
    """A loaded segment: its lexical arrays, its vectors and its deletions in one generation."""

    name: str
    lexical: dict[str, np.ndarray]
    vectors: faiss.Index
    deleted_ids: np.ndarray
    deleted_terms: dict[str, int]
    deleted_length: int
    first_id: int
    last_id: int
    passages: int


def read_faiss(file: Path, dim: int) -> faiss.Index:
    """A segment's FAISS file; a damaged one is an index error that names the repair command."""
    try:
        index = faiss.read_index(str(file))
    except RuntimeError as exc:
        raise IndexFormatError(f"{file} is unreadable ({exc}); repair it with: souyi check --repair") from exc
    if index.d != dim:
        raise IndexFormatError(f"{file} has {index.d} dims, manifest says {dim}")
    return index


def read_lexical_npz(file: Path) -> BM25Index:
    """The format-2 BM25 arrays of one generation."""
    try:
        with np.load(file) as arrays:
            return BM25Index.from_arrays({name: arrays[name] for name in arrays.files})
    except (OSError, ValueError, KeyError) as exc:
        raise IndexFormatError(f"{file} is unreadable ({exc}); repair it with: souyi check --repair") from exc


def format2_entry(manifest: dict) -> dict:
    """The one segment entry a format-2 manifest stands for (named after its generation, since its files are)."""
    return {
        "name": f"gen{int(manifest['generation']):06d}",
        "passages": int(manifest["counts"]["passages"]),
        "deleted": None,
        "ann": manifest.get("ann"),
        "files": dict(manifest["files"]),
    }


def load_format2_segment(path: Path, entry: dict, dim: int) -> SegmentData:
    """Load the one segment of a format-2 index, its weights computed at the live average length."""
    lexical = read_lexical_npz(path / entry["files"]["lexical"])
    ids = lexical.row_ids
    avgdl_ref = average_length(int(lexical.doc_len.sum(dtype=np.float64)), len(ids))
    return SegmentData(
        name=entry["name"],
        lexical=segment_arrays(lexical, avgdl_ref),
        vectors=read_faiss(path / entry["files"]["vectors"], dim),
        deleted_ids=_NO_IDS,
        deleted_terms={},
        deleted_length=0,
        first_id=int(ids[0]) if len(ids) else 0,
        last_id=int(ids[-1]) if len(ids) else -1,
        passages=int(len(ids)),
    )
