"""A segment's per-posting arrays read from their ``.npy`` files on demand (``SOUYI_POSTINGS=read``), or mapped
so that the pages searches touched can be released (``SOUYI_POSTINGS=release``: :func:`release_pages`).

A query reads a few posting lists scattered over arrays of hundreds of MB.
Through a memory map, each page fault also maps the cached pages around it
(the kernel's fault-around, 64 KiB, which ``MADV_RANDOM`` does not turn off),
so after a few hundred queries nearly all of those files count in the search
process's resident memory although it read a small part of them
(docs/performance.md, "Segments").  :class:`PostingArray` copies the bytes
asked for with ``os.preadv`` into a buffer that lives as long as the query
needs it; the file's pages stay in the kernel's page cache.  It trades some
latency for that (the same page, mapped, costs nothing to read again), so it
is a choice (:func:`indexer.segment_files.postings_mode`), as Lucene offers
``MMapDirectory`` and ``NIOFSDirectory``.

Only what the BM25 code does with a posting array is supported: ``len``,
a slice (one term's postings: :func:`indexer.bm25_segments.term_values`
gathers inside it), and ``np.asarray`` for the rare whole read (a merge, the
small segments joined per generation).  A query asks for one term's postings
several times (MaxScore looks rows up in a list once per pass) and queries
share common terms, so the spans read last are kept, read-only, up to
:data:`RECENT_BYTES` for the process.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
from pathlib import Path

import numpy as np

from .errors import IndexFormatError

#: Bytes of recently read spans kept for the next reads of the same span (all arrays of the process together).
RECENT_BYTES = 64 << 20


class _RecentSpans:
    """The spans read last, by (array, start, stop), the least recently used dropped first beyond a byte budget
    (the long lists of common terms, which most queries read, stay)."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._spans: dict[tuple[int, int, int], np.ndarray] = {}  # least recently used first
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[int, int, int]) -> np.ndarray | None:
        with self._lock:
            found = self._spans.pop(key, None)
            if found is not None:
                self._spans[key] = found  # now the most recently used
            return found

    def keep(self, key: tuple[int, int, int], span: np.ndarray) -> None:
        if span.nbytes > self._budget // 4:
            return
        with self._lock:
            if key in self._spans:
                return
            self._spans[key] = span
            self._bytes += span.nbytes
            while self._bytes > self._budget:
                self._bytes -= self._spans.pop(next(iter(self._spans))).nbytes

    def forget(self, owner: int) -> None:
        """Drop the spans of a closed array (its id may be reused by a new one)."""
        with self._lock:
            for key in [key for key in self._spans if key[0] == owner]:
                self._bytes -= self._spans.pop(key).nbytes


_RECENT = _RecentSpans(RECENT_BYTES)


