"""The embedded store's on-disk format (FAISS + BM25 + SQLite).  The only code that opens its data files.

What every index directory has, whatever its store (the manifest file, the
writer lock, atomic replacement, swapping a rebuild in), is in
:mod:`indexer.index_dir`; the records it reads and writes in :mod:`indexer.records`.

An index is one directory::

    manifest.json             the commit point: format version, model id and
                              dimension, analyzer, BM25 settings, generation,
                              counts and the segments of that generation
    passages.sqlite3          documents and passages (text, offsets, metadata,
                              vectors and terms), each row stamped with the
                              generation that added it and the one that deleted it
    segments/<name>/          one immutable segment: the FAISS index and BM25
                              arrays of an increasing range of passage ids, and
                              the cumulative deletions later batches recorded
                              against it (:mod:`indexer.segment_files`)
    userdict.txt              the jieba user dictionary, if the index has one
    writer.lock               held by the one process that may write

Every write is a **batch**: it inserts its rows stamped ``gen + 1``, writes
one new segment of its added passages and a deletion file for each segment
that lost passages, and becomes visible only when the new ``manifest.json``
is renamed into place: its cost follows the batch, not the index.  A crash
before that rename leaves the old generation in force; the next writer rolls
the stamped rows back and removes the files no manifest names.  After a
commit the writer merges adjacent segments when :mod:`indexer.merge_policy`
asks, each merge a batch of its own.  Readers never take a lock: SQLite runs
in WAL mode, a reader reads the rows its generation can see, and the
segments of the generation it opened.  Deleted rows, and files a newer
manifest no longer names, are kept :data:`KEEP_GENERATIONS` generations so
that readers still on an older generation can fetch them.

An index of format 2 (one ``vectors-<gen>.faiss`` and ``lexical-<gen>.npz``
per generation) still opens for reading, as one segment; the first writer
converts it to format 3 (docs/index-format.md).
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from . import ann, merge_policy
from .bm25 import BM25Index
from .bm25_segments import average_length, segment_arrays
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
from .segment_files import (
    SEGMENTS,
    SegmentData,
    SegmentDeletions,
    format2_entry,
    load_format2_segment,
    load_segment_folder,
    read_deletions,
    read_faiss,
    read_lexical_npz,
    read_segment_vectors,
    remove_quietly,
    write_deletions,
    write_segment,
)
from .segment_merge import merge_postings

logger = logging.getLogger(__name__)

FORMAT_NAME = "souyi-index"
FORMAT_VERSION = 3
#: Older formats this version still opens (read-only until a writer converts them).
READABLE_VERSIONS = (2, FORMAT_VERSION)
DATABASE = "passages.sqlite3"
#: Deleted rows, and files no manifest names any more, are removed once this many newer generations exist.
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
#: Indexes over the deleted rows only, so that purging them after each batch reads those rows, not the table.
_PURGE_SCHEMA = """
CREATE INDEX IF NOT EXISTS passages_deleted ON passages(deleted_gen) WHERE deleted_gen IS NOT NULL;
CREATE INDEX IF NOT EXISTS documents_deleted ON documents(deleted_gen) WHERE deleted_gen IS NOT NULL;
"""
_TERM_SEP = "\x1f"
#: Rows read at a time when a vector index is rebuilt from SQLite.
_REBUILD_CHUNK = 10_000
#: Ids bound into one SQL statement (SQLite's default limit on variables is far above it).
_SQL_BATCH = 900
_PASSAGE_COLUMNS = (
    "p.passage_id, d.name, d.title, p.paragraph, p.start, p.end, p.heading, p.text, d.meta"
)


def _segment_name(gen: int, part: int = 0) -> str:
    """Name of a segment written by the batch of generation ``gen`` (``part``: a repair may write several)."""
    return f"s{gen:06d}" if part == 0 else f"s{gen:06d}-{part}"


def _read_manifest(path: Path) -> dict:
    manifest = load_manifest(path)
    if manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not a souyi index (foreign manifest); {build_hint(path)}")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise IndexFormatError(
            f"{path} has index format {manifest.get('format_version')}, this souyi reads "
            f"formats {', '.join(map(str, READABLE_VERSIONS))}; rebuild it: {build_hint(path)}"
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
    also rolls back the rows of a batch that crashed before its commit, and
    converts an index of format 2 to format 3.  With ``merge`` (the default)
    every commit is followed by the merges :mod:`indexer.merge_policy` asks for.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: dict | None = None,
        userdict: Path | None = None,
        lock_timeout: float = LOCK_TIMEOUT,
        merge: bool = True,
    ) -> None:
        """Open the index at ``path`` for writing; ``create`` (the model/analyzer part of a
        manifest) makes a new one, with ``userdict`` copied in as its jieba user dictionary."""
        self.path = Path(path)
        self.merge = merge
        if create is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            if any(p.name not in (LOCK,) for p in self.path.iterdir()) and not index_exists(self.path):
                raise IndexFormatError(f"{self.path} exists and is not a souyi index; refusing to write into it")
        else:
            load_manifest(self.path)  # no index there: IndexNotFound, before a lock file is made
        self._take_lock(lock_timeout)
        try:
            if create is not None and not index_exists(self.path):
                if userdict is not None:
                    write_file(self.path / USERDICT, lambda p: shutil.copyfile(userdict, p))
                self._conn = _connect(self.path, readonly=False)
                self._conn.executescript(_SCHEMA + _RESCORE_SCHEMA + _PURGE_SCHEMA)
                self.manifest = dict(create, format=FORMAT_NAME)
                self._write_manifest(0, [], length=0, documents=0, passages=0)
            else:
                self.manifest = _read_manifest(self.path)
                self._conn = _connect(self.path, readonly=False)
                self._recover()
                if self.manifest["format_version"] != FORMAT_VERSION:
                    self._upgrade()
        except BaseException:
            self.close()
            raise
        self._clear_batch()

    @property
    def generation(self) -> int:
        return int(self.manifest["generation"])

    @property
    def segments(self) -> list[dict]:
        """The manifest entries of the committed generation's segments, ordered by passage id."""
        return list(self.manifest["segments"])

    def documents(self) -> dict[str, StoredDocument]:
        """The documents of the committed generation, by name."""
        return _documents(self._conn, self.generation)

    def commit(self) -> int:
        """Make the staged batch visible, all of it or (after a crash) none; returns the generation in force."""
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
            documents_gone = 0
            for name in names:
                self._conn.execute(
                    f"UPDATE passages SET deleted_gen = ? WHERE deleted_gen IS NULL AND doc_id IN "
                    f"(SELECT doc_id FROM documents d WHERE name = ? AND {_visible('d', gen)})",
                    (new, name),
                )
                documents_gone += self._conn.execute(
                    f"UPDATE documents SET deleted_gen = ? WHERE name = ? AND {_visible('documents', gen)}",
                    (new, name),
                ).rowcount
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
        try:
            gone_ids = np.array(sorted(gone), dtype=np.int64)
            gone_terms = _terms_of(self._conn, gone_ids)
            length = self._length() + sum(map(len, added_terms)) - sum(map(len, gone_terms))
            before = self.manifest["counts"]  # updated by the batch's own changes: no count over the whole index
            counts = {"documents": before["documents"] - documents_gone + len(self._added),
                      "passages": before["passages"] - len(gone_ids) + len(added_ids)}
            entries = self._record_deletions(new, gone_ids, gone_terms)
            if added_ids:
                ids = np.array(added_ids, np.int64)
                entries.append(self._write_segment(_segment_name(new), ids, np.stack(added_vectors),
                                                   self._postings(ids, added_terms),
                                                   average_length(length, counts["passages"]), counts["passages"]))
            self._write_manifest(new, entries, length=length, **counts)  # the commit point
        except BaseException:
            self._recover()  # a failed batch's rows (stamped new) must not show up in the next batch's generation
            raise
        finally:
            self._clear_batch()
        self._cleanup()
        if self.merge:
            self.merge_by_policy()
        return self.generation

    def merge_by_policy(self) -> int:
        """Run the merges :func:`indexer.merge_policy.next_merge` asks for, each a batch; returns how many ran."""
        merges = 0
        while (run := merge_policy.next_merge(self.manifest["segments"])) is not None:
            try:
                self._merge(run)
            except (IndexFormatError, OSError) as exc:
                # the batch before is committed: a failed merge must not make it look failed (a later
                # writer removes what the merge left)
                logger.warning("merge skipped: %s", exc)
                break
            merges += 1
        return merges

    def optimize(self, max_segments: int = 1, progress: Callable[[int, int], None] | None = None) -> int:
        """Merge adjacent segments until at most ``max_segments`` remain (one merge batch), then rewrite each
        segment that still holds deleted passages without them (a batch each); returns the generation.

        ``progress(done, total)`` is told the passages read for each merge.
        """
        while (run := merge_policy.optimize_run(self.manifest["segments"], max_segments)) is not None:
            self._merge(run, progress)
        return self.generation

    def repair(self) -> None:
        """Rewrite every damaged segment from the vectors and terms in SQLite, as one batch.

        A segment whose files are lost, unreadable, or disagree with the
        live rows of its id range is replaced by a new segment of those rows
        (without re-reading or re-embedding any document); the manifest's
        counts and total length are recounted from SQLite.
        """
        gen, new = self.generation, self.generation + 1
        live = _live_ids(self._conn, gen)
        counts, length = _counts(self._conn, gen), _stored_length(self._conn, gen)
        avgdl_ref = average_length(length, counts["passages"])
        entries, repaired = [], 0
        for entry in self.manifest["segments"]:
            if not segment_problems(self.path, entry, self._dim(), _in_range(live, entry)):
                entries.append(entry)
                continue
            logger.warning("rebuilding segment %s of %s from stored vectors and terms", entry["name"], self.path)
            repaired += 1
            name = _segment_name(new, repaired)
            entries.extend(self._segment_from_rows(name, entry["first_id"], entry["last_id"], avgdl_ref))
        if repaired or counts != self.manifest["counts"] or length != self._length():
            self._write_manifest(new, entries, length=length, **counts)
            self._cleanup()

    def _merge(self, run: range, progress: Callable[[int, int], None] | None = None) -> None:
        """Replace the adjacent segments ``run`` by one segment of their live passages, as a batch of its own.

        The postings are joined from the segments' own arrays
        (:mod:`indexer.segment_merge`), the vectors read from SQLite (exact,
        where an IVF segment keeps them quantized); both must name the same
        passages, else the segments are damaged and nothing is merged.
        """
        entries = self.segments
        new = self.generation + 1
        first, last = entries[run.start]["first_id"], entries[run.stop - 1]["last_id"]
        logger.info("merging %d segments (passages %d..%d) of %s", len(run), first, last, self.path)
        loaded = [load_segment_folder(self.path, entries[i], self._dim()) for i in run]
        lexical = merge_postings([(s.lexical, s.deleted_ids) for s in loaded], **self.manifest.get("bm25", {}))
        ids, vectors, _ = _stored_rows(self._conn, self.generation, self._dim(), first, last, progress,
                                       with_terms=False)
        if not np.array_equal(ids, lexical.row_ids):
            raise IndexFormatError(f"segments {', '.join(s.name for s in loaded)} of {self.path} disagree with "
                                   "the database; repair them with: souyi check --repair")
        merged = [self._write_segment(_segment_name(new), ids, vectors, lexical, self._avgdl())] if len(ids) else []
        entries[run.start : run.stop] = merged
        self._write_manifest(new, entries, length=self._length(), **self.manifest["counts"])
        self._cleanup()

    def _upgrade(self) -> None:
        """Convert a format-2 index to format 3 in one batch: one segment of every live passage.

        The postings come from the generation's BM25 file when it is sound
        (re-reading every term from SQLite holds a string per occurrence),
        else from SQLite; the vectors from SQLite.
        """
        logger.info("converting %s from index format %s to %d", self.path, self.manifest["format_version"],
                    FORMAT_VERSION)
        new = self.generation + 1
        length = _stored_length(self._conn, self.generation)
        avgdl_ref = average_length(length, int(self.manifest["counts"]["passages"]))
        ids, vectors, _ = _stored_rows(self._conn, self.generation, self._dim(), 0, _MAX_ID, with_terms=False)
        try:
            lexical = read_lexical_npz(self.path / self.manifest["files"]["lexical"])
        except IndexFormatError as exc:
            logger.warning("%s; its postings are rebuilt from the database", exc)
            lexical = None
        if lexical is not None and np.array_equal(lexical.row_ids, ids):
            entries = [self._write_segment(_segment_name(new), ids, vectors, lexical, avgdl_ref)] if len(ids) else []
        else:
            entries = self._segment_from_rows(_segment_name(new), 0, _MAX_ID, avgdl_ref)
        self._write_manifest(new, entries, length=length, **self.manifest["counts"])
        self._cleanup()

    def _segment_from_rows(self, name: str, first: int, last: int, avgdl_ref: float,
                           progress: Callable[[int, int], None] | None = None) -> list[dict]:
        """A new segment of the live passages with ids in ``first..last`` as SQLite keeps them (none: no such rows)."""
        ids, vectors, terms = _stored_rows(self._conn, self.generation, self._dim(), first, last, progress)
        if not len(ids):
            return []
        return [self._write_segment(name, ids, vectors, self._postings(ids, terms), avgdl_ref)]

    def _postings(self, ids: np.ndarray, terms: list[list[str]]) -> BM25Index:
        """BM25 postings of passages ``ids`` (ascending) holding analyzer ``terms``, with the index's settings."""
        return BM25Index.build(terms, ids.tolist(), **self.manifest.get("bm25", {}))

    def _write_segment(self, name: str, ids: np.ndarray, vectors: np.ndarray, lexical: BM25Index,
                       avgdl_ref: float, total: int | None = None) -> dict:
        """Write one segment of these passages (``lexical``: their postings) into an index of ``total`` live
        passages (default: as committed); returns its manifest entry."""
        total = int(self.manifest["counts"]["passages"]) if total is None else total
        index = ann.build(vectors, ids, self._dim(), self._ann(), total=total,
                          trained=self._shared_training(len(ids), total))
        write_segment(self.path, name, index, segment_arrays(lexical, avgdl_ref))
        return {"name": name, "passages": len(ids), "first_id": int(ids[0]), "last_id": int(ids[-1]),
                "deleted": None, "deleted_passages": 0, "ann": ann.describe(index, self._ann())}

    def _shared_training(self, n: int, total: int) -> faiss.Index | None:
        """The IVF index whose training a new IVF segment of ``n`` of ``total`` live passages shares (None: it
        trains its own).

        Segments trained alike are searched as one index (:func:`indexer.ann.search_alike`):
        at many segments, fewer vectors scanned for a better recall than each
        segment probing its own lists (docs/performance.md, "Segments").  A
        segment takes the training of the largest committed IVF segment whose
        lists suit ``total`` passages (:func:`indexer.ann.lists_fit`), unless it
        holds half the index or more: then it trains afresh, so that the
        centroids follow the bulk of the passages as the index grows and merges.
        """
        if ann.plan(n, self._ann()) != "ivf" or 2 * n >= total:
            return None
        fitting = [e for e in self.manifest.get("segments", [])
                   if e["ann"]["kind"] == "ivf" and ann.lists_fit(int(e["ann"]["nlist"]), total)]
        if not fitting:
            return None
        chosen = max(fitting, key=lambda e: (merge_policy.live(e), e["name"]))
        try:
            return read_segment_vectors(self.path, chosen["name"], self._dim())
        except IndexFormatError as exc:  # a damaged segment (repair may be replacing it) lends no training
            logger.warning("%s; the new segment trains its own IVF index", exc)
            return None

    def _record_deletions(self, gen: int, gone: np.ndarray, gone_terms: list[list[str]]) -> list[dict]:
        """The segment entries after deleting ``gone``: a new cumulative deletion file for each segment that
        lost passages, and no entry for one that lost them all."""
        entries = []
        for entry in self.manifest["segments"]:
            rows = np.flatnonzero((gone >= entry["first_id"]) & (gone <= entry["last_id"]))
            if not len(rows):
                entries.append(entry)
                continue
            deletions = read_deletions(self.path, entry["deleted"]).plus(gone[rows], [gone_terms[r] for r in rows])
            if len(deletions.ids) < entry["passages"]:
                relative = write_deletions(self.path, entry["name"], gen, deletions)
                entries.append(dict(entry, deleted=relative, deleted_passages=len(deletions.ids)))
        return entries

    def _dim(self) -> int:
        return int(self.manifest["model"]["dim"])

    def _ann(self) -> str:
        """The index kind asked for when the index was created (``auto``: chosen by size)."""
        return str(self.manifest.get("ann", {}).get("requested", "auto"))

    def _length(self) -> int:
        """Summed term count of the committed generation's live passages (BM25's total length)."""
        return int(self.manifest["lexical_length"])

    def _avgdl(self) -> float:
        """The committed generation's average passage length: the ``avgdl_ref`` of a segment written now."""
        return average_length(self._length(), int(self.manifest["counts"]["passages"]))

    def _write_manifest(self, gen: int, entries: list[dict], *, length: int, documents: int, passages: int) -> None:
        """Commit generation ``gen`` made of the segments ``entries``: the atomic manifest rename.

        Files the previous manifest named and this one does not are listed as
        ``retired`` with the last generation that named them, so that
        :meth:`_cleanup` keeps them for readers of the generations before.
        """
        previous = _current_files(self.manifest)
        manifest = dict(self.manifest, format_version=FORMAT_VERSION, generation=gen, committed_at=time.time(),
                        ann={"requested": self._ann()}, segments=entries, lexical_length=int(length))
        manifest.pop("files", None)  # format 2's, when this commit converts it
        manifest["counts"] = {"documents": documents, "passages": passages}
        manifest["merge"] = {"policy": "tiered", "segments_per_tier": merge_policy.SEGMENTS_PER_TIER}
        kept = [r for r in self.manifest.get("retired", []) if gen - r["last_named"] < KEEP_GENERATIONS]
        manifest["retired"] = kept + [
            {"path": path, "last_named": gen - 1} for path in sorted(previous - _current_files(manifest))
        ]
        write_manifest(self.path, manifest)
        self.manifest = manifest

    def _recover(self) -> None:
        """Undo the rows of a batch that did not reach its commit point."""
        gen = self.generation
        self._conn.executescript(_RESCORE_SCHEMA + _PURGE_SCHEMA)  # indexes made before these existed
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
        self._cleanup()

    def _cleanup(self) -> None:
        """Remove the files no manifest of the last generations names, and long-deleted rows.

        What the committed manifest names (its segments, their deletion files,
        and the files it lists as retired) stays; anything else of the index's
        own kinds is left over from an unfinished batch or retired long enough.
        """
        gen = self.generation
        keep = _named_files(self.manifest)
        for file in self.path.iterdir():
            own = file.name.startswith(("vectors-", "lexical-", ".tmp-"))
            if own and file.name not in keep:
                remove_quietly(file)
        segments = self.path / SEGMENTS
        if segments.is_dir():
            for folder in segments.iterdir():
                relative = f"{SEGMENTS}/{folder.name}"
                if relative not in keep:
                    remove_quietly(folder)
                    continue
                for file in folder.glob("*.npz"):
                    if f"{relative}/{file.name}" not in keep:
                        remove_quietly(file)
                for file in folder.glob(".tmp-*"):
                    remove_quietly(file)
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


