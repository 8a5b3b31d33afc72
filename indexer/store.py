"""The on-disk index format.  This module is the only code that opens its files.

An index is one directory::

    manifest.json       format version, model id and dimension, analyzer and
                        BM25 settings, counts; written last, checked on open
    passages.sqlite3    documents and passages (text, paragraph, offsets)
    vectors.faiss       passage vectors, FAISS IDMap keyed by passage id
    lexical.npz         BM25 arrays (see indexer.bm25)

A build writes a complete new directory beside the target and swaps it in
with renames, so a crash half-way never leaves a half index where a good one
was, and readers that already opened the old files keep reading them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from .bm25 import BM25Index
from .errors import IndexFormatError, IndexNotFound, ModelMismatch

logger = logging.getLogger(__name__)

FORMAT_NAME = "souyi-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "passages.sqlite3"
VECTORS = "vectors.faiss"
LEXICAL = "lexical.npz"

_SCHEMA = """
CREATE TABLE documents (
    doc_id      INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,   -- stable document id shown to users
    title       TEXT NOT NULL,
    source      TEXT NOT NULL,          -- where it was read from
    encoding    TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    text        TEXT NOT NULL,          -- decoded source: offsets point into it
    indexed_at  REAL NOT NULL
);
CREATE TABLE passages (
    passage_id  INTEGER PRIMARY KEY,
    doc_id      INTEGER NOT NULL REFERENCES documents(doc_id),
    paragraph   INTEGER NOT NULL,
    start       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    heading     TEXT NOT NULL,
    text        TEXT NOT NULL
);
CREATE INDEX passages_doc ON passages(doc_id);
"""


@dataclass(frozen=True)
class DocumentRecord:
    """A source document as stored."""

    name: str
    title: str
    source: str
    encoding: str
    sha256: str
    text: str


@dataclass(frozen=True)
class PassageRecord:
    """A passage as stored, joined with its document."""

    passage_id: int
    doc_name: str
    title: str
    paragraph: int
    start: int
    end: int
    heading: str
    text: str


@dataclass(frozen=True)
class NewPassage:
    """A passage to write; ``doc`` is the position of its document in the batch."""

    doc: int
    paragraph: int
    start: int
    end: int
    heading: str
    text: str


def write_index(
    path: Path,
    manifest: dict,
    documents: Sequence[DocumentRecord],
    passages: Sequence[NewPassage],
    vectors: np.ndarray,
    lexical: BM25Index,
) -> None:
    """Write a complete index at ``path``, replacing any index already there.

    Passage ids are the positions in ``passages``; ``vectors`` and the rows
    of ``lexical`` follow the same order.
    """
    if len(vectors) != len(passages) or lexical.n_rows != len(passages):
        raise ValueError("vectors, lexical rows and passages must line up")
    path = Path(path)
    if path.exists() and not (path / MANIFEST).is_file() and any(path.iterdir()):
        raise IndexFormatError(f"{path} exists and is not a souyi index; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.building-", dir=path.parent))
    try:
        _write_database(staging / DATABASE, documents, passages)
        ids = np.arange(len(passages), dtype=np.int64)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(int(manifest["model"]["dim"])))
        if len(passages):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        faiss.write_index(index, str(staging / VECTORS))
        np.savez(staging / LEXICAL, **lexical.to_arrays())
        full = dict(manifest, format=FORMAT_NAME, format_version=FORMAT_VERSION, created_at=time.time())
        full["counts"] = {"documents": len(documents), "passages": len(passages)}
        _write_json(staging / MANIFEST, full)
        _swap_in(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_database(db_path: Path, documents: Sequence[DocumentRecord], passages: Sequence[NewPassage]) -> None:
    now = time.time()
    with sqlite3.connect(db_path) as conn:
        conn.executescript(_SCHEMA)
        conn.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, d.name, d.title, d.source, d.encoding, d.sha256, d.text, now) for i, d in enumerate(documents)],
        )
        conn.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, p.doc, p.paragraph, p.start, p.end, p.heading, p.text) for i, p in enumerate(passages)],
        )
    conn.close()


def _write_json(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
        fh.flush()
        os.fsync(fh.fileno())


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with renames (atomic per rename)."""
    if not target.exists():
        os.replace(staging, target)
        return
    retired = target.with_name(f".{target.name}.old-{os.getpid()}-{time.time_ns()}")
    os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


class IndexReader:
    """Read-only access to an index directory; safe to share between threads.

    Every file is opened when the reader is opened, so a reader keeps seeing
    one consistent index even if a rebuild swaps a new directory in under the
    same path (the old files live on until the reader is closed).
    """

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest
        uri = (path / DATABASE).resolve().as_uri() + "?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> IndexReader:
        """Open and check the index at ``path``."""
        path = Path(path)
        hint = f"build one with: souyi index DOCUMENTS... --index {path}"
        if not path.is_dir():
            raise IndexNotFound(f"no index at {path}; {hint}")
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise IndexNotFound(f"{path} is not a souyi index (no {MANIFEST}); {hint}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{manifest_path} is unreadable ({exc}); rebuild the index: {hint}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise IndexFormatError(f"{path} is not a souyi index (foreign manifest); {hint}")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"{path} has index format {manifest.get('format_version')}, this souyi reads "
                f"format {FORMAT_VERSION}; rebuild it: {hint}"
            )
        for name in (DATABASE, VECTORS, LEXICAL):
            if not (path / name).is_file():
                raise IndexFormatError(f"{path} is incomplete ({name} missing); rebuild it: {hint}")
        return cls(path, manifest)

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    def check_model(self, model_id: str, dim: int) -> None:
        """Raise :class:`ModelMismatch` unless the index was built by this model."""
        if model_id != self.model_id or dim != self.dim:
            raise ModelMismatch(
                f"the index at {self.path} was built with model {self.model_id!r} ({self.dim} dims); "
                f"it cannot be searched with {model_id!r} ({dim} dims). Open it without a model "
                f"to use its own, or rebuild it with --model {model_id}"
            )

    def load_vectors(self) -> faiss.Index:
        """The FAISS index of passage vectors."""
        index = faiss.read_index(str(self.path / VECTORS))
        if index.d != self.dim:
            raise IndexFormatError(f"{self.path / VECTORS} has {index.d} dims, manifest says {self.dim}")
        return index

    def load_lexical(self) -> BM25Index:
        """The BM25 arrays."""
        with np.load(self.path / LEXICAL) as arrays:
            return BM25Index.from_arrays({name: arrays[name] for name in arrays.files})

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def passages(self, passage_ids: Iterable[int]) -> dict[int, PassageRecord]:
        """Stored passages by id (ids that do not exist are left out)."""
        ids = [int(i) for i in passage_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(
            "SELECT p.passage_id, d.name, d.title, p.paragraph, p.start, p.end, p.heading, p.text "
            f"FROM passages p JOIN documents d USING (doc_id) WHERE p.passage_id IN ({marks})",
            ids,
        )
        return {row[0]: PassageRecord(*row) for row in rows}

    def all_passages(self) -> list[PassageRecord]:
        """Every passage, in id order (for rebuilding derived structures)."""
        rows = self._query(
            "SELECT p.passage_id, d.name, d.title, p.paragraph, p.start, p.end, p.heading, p.text "
            "FROM passages p JOIN documents d USING (doc_id) ORDER BY p.passage_id"
        )
        return [PassageRecord(*row) for row in rows]

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
