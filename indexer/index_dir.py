"""The index directory, whichever store holds the data: its files, its writer lock, its identity.

Every index is a directory with a ``manifest.json`` (the commit point for the
embedded store, the pointer to the collections for Milvus), perhaps a jieba
``userdict.txt``, and a ``writer.lock``.  What both stores do with that
directory lives here, once: finding and reading the manifest, replacing files
so that a reader sees the old or the new one and never half, the one-writer
lock, swapping a rebuilt index in, and telling whether a directory changed
under a reader.  The format of the rest is each store's own
(:mod:`indexer.store`, :mod:`indexer.milvus_store`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from .errors import IndexBusy, IndexFormatError, IndexNotFound, ModelMismatch
from .records import DocumentRecord, NewPassage

MANIFEST = "manifest.json"
USERDICT = "userdict.txt"
LOCK = "writer.lock"
#: How long a writer waits for the lock unless told otherwise.
LOCK_TIMEOUT = 10.0

#: The identity of a file or directory as :func:`os.stat` gives it (``None``: absent).
Stamp = tuple[int, int] | None


def build_hint(path: Path) -> str:
    """The command that makes an index at ``path``, for error messages."""
    return f"build one with: souyi index DOCUMENTS... --index {path}"


def index_exists(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds an index (of any store): its manifest is there."""
    return (Path(path) / MANIFEST).is_file()


def load_manifest(path: str | os.PathLike[str]) -> dict:
    """The manifest of the index at ``path`` as a JSON object, before any store checks its format.

    Raises :class:`IndexNotFound` when there is none and :class:`IndexFormatError`
    when it cannot be read.
    """
    path = Path(path)
    if not path.is_dir():
        raise IndexNotFound(f"no index at {path}; {build_hint(path)}")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise IndexNotFound(f"{path} is not a souyi index (no {MANIFEST}); {build_hint(path)}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{manifest_path} is unreadable ({exc}); rebuild the index: {build_hint(path)}") from exc
    if not isinstance(manifest, dict):
        raise IndexFormatError(f"{path} is not a souyi index (foreign manifest); {build_hint(path)}")
    return manifest


def manifest_format(path: str | os.PathLike[str]) -> str | None:
    """The ``format`` the manifest at ``path`` names (None: no readable manifest)."""
    try:
        return load_manifest(path).get("format")
    except (IndexNotFound, IndexFormatError):
        return None


def write_manifest(path: Path, manifest: dict) -> None:
    """Write the manifest of the index at ``path`` atomically: the commit point of a batch."""
    write_json_atomic(path / MANIFEST, manifest)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_file(path: Path, write: Callable[[Path], object]) -> None:
    """Write a file through a temp name and an fsync, then rename it into place."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        write(tmp)
    except RuntimeError as exc:  # FAISS reports a failed write (a full disk, an I/O error) as a RuntimeError
        raise OSError(f"cannot write {tmp}: {str(exc).rpartition('failed: ')[2]}") from exc
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    """Make the renames inside directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def acquire_lock(path: Path, timeout: float) -> int:
    """Take the exclusive writer lock file ``path``; its descriptor (closing it releases the lock).

    Waits up to ``timeout`` seconds, then raises :class:`IndexBusy`.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise IndexBusy(
                    f"{path.parent} is being written by another process (lock {path}); "
                    "wait for it to finish, then try again"
                ) from None
            time.sleep(0.1)


def swap_in(staging: Path, target: Path) -> None:
    """Replace the index at ``target`` by the complete index at ``staging`` (renames only).

    An existing index at ``target`` must be a souyi index; its writer lock is
    held while it is swapped out.
    """
    if not target.exists():
        os.replace(staging, target)
        return
    if not index_exists(target) and any(target.iterdir()):
        raise IndexFormatError(f"{target} exists and is not a souyi index; refusing to overwrite it")
    fd = acquire_lock(target / LOCK, LOCK_TIMEOUT)
    try:
        retired = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
        os.replace(target, retired)
        os.replace(staging, target)
    finally:
        os.close(fd)
    shutil.rmtree(retired, ignore_errors=True)


def manifest_stamp(path: Path) -> Stamp:
    """Identity of the manifest now at ``path``: changes with every commit and every rebuild."""
    try:
        st = (path / MANIFEST).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def directory_stamp(path: Path) -> Stamp:
    """Identity of the index directory at ``path``: changes when a rebuild swaps a new one in
    (:func:`swap_in`), not with a batch committed into it.  None while it holds no index."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if index_exists(path) else None


class ManifestFacts:
    """What an open index tells from its manifest (any store: needs ``path`` and ``manifest``)."""

    path: Path
    manifest: dict

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    @property
    def rescorer(self) -> dict | None:
        """``{"id", "dim"}`` of the index's rescoring model, if it has one."""
        return self.manifest.get("rescorer")

    def check_model(self, model_id: str, dim: int) -> None:
        """Raise :class:`ModelMismatch` unless the index was built by this model."""
        if model_id != self.model_id or dim != self.dim:
            raise ModelMismatch(
                f"the index at {self.path} was built with model {self.model_id!r} ({self.dim} dims); "
                f"it cannot be used with {model_id!r} ({dim} dims). Open it without a model "
                f"to use its own, or rebuild it with --model {model_id}"
            )

    def userdict(self) -> Path | None:
        """The index's jieba user dictionary, if it has one."""
        path = self.path / USERDICT
        return path if path.is_file() else None


_Writer = TypeVar("_Writer", bound="LockedWriter")


class LockedWriter(ManifestFacts):
    """The one writer of an index directory: holds its lock, stages a batch; each store commits it its own way.

    A subclass takes the lock with :meth:`_take_lock` first thing, calls
    :meth:`_clear_batch`, and releases what it opened in
    :meth:`_close_store`; :meth:`close` (and leaving a ``with`` block) then
    releases the lock.
    """

    _lock_fd: int | None = None

    def _take_lock(self, timeout: float) -> None:
        self._lock_fd = acquire_lock(self.path / LOCK, timeout)

    def _clear_batch(self) -> None:
        self._added: list[tuple[DocumentRecord, list[NewPassage], np.ndarray, list[list[str]]]] = []
        self._removed: set[str] = set()

    def add(self, doc: DocumentRecord, passages: list[NewPassage], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Stage a document (replacing any document of the same name)."""
        if not (len(passages) == len(vectors) == len(terms)):
            raise ValueError("passages, vectors and terms must line up")
        self._added.append((doc, passages, np.asarray(vectors, dtype=np.float32), terms))

    def remove(self, name: str) -> None:
        """Stage the removal of the document called ``name``."""
        self._removed.add(name)

    def _staged_names(self) -> set[str]:
        """Names of the documents the staged batch touches."""
        return self._removed | {doc.name for doc, _, _, _ in self._added}

    def _close_store(self) -> None:
        """Release the store's own connection (called by :meth:`close`, also on a half-open writer)."""

    def close(self) -> None:
        """Release the store's connection and the writer lock (uncommitted staging is dropped)."""
        self._close_store()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self: _Writer) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