#: Above any passage id: the upper end of "every passage".
_MAX_ID = 2**62


def _named_files(manifest: dict) -> set[str]:
    """The paths (relative to the index) of the files and segment folders a manifest names, retired ones included."""
    return _current_files(manifest) | {r["path"] for r in manifest.get("retired", [])}


def _current_files(manifest: dict) -> set[str]:
    """The paths of the files and segment folders that make up a manifest's generation."""
    if manifest.get("format_version") == 2:
        return set(manifest["files"].values())
    named = set()
    for entry in manifest.get("segments", []):
        named.add(f"{SEGMENTS}/{entry['name']}")
        if entry.get("deleted"):
            named.add(f"{SEGMENTS}/{entry['deleted']}")
    return named


def _in_range(ids: np.ndarray, entry: dict) -> np.ndarray:
    """The ids (sorted) inside a segment entry's id range."""
    lo = np.searchsorted(ids, entry["first_id"], side="left")
    return ids[lo : np.searchsorted(ids, entry["last_id"], side="right")]


def segment_problems(root: Path, entry: dict, dim: int, live: np.ndarray) -> list[str]:
    """What is wrong with one format-3 segment, given the live passage ids SQLite holds in its range."""
    try:
        segment = load_segment_folder(root, entry, dim)
    except IndexFormatError as exc:
        return [str(exc)]
    problems = []
    lexical = np.asarray(segment.lexical["row_ids"])
    for what, ids in (("FAISS", ann.ids_of(segment.vectors)), ("BM25", lexical)):
        kept = np.setdiff1d(ids, segment.deleted_ids)
        if not np.array_equal(kept, live):
            missing, extra = np.setdiff1d(live, kept), np.setdiff1d(kept, live)
            problems.append(f"segment {entry['name']}: {what} disagrees with the database: "
                            f"{len(missing)} passages missing, {len(extra)} unknown")
    if len(np.setdiff1d(segment.deleted_ids, lexical)):
        problems.append(f"segment {entry['name']}: its deletions name passages it does not hold")
    return problems


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
    return BM25Index.build([_split_terms(r[1]) for r in rows], [r[0] for r in rows], **bm25)


