"""The embedded store's on-disk format (FAISS + BM25 + SQLite).  The only code that opens its data files.

What every index directory has, whatever its store (the manifest file, the
writer lock, atomic replacement, swapping a rebuild in), is in
:mod:`indexer.index_dir`; the records it reads and writes in :mod:`indexer.records`.

An index is one directory::

    manifest.json             the commit point: format version, model id and
                              dimension, analyzer, BM25 settings, generation,
                              counts and the file names of that generation
    passages.sqlite3          documents and passages (text, offsets, metadata,
                              vectors and terms), each row stamped with the
                              generation that added it and the one that deleted it
    vectors-<gen>.faiss       passage vectors of one generation (exact or IVF,
                              chosen by size: :mod:`indexer.ann`)
    lexical-<gen>.npz         BM25 postings of one generation
    userdict.txt              the jieba user dictionary, if the index has one
    writer.lock               held by the one process that may write

Every write is a **batch**: it inserts its rows stamped ``gen + 1``, writes
the generation's FAISS and BM25 files, and becomes visible only when the new
``manifest.json`` is renamed into place.  A crash before that rename leaves
the old generation in force; the next writer rolls the stamped rows back.
Readers never take a lock: SQLite runs in WAL mode, a reader reads the rows
its generation can see, and the files of the generation it opened.  Deleted
rows are kept a few generations so that readers still on an older generation
can fetch them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from . import ann
from .bm25 import BM25Index
from .errors import IndexFormatError
from .index_dir import (
    LOCK,
    LOCK_TIMEOUT,
    USERDICT,
    LockedWriter,
    ManifestFacts,
    Stamp,
    build_hint,
    index_exists,
    load_manifest,
    manifest_stamp,
    write_file,
    write_manifest,
)
from .records import (
    PassageRecord,
    SentenceVectors,
    StoredDocument,
    pack_sentence_vectors,
    unpack_vector_rows,
)

logger = logging.getLogger(__name__)

FORMAT_NAME = "souyi-index"
FORMAT_VERSION = 2
DATABASE = "passages.sqlite3"
#: Deleted rows are purged once this many newer generations exist.
KEEP_GENERATIONS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id      INTEGER PRIMARY KEY AUTOINCREMENT,  -- the row key (``doc_key`` in Python); not Hit.doc_id
    name        TEXT NOT NULL,          -- stable document id shown to users (Hit.doc_id)
    title       TEXT NOT NULL,
    source      TEXT NOT NULL,          -- where it was read from
    encoding    TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,       -- of the source file, with mtime_ns: the fast unchanged check
    mtime_ns    INTEGER NOT NULL,
    meta        TEXT NOT NULL,          -- JSON object of user fields
    text        TEXT NOT NULL,          -- decoded source: passage offsets point into it
    indexed_at  REAL NOT NULL,
    added_gen   INTEGER NOT NULL,
    deleted_gen INTEGER
);
CREATE INDEX IF NOT EXISTS documents_name ON documents(name, deleted_gen);
CREATE TABLE IF NOT EXISTS passages (
    passage_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id      INTEGER NOT NULL REFERENCES documents(doc_id),  -- the document's row key
    paragraph   INTEGER NOT NULL,
    start       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    heading     TEXT NOT NULL,
    text        TEXT NOT NULL,
    vector      BLOB NOT NULL,          -- float32, so FAISS can be rebuilt without re-embedding
    terms       TEXT NOT NULL,          -- analyzer terms joined by U+001F, so BM25 can be rebuilt
    added_gen   INTEGER NOT NULL,
    deleted_gen INTEGER
);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id);
CREATE INDEX IF NOT EXISTS passages_gen ON passages(added_gen, deleted_gen);
"""
#: Sentence vectors of the rescoring model (manifest ``rescorer``); a table of its own so
#: that indexes without a rescorer, and those made before it existed, need no migration.
_RESCORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sentences (
    passage_id  INTEGER PRIMARY KEY,    -- rows live and die with their passage
    spans       TEXT NOT NULL,          -- JSON [[start, end], ...] of each sentence in the passage text
    vectors     BLOB NOT NULL           -- float16 rows: the whole passage, then each sentence
);
"""
_TERM_SEP = "\x1f"
#: Rows read at a time when a vector index is rebuilt from SQLite.
_REBUILD_CHUNK = 10_000
_PASSAGE_COLUMNS = (
    "p.passage_id, d.name, d.title, p.paragraph, p.start, p.end, p.heading, p.text, d.meta"
)


def _vectors_file(gen: int) -> str:
    return f"vectors-{gen:06d}.faiss"


def _lexical_file(gen: int) -> str:
    return f"lexical-{gen:06d}.npz"


def _read_manifest(path: Path) -> dict:
    manifest = load_manifest(path)
    if manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not a souyi index (foreign manifest); {build_hint(path)}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"{path} has index format {manifest.get('format_version')}, this souyi reads "
            f"format {FORMAT_VERSION}; rebuild it: {build_hint(path)}"
        )
    return manifest


def _visible(alias: str, gen: int) -> str:
    """SQL condition: the row of table ``alias`` exists in generation ``gen``."""
    return f"({alias}.added_gen <= {int(gen)} AND ({alias}.deleted_gen IS NULL OR {alias}.deleted_gen > {int(gen)}))"


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        uri = (path / DATABASE).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(path / DATABASE, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    return conn


class IndexWriter(LockedWriter):
    """The one writer of an index directory: stage a batch, then commit it.

    Opening takes an exclusive lock (``writer.lock``); a second writer waits up
    to ``lock_timeout`` seconds and then raises :class:`IndexBusy`.  Opening
    also rolls back the rows of a batch that crashed before its commit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: dict | None = None,
        userdict: Path | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        """Open the index at ``path`` for writing; ``create`` (the model/analyzer part of a
        manifest) makes a new one, with ``userdict`` copied in as its jieba user dictionary."""
        self.path = Path(path)
        if create is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            if any(p.name not in (LOCK,) for p in self.path.iterdir()) and not index_exists(self.path):
                raise IndexFormatError(f"{self.path} exists and is not a souyi index; refusing to write into it")
        self._take_lock(lock_timeout)
        try:
            if create is not None and not index_exists(self.path):
                if userdict is not None:
                    write_file(self.path / USERDICT, lambda p: shutil.copyfile(userdict, p))
                self._conn = _connect(self.path, readonly=False)
                self._conn.executescript(_SCHEMA + _RESCORE_SCHEMA)
                self.manifest = dict(create, format=FORMAT_NAME, format_version=FORMAT_VERSION, generation=0)
                vectors = self._build_files(0, BM25Index.empty(**create.get("bm25", {})), None)
                self._write_manifest(0, vectors, documents=0, passages=0)
            else:
                self.manifest = _read_manifest(self.path)
                self._conn = _connect(self.path, readonly=False)
                self._recover()
        except BaseException:
            self.close()
            raise
        self._clear_batch()

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])


    def documents(self) -> dict[str, StoredDocument]:
        """The documents of the committed generation, by name."""
        return _documents(self._conn, self.generation)

    def commit(self) -> int:
        """Make the staged batch visible, all of it or (after a crash) none; returns the generation."""
        if not self._added and not self._removed:
            return self.generation
        gen, new = self.generation, self.generation + 1
        names = self._staged_names()
        added_ids: list[int] = []
        added_terms: list[list[str]] = []
        added_vectors: list[np.ndarray] = []
        now = time.time()
        with self._conn:  # one transaction
            gone = [
                row[0]
                for name in names
                for row in self._conn.execute(
                    f"SELECT p.passage_id FROM passages p JOIN documents d USING (doc_id) "
                    f"WHERE d.name = ? AND {_visible('d', gen)} AND {_visible('p', gen)}",
                    (name,),
                )
            ]
            for name in names:
                self._conn.execute(
                    f"UPDATE passages SET deleted_gen = ? WHERE deleted_gen IS NULL AND doc_id IN "
                    f"(SELECT doc_id FROM documents d WHERE name = ? AND {_visible('d', gen)})",
                    (new, name),
                )
                self._conn.execute(
                    f"UPDATE documents SET deleted_gen = ? WHERE name = ? AND {_visible('documents', gen)}",
                    (new, name),
                )
            for doc, passages, vectors, terms in self._added:
                doc_key = self._conn.execute(
                    "INSERT INTO documents (name, title, source, encoding, sha256, size, mtime_ns, meta, text, "
                    "indexed_at, added_gen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc.name, doc.title, doc.source, doc.encoding, doc.sha256, doc.size, doc.mtime_ns,
                     json.dumps(doc.meta, ensure_ascii=False), doc.text, now, new),
                ).lastrowid
                for passage, vector, tokens in zip(passages, vectors, terms, strict=True):
                    pcur = self._conn.execute(
                        "INSERT INTO passages (doc_id, paragraph, start, end, heading, text, vector, terms, "
                        "added_gen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (doc_key, passage.paragraph, passage.start, passage.end, passage.heading,
                         passage.text, vector.tobytes(), _TERM_SEP.join(tokens), new),
                    )
                    added_ids.append(int(pcur.lastrowid))
                    if passage.rescore is not None:
                        _insert_sentences(self._conn, int(pcur.lastrowid), passage.rescore)
                    added_terms.append(tokens)
                    added_vectors.append(vector)
        previous = self._load_lexical(gen)
        lexical = previous.updated(gone, added_ids, added_terms)
        vectors = np.stack(added_vectors) if added_vectors else np.zeros((0, self._dim()), np.float32)
        described = self._build_files(new, lexical, (gone, np.array(added_ids, np.int64), vectors))
        counts = _counts(self._conn, new)
        self._write_manifest(new, described, **counts)  # the commit point
        self._clear_batch()
        self._cleanup(new)
        return new

    def repair(self) -> None:
        """Rewrite this generation's FAISS and BM25 files from the vectors and terms in SQLite.

        Fixes a damaged or lost ``vectors-*.faiss`` / ``lexical-*.npz``
        without re-reading or re-embedding any document.
        """
        gen = self.generation
        lexical = rebuild_lexical(self._conn, gen, self.manifest.get("bm25", {}))
        vectors = rebuild_vectors(self._conn, gen, self._dim(), self._ann())
        self._save_generation(gen, vectors, lexical)
        self._write_manifest(gen, ann.describe(vectors, self._ann()), **_counts(self._conn, gen))

    def _dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    def _ann(self) -> str:
        """The index kind asked for when the index was created (``auto``: chosen by size)."""
        return str(self.manifest.get("ann", {}).get("requested", "auto"))

    def _load_lexical(self, gen: int) -> BM25Index:
        try:
            with np.load(self.path / _lexical_file(gen)) as arrays:
                return BM25Index.from_arrays({name: arrays[name] for name in arrays.files})
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("rebuilding BM25 of generation %d from stored terms (%s)", gen, exc)
            return rebuild_lexical(self._conn, gen, self.manifest.get("bm25", {}))

    def _load_vectors(self, gen: int) -> faiss.Index:
        try:
            return faiss.read_index(str(self.path / _vectors_file(gen)))
        except RuntimeError as exc:
            logger.warning("rebuilding FAISS of generation %d from stored vectors (%s)", gen, exc)
            return rebuild_vectors(self._conn, gen, self._dim(), self._ann())

    def _build_files(self, gen: int, lexical: BM25Index, change: tuple | None) -> dict:
        """Write generation ``gen``'s FAISS and BM25 files; returns the manifest's description of the vectors.

        ``change`` (removed ids, added ids, added vectors) applies to
        ``gen - 1``'s vector index, loaded and updated in place, so a batch
        costs time in its own size (plus one read and one write of the file),
        not in the size of the index; only when the index kind or its IVF
        clusters no longer fit the passage count is it rebuilt from the
        vectors stored in SQLite (whose rows of ``gen`` are committed by now).
        """
        if change is None:
            index = ann.build(np.zeros((0, self._dim()), np.float32), np.zeros(0, np.int64), self._dim(), self._ann())
        else:
            gone, ids, vectors = change
            index = self._load_vectors(gen - 1)
            if ann.needs_rebuild(index, index.ntotal - len(gone) + len(ids), self._ann()):
                index = rebuild_vectors(self._conn, gen, self._dim(), self._ann())
            else:
                ann.update(index, np.array(gone, dtype=np.int64), ids, vectors)
        self._save_generation(gen, index, lexical)
        return ann.describe(index, self._ann())

    def _save_generation(self, gen: int, index: faiss.Index, lexical: BM25Index) -> None:
        write_file(self.path / _vectors_file(gen), lambda p: faiss.write_index(index, str(p)))
        write_file(self.path / _lexical_file(gen), lambda p: _save_npz(p, lexical.to_arrays()))

    def _write_manifest(self, gen: int, vectors: dict, *, documents: int, passages: int) -> None:
        manifest = dict(self.manifest, generation=gen, committed_at=time.time(), ann=vectors)
        manifest["files"] = {"vectors": _vectors_file(gen), "lexical": _lexical_file(gen)}
        manifest["counts"] = {"documents": documents, "passages": passages}
        write_manifest(self.path, manifest)
        self.manifest = manifest

    def _recover(self) -> None:
        """Undo the rows of a batch that did not reach its commit point."""
        gen = self.generation
        self._conn.executescript(_RESCORE_SCHEMA)  # indexes made before sentence vectors existed
        with self._conn:
            self._conn.execute(
                "DELETE FROM sentences WHERE passage_id IN (SELECT passage_id FROM passages WHERE added_gen > ?)",
                (gen,),
            )
            undone = self._conn.execute("DELETE FROM passages WHERE added_gen > ?", (gen,)).rowcount
            undone += self._conn.execute("DELETE FROM documents WHERE added_gen > ?", (gen,)).rowcount
            self._conn.execute("UPDATE passages SET deleted_gen = NULL WHERE deleted_gen > ?", (gen,))
            self._conn.execute("UPDATE documents SET deleted_gen = NULL WHERE deleted_gen > ?", (gen,))
        if undone:
            logger.warning("rolled back %d rows of an unfinished batch in %s", undone, self.path)
        self._cleanup(gen)

    def _cleanup(self, gen: int) -> None:
        """Drop files of generations older than the previous one and long-deleted rows."""
        keep = {_vectors_file(gen), _lexical_file(gen), _vectors_file(gen - 1), _lexical_file(gen - 1)}
        for file in self.path.iterdir():
            stale = file.name.startswith(("vectors-", "lexical-")) and file.name not in keep
            if stale or file.name.startswith(".tmp-"):
                with contextlib.suppress(OSError):
                    file.unlink()
        with self._conn:
            self._conn.execute(
                "DELETE FROM sentences WHERE passage_id IN (SELECT passage_id FROM passages WHERE deleted_gen <= ?)",
                (gen - KEEP_GENERATIONS,),
            )
            self._conn.execute("DELETE FROM passages WHERE deleted_gen <= ?", (gen - KEEP_GENERATIONS,))
            self._conn.execute("DELETE FROM documents WHERE deleted_gen <= ?", (gen - KEEP_GENERATIONS,))

    def _close_store(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _insert_sentences(conn: sqlite3.Connection, passage_id: int, vectors: SentenceVectors) -> None:
    conn.execute(
        "INSERT INTO sentences (passage_id, spans, vectors) VALUES (?, ?, ?)",
        (passage_id, vectors.spans_json(), pack_sentence_vectors(vectors)),
    )


def _documents(conn: sqlite3.Connection, gen: int) -> dict[str, StoredDocument]:
    rows = conn.execute(
        f"SELECT d.name, d.title, d.source, d.sha256, d.size, d.mtime_ns, d.meta, d.indexed_at, "
        f"(SELECT COUNT(*) FROM passages p WHERE p.doc_id = d.doc_id AND {_visible('p', gen)}) "
        f"FROM documents d WHERE {_visible('d', gen)} ORDER BY d.name"
    ).fetchall()
    return {
        r[0]: StoredDocument(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[8], r[7]) for r in rows
    }


def _counts(conn: sqlite3.Connection, gen: int) -> dict[str, int]:
    docs = conn.execute(f"SELECT COUNT(*) FROM documents d WHERE {_visible('d', gen)}").fetchone()[0]
    passages = conn.execute(f"SELECT COUNT(*) FROM passages p WHERE {_visible('p', gen)}").fetchone()[0]
    return {"documents": docs, "passages": passages}


def rebuild_lexical(conn: sqlite3.Connection, gen: int, bm25: dict) -> BM25Index:
    """BM25 of generation ``gen`` from the terms stored with the passages."""
    rows = conn.execute(
        f"SELECT passage_id, terms FROM passages p WHERE {_visible('p', gen)} ORDER BY passage_id"
    ).fetchall()
    return BM25Index.build([r[1].split(_TERM_SEP) if r[1] else [] for r in rows], [r[0] for r in rows], **bm25)


def rebuild_vectors(conn: sqlite3.Connection, gen: int, dim: int, requested: str = "auto") -> faiss.Index:
    """FAISS index of generation ``gen`` from the vectors stored with the passages."""
    ids, vectors = stored_vectors(conn, gen, dim)
    return ann.build(vectors, ids, dim, requested)


def stored_vectors(conn: sqlite3.Connection, gen: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Passage ids (ascending) and their float32 vectors as stored in SQLite for generation ``gen``.

    Rows are read in chunks into one array, so a million passages cost
    1.5 GB once rather than a Python object per row on top.
    """
    where = f"FROM passages p WHERE {_visible('p', gen)}"
    n = conn.execute(f"SELECT COUNT(*) {where}").fetchone()[0]
    vectors = np.empty((n, dim), dtype=np.float32)
    ids = np.empty(n, dtype=np.int64)
    cursor = conn.execute(f"SELECT passage_id, vector {where} ORDER BY passage_id")
    done = 0
    while rows := cursor.fetchmany(_REBUILD_CHUNK):
        ids[done : done + len(rows)] = [r[0] for r in rows]
        vectors[done : done + len(rows)] = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(-1, dim)
        done += len(rows)
    return ids[:done], vectors[:done]


class IndexReader(ManifestFacts):
    """Read-only access to one committed generation of an index; thread-safe.

    The generation is fixed when the reader opens: its files are loaded and
    its rows selected by generation, so a batch committed meanwhile, or a
    rebuild swapped in under the same path, never mixes into what it reads.
    """

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.manifest = manifest
        self.generation = int(manifest["generation"])
        self._conn = _connect(path, readonly=True)
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> IndexReader:
        """Open the committed generation of the index at ``path``."""
        path = Path(path)
        manifest = _read_manifest(path)
        if not (path / DATABASE).is_file():
            raise IndexFormatError(f"{path} is incomplete ({DATABASE} missing); rebuild it with souyi index")
        return cls(path, manifest)

    def stamp(self) -> Stamp:
        """Identity of the manifest now on disk (changes with every commit or rebuild)."""
        return manifest_stamp(self.path)


    @contextlib.contextmanager
    def _database(self) -> Iterator[sqlite3.Connection]:
        """The connection, one thread at a time; a damaged database is an index error, not a crash.

        SQLite only finds damaged pages when a query reads them, so any read
        may fail: callers (CLI exit 3, HTTP 503) then learn which command tells more.
        """
        with self._lock:
            try:
                yield self._conn
            except sqlite3.DatabaseError as exc:
                raise IndexFormatError(
                    f"SQLite database {self.path / DATABASE} is unreadable ({exc}); "
                    f"see what is wrong with: souyi check --index {self.path}"
                ) from exc

    def stored_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Passage ids and exact vectors of this generation as SQLite keeps them (for ANN recall checks)."""
        with self._database() as conn:
            return stored_vectors(conn, self.generation, self.dim)

    def load_vectors(self) -> faiss.Index:
        """The FAISS index of this generation."""
        file = self.path / self.manifest["files"]["vectors"]
        try:
            index = faiss.read_index(str(file))
        except RuntimeError as exc:
            raise IndexFormatError(f"{file} is unreadable ({exc}); repair it with: souyi check --repair") from exc
        if index.d != self.dim:
            raise IndexFormatError(f"{file} has {index.d} dims, manifest says {self.dim}")
        return index

    def load_lexical(self) -> BM25Index:
        """The BM25 index of this generation."""
        file = self.path / self.manifest["files"]["lexical"]
        try:
            with np.load(file) as arrays:
                return BM25Index.from_arrays({name: arrays[name] for name in arrays.files})
        except (OSError, ValueError, KeyError) as exc:
            raise IndexFormatError(f"{file} is unreadable ({exc}); repair it with: souyi check --repair") from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._database() as conn:
            return conn.execute(sql, params).fetchall()

    def passages(self, passage_ids: Iterable[int]) -> dict[int, PassageRecord]:
        """Stored passages by id (ids that do not exist are left out)."""
        ids = [int(i) for i in passage_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(
            f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (doc_id) "
            f"WHERE p.passage_id IN ({marks})",
            ids,
        )
        return {row[0]: PassageRecord(*row[:8], json.loads(row[8])) for row in rows}

    def passage_texts(self, passage_ids: Iterable[int]) -> dict[int, str]:
        """The text of passages by id (ids that do not exist are left out), nothing else read."""
        ids = [int(i) for i in passage_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self._query(f"SELECT passage_id, text FROM passages WHERE passage_id IN ({marks})", ids))

    def sentence_vectors(self, passage_ids: Iterable[int]) -> dict[int, SentenceVectors]:
        """Rescoring vectors of passages by id (absent: none stored, or no rescorer)."""
        ids = [int(i) for i in passage_ids]
        if not ids or not self.manifest.get("rescorer"):
            return {}
        dim = int(self.manifest["rescorer"]["dim"])
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT passage_id, spans, vectors FROM sentences WHERE passage_id IN ({marks})", ids)
        if not rows:
            return {}
        # one conversion for all rows (a query reads ~200 candidates): then views per passage
        matrix = unpack_vector_rows(b"".join(r[2] for r in rows), dim)
        ends = np.cumsum([len(r[2]) // (2 * dim) for r in rows])
        return {
            pid: SentenceVectors(spans, matrix[end - n], matrix[end - n + 1 : end])
            for (pid, spans, _), end, n in zip(rows, ends, np.diff(ends, prepend=0), strict=True)
        }

    def all_passages(self) -> list[PassageRecord]:
        """Every passage of this generation, in id order."""
        rows = self._query(
            f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (doc_id) "
            f"WHERE {_visible('p', self.generation)} ORDER BY p.passage_id"
        )
        return [PassageRecord(*row[:8], json.loads(row[8])) for row in rows]

    def documents(self) -> dict[str, StoredDocument]:
        """The documents of this generation, by name."""
        with self._database() as conn:
            return _documents(conn, self.generation)

    def document(self, name: str) -> tuple[StoredDocument, str, list[PassageRecord]] | None:
        """One document of this generation by name: its facts, decoded text and passages in text order.

        None when no such document is visible; ``name`` is only ever compared
        with stored names, so no name can reach the file system.
        """
        rows = self._query(
            f"SELECT d.doc_id, d.name, d.title, d.source, d.sha256, d.size, d.mtime_ns, d.meta, d.indexed_at, d.text "
            f"FROM documents d WHERE d.name = ? AND {_visible('d', self.generation)}",
            (name,),
        )
        if not rows:
            return None
        key, *facts, meta, indexed_at, text = rows[0]
        fields = json.loads(meta)  # the document's metadata, which each of its passages carries
        passages = [
            PassageRecord(*row[:8], fields)
            for row in self._query(
                f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d USING (doc_id) "
                f"WHERE p.doc_id = ? AND {_visible('p', self.generation)} ORDER BY p.start, p.passage_id",
                (key,),
            )
        ]
        return StoredDocument(*facts, fields, len(passages), indexed_at), text, passages

    def filtered_ids(self, filters: dict[str, object]) -> np.ndarray:
        """Sorted ids of the passages whose document matches every filter.

        ``doc`` matches the document name (a string or a list of names),
        ``title`` the title; any other key matches that metadata field.
        """
        clauses, params = [_visible("p", self.generation)], []
        for key, wanted in filters.items():
            values = list(wanted) if isinstance(wanted, (list, tuple, set)) else [wanted]
            column = {"doc": "d.name", "title": "d.title"}.get(key)
            if column is None:
                column = "json_extract(d.meta, ?)"
                params.append(f'$."{key}"')
            marks = ",".join("?" * len(values))
            clauses.append(f"CAST({column} AS TEXT) IN ({marks})")
            params.extend(str(v) for v in values)
        rows = self._query(
            "SELECT p.passage_id FROM passages p JOIN documents d USING (doc_id) WHERE "
            + " AND ".join(clauses)
            + " ORDER BY p.passage_id",
            params,
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    def check(self) -> list[str]:
        """Problems found when SQLite, FAISS and BM25 are compared (empty: healthy)."""
        problems = []
        with self._database() as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            stored = np.array(
                [r[0] for r in conn.execute(
                    f"SELECT passage_id FROM passages p WHERE {_visible('p', self.generation)} ORDER BY passage_id"
                )],
                dtype=np.int64,
            )
            counts = _counts(conn, self.generation)
        if integrity != "ok":
            problems.append(f"SQLite integrity check: {integrity}")
        if counts != self.manifest["counts"]:
            problems.append(f"manifest counts {self.manifest['counts']} but the database holds {counts}")
        for name, loader, ids_of in (
            ("FAISS", self.load_vectors, ann.ids_of),
            ("BM25", self.load_lexical, lambda lex: lex.row_ids),
        ):
            try:
                ids = ids_of(loader())
            except IndexFormatError as exc:
                problems.append(str(exc))
                continue
            if not np.array_equal(ids, stored):
                missing, extra = np.setdiff1d(stored, ids), np.setdiff1d(ids, stored)
                problems.append(f"{name} disagrees with the database: {len(missing)} passages missing, "
                                f"{len(extra)} unknown")
        return problems

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
