"""One segment of an embedded index as the search side loads it (issue 18; docs/index-format.md).

A segment is a FAISS index plus BM25 arrays over an increasing range of
passage ids, and the deletions a later generation recorded against it.  The
search side caches :class:`SegmentData` by ``name`` across generations, so a
new generation only costs loading its new segments and deletion files.

In format 3 a segment is a folder ``segments/<name>/`` written once through a
temp folder and a rename (:func:`write_segment`): ``vectors.faiss`` and one
``lexical/<array>.npy`` per BM25 array, so that readers memory-map them; a
later batch that deletes some of its passages writes a cumulative
``deleted-<gen>.npz`` beside them (:func:`write_deletions`).  Nothing here
decides *which* segments exist: that is the manifest's, owned by :mod:`indexer.store`.

An index of format 2 is read as exactly one segment: its
``vectors-<gen>.faiss`` and ``lexical-<gen>.npz`` of the generation, with the
per-posting weights computed at load (:func:`indexer.bm25_segments.segment_arrays`)
and no deletions (format 2 rewrote its files at every batch, so they hold live rows only).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .bm25 import BM25Index
from .bm25_segments import SEGMENT_ARRAYS, average_length, segment_arrays
from .errors import IndexFormatError, SearchError
from .index_dir import fsync_dir
from .postings_file import PostingArray, can_release, mapped_array

#: The folder of an index that holds its segment folders.
SEGMENTS = "segments"
VECTORS = "vectors.faiss"
LEXICAL = "lexical"
#: How a searcher reads the per-posting arrays (:data:`ON_DEMAND`): ``map`` memory-maps them like the others, and
#: the pages searches touch stay in the process's resident memory; ``read`` reads them a term's span at a time
#: (:mod:`indexer.postings_file`), which keeps them out of it; ``release`` (the default where it works as meant:
#: :func:`default_postings_mode`) maps them and unmaps the pages searches touched after a search once they add
#: up (:func:`indexer.postings_file.release_pages`).  docs/performance.md ("Segments") compares the three.
POSTINGS_ENV = "SOUYI_POSTINGS"
POSTINGS_MODES = ("map", "read", "release")
#: The per-posting arrays: most of a segment's bytes, of which a query reads a few short spans.
ON_DEMAND = frozenset({"rows", "tfs", "weights"})
#: In ``read`` mode, a per-posting file smaller than this (a small batch's segment) is read whole into memory
#: once, rather than once per query term and segment.
ON_DEMAND_FROM = 1 << 20
#: How FAISS opens a segment's file: memory-mapped, so that its pages are shared and loaded on use.
_MMAP = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)

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

    def plus(self, ids: np.ndarray, terms: list[list[str]]) -> SegmentDeletions:
        """These deletions and the passages ``ids`` (not yet deleted) whose analyzer terms are ``terms``."""
        counts = dict(self.terms)
        for tokens in terms:
            for term in set(tokens):
                counts[term] = counts.get(term, 0) + 1
        merged = np.union1d(self.ids, np.asarray(ids, dtype=np.int64))
        return SegmentDeletions(merged, counts, self.length + sum(len(t) for t in terms))


@dataclass(frozen=True)
class SegmentData:
    """A loaded segment: its lexical arrays, its vectors and its deletions in one generation."""

    name: str
    lexical: dict[str, np.ndarray | PostingArray]
    vectors: faiss.Index
    deleted_ids: np.ndarray
    deleted_terms: dict[str, int]
    deleted_length: int
    first_id: int
    last_id: int
    passages: int


def read_faiss(file: Path, dim: int, mmap: bool = False) -> faiss.Index:
    """A segment's FAISS file (``mmap``: memory-mapped); a damaged one is an index error naming the repair command."""
    try:
        index = faiss.read_index(str(file), _MMAP) if mmap else faiss.read_index(str(file))
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


def segment_dir(root: Path, name: str) -> Path:
    """The folder of segment ``name`` in the index at ``root``."""
    return root / SEGMENTS / name


def write_segment(root: Path, name: str, vectors: faiss.Index, lexical: dict[str, np.ndarray]) -> None:
    """Write segment ``name`` once: into a temp folder, every file fsynced, then renamed into place.

    A crash leaves either no folder or a complete one; a leftover temp
    folder (or a complete folder no manifest names) is removed by the next writer.
    """
    parent = root / SEGMENTS
    parent.mkdir(exist_ok=True)
    tmp = parent / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / LEXICAL).mkdir(parents=True)
    try:
        faiss.write_index(vectors, str(tmp / VECTORS))
    except RuntimeError as exc:  # FAISS reports a failed write (a full disk, an I/O error) as a RuntimeError
        raise OSError(f"cannot write {tmp / VECTORS}: {str(exc).rpartition('failed: ')[2]}") from exc
    _fsync_file(tmp / VECTORS)
    for key, array in lexical.items():
        with open(tmp / LEXICAL / f"{key}.npy", "wb") as fh:
            np.save(fh, np.ascontiguousarray(array))
            fh.flush()
            os.fsync(fh.fileno())
    fsync_dir(tmp / LEXICAL)
    fsync_dir(tmp)
    os.replace(tmp, parent / name)
    fsync_dir(parent)