class PostingArray:
    """One value per posting (``rows``, ``tfs`` or ``weights`` of a segment) in a ``.npy`` file, read on demand.

    Each slice is one positioned read, kept among the recent spans for the next read of the same slice.
    """

    def __init__(self, file: Path) -> None:
        self.dtype, length, self._start = _flat_layout(file)
        self.shape: tuple[int] = (length,)
        self._file = file
        self._fd = os.open(file, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        weakref.finalize(self, _close, self._fd, id(self))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError("a posting array is read by slices: one term's postings at a time")
        found = _RECENT.get((id(self), key.start, key.stop))  # kept spans are stored under their bounds
        if found is not None:
            return found
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise IndexError("posting arrays are read in contiguous slices")
        stop = max(start, stop)
        found = self._read(start, stop)
        _RECENT.keep((id(self), start, stop), found)
        return found

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        whole = self._read(0, len(self))
        return whole if dtype is None else whole.astype(dtype)

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty(stop - start, dtype=self.dtype)
        buffer = memoryview(out).cast("B")
        done, offset = 0, self._start + start * self.dtype.itemsize
        while done < len(buffer):
            got = os.preadv(self._fd, [buffer[done:]], offset + done)
            if not got:
                raise IndexFormatError(f"{self._file} ended early; repair it with: souyi check --repair")
            done += got
        out.flags.writeable = False  # as a read-only map's slices were; a kept span must not change
        return out


def _flat_layout(file: Path) -> tuple[np.dtype, int, int]:
    """The value type, length and data offset of a one-dimensional numeric ``.npy`` file (checked complete)."""
    with open(file, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh)
        start = fh.tell()
        size = os.fstat(fh.fileno()).st_size
    if len(shape) != 1 or dtype.hasobject:
        raise IndexFormatError(f"{file} is not a flat numeric array; repair it with: souyi check --repair")
    if start + int(shape[0]) * dtype.itemsize > size:
        raise IndexFormatError(f"{file} is truncated; repair it with: souyi check --repair")
    return dtype, int(shape[0]), start


def mapped_array(file: Path) -> np.ndarray:
    """A per-posting ``.npy`` file memory-mapped read-only, in a form :func:`release_pages` can act on."""
    dtype, length, start = _flat_layout(file)
    if not length:
        return np.zeros(0, dtype=dtype)
    with open(file, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype=dtype, count=length, offset=start)


def releasable_maps(arrays: list[np.ndarray | PostingArray]) -> list[mmap.mmap]:
    """The maps of the :func:`mapped_array` arrays among ``arrays`` (none of ``np.load``'s maps in ``map`` mode,
    of a :class:`PostingArray` or of a small array read whole): what :func:`release_pages` acts on, picked once
    per generation rather than per search."""
    return [view.obj for view in (getattr(array, "base", None) for array in arrays)
            if isinstance(view, memoryview) and isinstance(view.obj, mmap.mmap)]


def release_pages(maps: list[mmap.mmap]) -> None:
    """Unmap from this process the pages of ``maps`` (:func:`releasable_maps`) that searches touched
    (``MADV_DONTNEED``), once the process's file-backed resident memory has grown by
    :data:`RELEASE_AFTER_BYTES` since they were last released: they stay in the kernel's page cache, so a
    later search maps them again at the cost of a minor fault, but they no longer count in the process's
    resident memory.  Where that memory cannot be read (no ``/proc``), every call releases; where the
    platform has no ``madvise`` (Windows), the pages stay mapped, as in ``map`` mode."""
    _RELEASER.release(maps)


def can_release() -> bool:
    """Whether ``release`` can work as meant here: the platform unmaps pages on request (``madvise``) and tells
    a process how many mapped pages it holds (``/proc``, Linux), which makes ``release`` the default mode."""
    return getattr(mmap, "MADV_DONTNEED", None) is not None and _file_resident() is not None


#: ``SOUYI_POSTINGS=release`` lets searches map this many more bytes of index files before it unmaps the
#: postings' pages: releasing after every search would make each search fault in again every page it reads
#: (docs/performance.md, "Segments").
RELEASE_AFTER_BYTES = 64 << 20


class _Releaser:
    """The process's file-backed resident memory when the postings' pages were last released (or, if lower,
    since), and the lock that lets one search at a time release them (the others go on)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released_at = 0

    def release(self, maps: list[mmap.mmap]) -> None:
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is None or not maps:
            return
        resident = _file_resident()
        if resident is not None:
            # counted from the lowest point since the last release (maps of an older generation may have gone)
            self._released_at = min(self._released_at, resident)
            if resident - self._released_at < RELEASE_AFTER_BYTES:
                return
        if not self._lock.acquire(blocking=False):
            return  # another search is releasing them
        try:
            for mapped in maps:
                mapped.madvise(advice)
            self._released_at = _file_resident() or 0
        finally:
            self._lock.release()


_RELEASER = _Releaser()


def _file_resident() -> int | None:
    """Bytes of memory-mapped files resident in this process (``/proc/self/statm``), None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[2]) * mmap.PAGESIZE
    except (OSError, ValueError, IndexError):
        return None


def _close(fd: int, owner: int) -> None:
    _RECENT.forget(owner)
    os.close(fd)