def rebuild_vectors(conn: sqlite3.Connection, gen: int, dim: int, requested: str = "auto") -> faiss.Index:
    """FAISS index of generation ``gen`` from the vectors stored with the passages."""
    ids, vectors = stored_vectors(conn, gen, dim)
    return ann.build(vectors, ids, dim, requested)


def stored_vectors(conn: sqlite3.Connection, gen: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Passage ids (ascending) and their float32 vectors as stored in SQLite for generation ``gen``."""
    ids, vectors, _ = _stored_rows(conn, gen, dim, 0, _MAX_ID, with_terms=False)
    return ids, vectors


def _stored_rows(
    conn: sqlite3.Connection, gen: int, dim: int, first: int, last: int,
    progress: Callable[[int, int], None] | None = None, with_terms: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Ids (ascending), float32 vectors and (``with_terms``) analyzer terms of generation ``gen``'s live
    passages with ids in ``first..last``, as SQLite keeps them.

    Rows are read in chunks into one array, so a million passages cost
    1.5 GB once rather than a Python object per row on top; ``progress(done,
    total)`` is told after each chunk.
    """
    where = f"FROM passages p WHERE {_visible('p', gen)} AND passage_id BETWEEN ? AND ?"
    n = conn.execute(f"SELECT COUNT(*) {where}", (first, last)).fetchone()[0]
    vectors = np.empty((n, dim), dtype=np.float32)
    ids = np.empty(n, dtype=np.int64)
    terms: list[list[str]] = []
    columns = "passage_id, vector, terms" if with_terms else "passage_id, vector"
    cursor = conn.execute(f"SELECT {columns} {where} ORDER BY passage_id", (first, last))
    done = 0
    while rows := cursor.fetchmany(_REBUILD_CHUNK):
        ids[done : done + len(rows)] = [r[0] for r in rows]
        vectors[done : done + len(rows)] = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(-1, dim)
        if with_terms:
            terms.extend(_split_terms(r[2]) for r in rows)
        done += len(rows)
        if progress is not None:
            progress(done, n)
    return ids[:done], vectors[:done], terms


def _split_terms(joined: str) -> list[str]:
    return joined.split(_TERM_SEP) if joined else []


def _terms_of(conn: sqlite3.Connection, ids: np.ndarray) -> list[list[str]]:
    """The stored analyzer terms of passages ``ids`` (sorted), in the same order."""
    found: dict[int, list[str]] = {}
    for start in range(0, len(ids), _SQL_BATCH):
        chunk = ids[start : start + _SQL_BATCH].tolist()
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT passage_id, terms FROM passages WHERE passage_id IN ({marks})", chunk)
        found.update((r[0], _split_terms(r[1])) for r in rows)
    return [found[int(i)] for i in ids]


def _live_ids(conn: sqlite3.Connection, gen: int) -> np.ndarray:
    """Sorted ids of generation ``gen``'s live passages."""
    rows = conn.execute(f"SELECT passage_id FROM passages p WHERE {_visible('p', gen)} ORDER BY passage_id")
    return np.array([r[0] for r in rows], dtype=np.int64)


def _stored_length(conn: sqlite3.Connection, gen: int) -> int:
    """Summed term count of generation ``gen``'s live passages (terms are joined by one separator each)."""
    return int(conn.execute(
        f"SELECT COALESCE(SUM(CASE WHEN terms = '' THEN 0 ELSE length(terms) - length(replace(terms, ?, '')) + 1 END),"
        f" 0) FROM passages p WHERE {_visible('p', gen)}",
        (_TERM_SEP,),
    ).fetchone()[0])


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

    @property
    def format_version(self) -> int:
        return int(self.manifest["format_version"])

    def load_vectors(self) -> faiss.Index:
        """The whole generation's passages in one FAISS index (for tools and benchmarks, not for serving).

        Format 2 keeps it as one file; format 3 builds it from the vectors
        SQLite keeps, since its segments are separate indexes.
        """
        if self.format_version == 2:
            return read_faiss(self.path / self.manifest["files"]["vectors"], self.dim)
        with self._database() as conn:
            return rebuild_vectors(conn, self.generation, self.dim, self.manifest["ann"]["requested"])

    def load_lexical(self) -> BM25Index:
        """The whole generation's BM25 postings in one index (format 3: built from the terms SQLite keeps)."""
        if self.format_version == 2:
            return read_lexical_npz(self.path / self.manifest["files"]["lexical"])
        with self._database() as conn:
            return rebuild_lexical(conn, self.generation, self.manifest.get("bm25", {}))

    def segment_entries(self) -> list[dict]:
        """The manifest entries of this generation's segments, ordered by passage id.

        An entry's ``name`` identifies the segment's immutable files, so a
        searcher may keep a loaded segment across generations by name.
        """
        if self.format_version == 2:
            return [format2_entry(self.manifest)]
        return list(self.manifest["segments"])

    def load_segment(self, entry: dict) -> SegmentData:
        """Load the segment of ``entry`` (one of :meth:`segment_entries`) with its deletions in this generation.

        Format 3: the lexical arrays and the FAISS index are memory-mapped.
        """
        if self.format_version == 2:
            return load_format2_segment(self.path, entry, self.dim)
        return load_segment_folder(self.path, entry, self.dim)

    def load_deletions(self, entry: dict) -> SegmentDeletions:
        """The deletions of ``entry``'s segment in this generation (to update a cached segment cheaply)."""
        return read_deletions(self.path, entry.get("deleted"))

    def segments(self) -> list[SegmentData]:
        """Every segment of this generation, loaded."""
        return [self.load_segment(entry) for entry in self.segment_entries()]

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
        """Problems found when SQLite and every segment's FAISS and BM25 files are compared (empty: healthy)."""
        problems = []
        with self._database() as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            stored = _live_ids(conn, self.generation)
            counts = _counts(conn, self.generation)
            length = _stored_length(conn, self.generation) if self.format_version != 2 else None
        if integrity != "ok":
            problems.append(f"SQLite integrity check: {integrity}")
        if counts != self.manifest["counts"]:
            problems.append(f"manifest counts {self.manifest['counts']} but the database holds {counts}")
        if self.format_version == 2:
            return problems + self._check_format2(stored)
        if length != self.manifest["lexical_length"]:
            problems.append(f"manifest total length {self.manifest['lexical_length']} but the database holds {length}")
        covered = 0
        for entry in self.segment_entries():
            live = _in_range(stored, entry)
            covered += len(live)
            problems.extend(segment_problems(self.path, entry, self.dim, live))
        if covered != len(stored):
            problems.append(f"{len(stored) - covered} live passages lie outside every segment")
        return problems

    def _check_format2(self, stored: np.ndarray) -> list[str]:
        problems = []
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