def write_deletions(root: Path, name: str, gen: int, deletions: SegmentDeletions) -> str:
    """Write segment ``name``'s cumulative deletions as of generation ``gen``; returns the manifest's path for it."""
    relative = f"{name}/deleted-{gen:06d}.npz"
    file = root / SEGMENTS / relative
    tmp = file.with_name(f".tmp-{file.name}")
    words = sorted(deletions.terms)
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            ids=np.asarray(deletions.ids, dtype=np.int64),
            terms=np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8),
            counts=np.array([deletions.terms[w] for w in words], dtype=np.int64),
            length=np.array(deletions.length, dtype=np.int64),
        )
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, file)
    fsync_dir(file.parent)
    return relative


def read_deletions(root: Path, relative: str | None) -> SegmentDeletions:
    """The deletions file a manifest entry names (``None``: the segment has lost nothing)."""
    if relative is None:
        return SegmentDeletions.none()
    file = root / SEGMENTS / relative
    try:
        with np.load(file) as arrays:
            text = bytes(arrays["terms"]).decode("utf-8")
            words = text.split("\n") if text else []
            return SegmentDeletions(
                arrays["ids"], dict(zip(words, arrays["counts"].tolist(), strict=True)), int(arrays["length"])
            )
    except (OSError, ValueError, KeyError) as exc:
        raise IndexFormatError(f"{file} is unreadable ({exc}); repair it with: souyi check --repair") from exc


def default_postings_mode() -> str:
    """``release`` where it can work as meant (:func:`indexer.postings_file.can_release`: Linux), else ``map``:
    measured at scale, it kept a search process's resident memory near its private memory and searched as fast
    as ``map`` (docs/performance.md, "Segments")."""
    return "release" if can_release() else "map"


def postings_mode() -> str:
    """``$SOUYI_POSTINGS`` (:func:`default_postings_mode` when unset); anything else is an error naming the
    choices."""
    mode = os.environ.get(POSTINGS_ENV) or default_postings_mode()
    if mode not in POSTINGS_MODES:
        raise SearchError(f"{POSTINGS_ENV} must be one of {', '.join(POSTINGS_MODES)}, got {mode!r}")
    return mode


def read_lexical_folder(folder: Path) -> dict[str, np.ndarray | PostingArray]:
    """A segment's BM25 arrays from its ``lexical/`` folder, memory-mapped as plain read-only ndarray views
    (np.memmap's own slicing costs microseconds per call, and a search slices them once per query term and
    segment), except the per-posting ones (:data:`ON_DEMAND`) as :func:`postings_mode` says."""
    mode = postings_mode()
    try:
        return {file.stem: _posting_array(file, mode) if mode != "map" and file.stem in ON_DEMAND
                else np.load(file, mmap_mode="r").view(np.ndarray) for file in sorted(folder.glob("*.npy"))}
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{folder} is unreadable ({exc}); repair it with: souyi check --repair") from exc


def _posting_array(file: Path, mode: str) -> np.ndarray | PostingArray:
    """A per-posting array in ``release`` mode (mapped so that its pages can be released), or in ``read`` mode
    read on demand, or read whole when small."""
    if mode == "release":
        return mapped_array(file)
    if file.stat().st_size >= ON_DEMAND_FROM:
        return PostingArray(file)
    whole = np.load(file)
    whole.flags.writeable = False
    return whole


def read_segment_vectors(root: Path, name: str, dim: int) -> faiss.Index:
    """Segment ``name``'s FAISS index, memory-mapped (a writer reads one to share its IVF training)."""
    return read_faiss(segment_dir(root, name) / VECTORS, dim, mmap=True)


def load_segment_folder(root: Path, entry: dict, dim: int) -> SegmentData:
    """Load a format-3 segment: its FAISS index memory-mapped, its BM25 arrays as :func:`read_lexical_folder`
    gives them, its deletions read."""
    folder = segment_dir(root, entry["name"])
    lexical = read_lexical_folder(folder / LEXICAL)
    if set(lexical) != SEGMENT_ARRAYS or len(lexical["row_ids"]) != int(entry["passages"]):
        raise IndexFormatError(f"{folder} is incomplete; repair it with: souyi check --repair")
    deletions = read_deletions(root, entry.get("deleted"))
    return SegmentData(
        name=entry["name"],
        lexical=lexical,
        vectors=read_segment_vectors(root, entry["name"], dim),
        deleted_ids=deletions.ids,
        deleted_terms=deletions.terms,
        deleted_length=deletions.length,
        first_id=int(entry["first_id"]),
        last_id=int(entry["last_id"]),
        passages=int(entry["passages"]),
    )


def _fsync_file(file: Path) -> None:
    with open(file, "rb") as fh:
        os.fsync(fh.fileno())


def remove_quietly(path: Path) -> None:
    """Remove a file or folder the index no longer names (already gone is fine)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
