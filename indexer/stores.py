"""Which store holds an index (the embedded directory, the default, or Milvus), and what works on either.

The choice is made once, when an index is created (``MilvusTarget`` given or
not), and recorded in the index directory's manifest; from then on every
command and :meth:`search.Searcher.open` find it there, so only the index
path is needed.  This module is the one place that dispatches on it for the
indexer, the CLI and ``souyi migrate``: opening a :class:`Writer`, listing,
checking and repairing, replacing and dropping an index.
"""

from __future__ import annotations

import os
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from . import merge_policy, milvus_store
from .errors import IndexFormatError
from .index_dir import LOCK_TIMEOUT, index_exists, swap_in
from .records import DocumentRecord, NewPassage, StoredDocument
from .store import DATABASE, IndexReader, IndexWriter

STORES = ("embedded", "milvus")

#: The way out when the database is damaged: it holds the only copy of the passages, vectors and terms.
REBUILD_HINT = (
    "the database itself is damaged and cannot be repaired from the index: rebuild it from the source "
    "documents with: souyi index SOURCES... --index {path}"
)


@runtime_checkable
class Writer(Protocol):
    """The one writer of an index, whichever store holds it: stage a batch, then commit it whole.

    Opening one takes the index's writer lock (:class:`~indexer.errors.IndexBusy`
    after a timeout) and undoes a batch that crashed before its commit.
    """

    path: Path
    manifest: dict  # configuration, plus ``generation`` and ``counts`` of the committed state

    @property
    def generation(self) -> int:
        """The committed generation."""

    def documents(self) -> dict[str, StoredDocument]:
        """The documents of the committed generation, by name."""

    def check_model(self, model_id: str, dim: int) -> None:
        """Raise :class:`~indexer.errors.ModelMismatch` unless this model built the index."""

    def userdict(self) -> Path | None:
        """The index's jieba user dictionary, if it has one."""

    def add(self, doc: DocumentRecord, passages: list[NewPassage], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Stage a document (replacing any document of the same name)."""

    def remove(self, name: str) -> None:
        """Stage the removal of the document called ``name``."""

    def commit(self) -> int:
        """Make the staged batch visible, all of it or (after a crash) none; returns the generation."""

    def repair(self) -> None:
        """Rewrite what can be derived again from what the store keeps (``souyi check --repair``)."""

    def close(self) -> None:
        """Release the lock and the store (uncommitted staging is dropped)."""

    def __enter__(self) -> Writer: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class MilvusTarget:
    """Where a new Milvus-backed index goes: a milvus-lite file (``x.db``) or a server URL, and a collection name."""

    uri: str
    collection: str = "souyi"

    def manifest(self) -> dict:
        """The part of a new index's manifest that selects Milvus."""
        return {"milvus": {"uri": self.uri, "collection": self.collection}}


def store_of(path: str | os.PathLike[str]) -> str:
    """``milvus`` or ``embedded``: which store the index at ``path`` uses."""
    return "milvus" if milvus_store.is_milvus_index(path) else "embedded"


def open_writer(
    path: str | os.PathLike[str],
    *,
    create: dict | None = None,
    userdict: Path | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    merge: bool = True,
) -> Writer:
    """The writer of the index at ``path``; a new index is a Milvus one when ``create`` has a ``milvus`` part.

    ``merge`` (embedded store): merge segments after each commit when the policy asks (Milvus compacts its own).
    """
    exists = index_exists(path)
    if (not exists and create is not None and create.get("milvus")) or (exists and store_of(path) == "milvus"):
        return milvus_store.MilvusWriter(path, create=create, userdict=userdict, lock_timeout=lock_timeout)
    return IndexWriter(path, create=create, userdict=userdict, lock_timeout=lock_timeout, merge=merge)


@dataclass(frozen=True)
class OptimizeReport:
    """What ``souyi optimize`` did: segment counts before and after, and the generation in force."""

    segments_before: int
    segments_after: int
    generation: int
    dropped: int = 0  # deleted passages whose room the rewrite freed


def optimize_index(
    path: str | os.PathLike[str], max_segments: int = 1, progress: Callable[[int, int], None] | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> OptimizeReport:
    """Merge the embedded index at ``path`` down to ``max_segments`` segments in one crash-safe batch.

    An index of format 2 is converted to format 3 first (opening its writer
    does), so this is also the one migration command.  ``progress(done,
    total)`` follows the passages read for the merge.  A Milvus index
    compacts its own segments: :class:`IndexFormatError`.
    """
    if store_of(path) == "milvus":
        raise IndexFormatError(f"{path} is a Milvus index; Milvus merges its own segments (nothing to optimize)")
    with IndexWriter(path, lock_timeout=lock_timeout, merge=False) as writer:
        before, deleted = len(writer.segments), sum(map(merge_policy.deleted, writer.segments))
        generation = writer.optimize(max_segments, progress)
        dropped = deleted - sum(map(merge_policy.deleted, writer.segments))
        return OptimizeReport(before, len(writer.segments), generation, dropped)


def replace_index(staging: Path, target: Path) -> None:
    """Swap the complete index at ``staging`` in for ``target``; a replaced Milvus index's collections are dropped."""
    old = milvus_store.read_manifest(target) if store_of(target) == "milvus" else None
    swap_in(staging, target)
    if old is not None:
        milvus_store.drop_collections(old)


def drop_index(path: str | os.PathLike[str]) -> None:
    """Drop what an index keeps outside its directory (a Milvus index's collections)."""
    if store_of(path) == "milvus":
        milvus_store.drop_collections(milvus_store.read_manifest(path))


def list_documents(path: str | os.PathLike[str]) -> list[StoredDocument]:
    """The documents of the committed index at ``path``, by name, whatever its store."""
    if store_of(path) == "embedded":
        reader = IndexReader.open(path)
        try:
            return list(reader.documents().values())
        finally:
            reader.close()
    index = milvus_store.MilvusIndex(Path(path), milvus_store.read_manifest(path))
    try:
        return list(index.documents_at(index.state()).values())
    finally:
        index.close()


def check_index(path: str | os.PathLike[str], repair: bool = False, lock_timeout: float = LOCK_TIMEOUT) -> list[str]:
    """Problems found in the index at ``path``, whatever its store; empty when healthy.

    Embedded: SQLite, FAISS and BM25 must agree on the passage set; with
    ``repair``, damaged FAISS/BM25 files are rewritten from what SQLite holds
    (no document is re-read or re-embedded) and the check runs again.  A
    damaged database cannot be repaired here: rebuild from the sources.

    Milvus: the committed counts must match the rows the collections hold,
    and each document's passage count its passages; ``repair`` recounts the
    term statistics first.
    """
    if store_of(path) == "milvus":
        if repair:
            with open_writer(path, lock_timeout=lock_timeout) as writer:
                writer.repair()
        return _check_milvus(path)
    problems = _check_embedded(path)
    if database_damaged(problems):
        return problems + [REBUILD_HINT.format(path=path)]
    if not problems or not repair:
        return problems
    with open_writer(path, lock_timeout=lock_timeout) as writer:
        writer.repair()
    return check_index(path)


def database_damaged(problems: list[str]) -> bool:
    """True when the problems include the database itself (``--repair`` cannot help then)."""
    return any(problem.startswith("SQLite") for problem in problems)


def _check_embedded(path: str | os.PathLike[str]) -> list[str]:
    try:
        reader = IndexReader.open(path)
    except IndexFormatError as exc:
        return [str(exc)]
    try:
        return reader.check()
    except IndexFormatError as exc:  # not a database at all, or damaged beyond an integrity report
        if not isinstance(exc.__cause__, sqlite3.DatabaseError):
            raise
        return [f"SQLite database {Path(path) / DATABASE} is unreadable ({exc.__cause__})"]
    finally:
        reader.close()


def _check_milvus(path: str | os.PathLike[str]) -> list[str]:
    index = milvus_store.MilvusIndex(Path(path), milvus_store.read_manifest(path))
    try:
        return _count_milvus(index)
    finally:
        index.close()


def _count_milvus(index: milvus_store.MilvusIndex) -> list[str]:
    state = index.state()
    passages: dict[str, int] = defaultdict(int)
    for row in index.scan(index.passages_name, milvus_store.visible(state), ["doc"]):
        passages[row["doc"]] += 1
    documents = index.documents_at(state)
    problems = []
    counted = {"documents": len(documents), "passages": sum(passages.values())}
    committed = {"documents": int(state["documents"]), "passages": int(state["passages"])}
    if counted != committed:
        problems.append(f"committed counts {committed} but Milvus holds {counted}")
    wrong = [name for name, doc in documents.items() if doc.passages != passages.get(name, 0)]
    orphans = sorted(set(passages) - set(documents))
    if wrong:
        problems.append(f"{len(wrong)} documents disagree with their passage count, e.g. {wrong[0]!r}")
    if orphans:
        problems.append(f"{len(orphans)} passages' documents are missing, e.g. {orphans[0]!r}")
    return problems


def migrate(source: str | os.PathLike[str], target: str | os.PathLike[str], milvus: MilvusTarget) -> tuple[int, int]:
    """Copy the embedded index at ``source`` into a new Milvus-backed index at ``target`` without re-embedding.

    Vectors are the source's stored (exact) vectors, terms from its BM25
    postings (their order is lost, which BM25 does not use); documents keep
    their names, titles, hashes and metadata.  Returns (documents, passages).
    """
    if store_of(source) != "embedded":
        raise IndexFormatError(f"{source} is not an embedded index")
    if index_exists(target):
        raise IndexFormatError(f"{target} already holds an index; choose a new directory")
    reader = IndexReader.open(source)
    try:
        create = {**settings_of(reader), **milvus.manifest()}
        with milvus_store.MilvusWriter(target, create=create, userdict=reader.userdict()) as writer:
            stage_reader(reader, writer)
            writer.commit()
            counts = writer.manifest["counts"]
    finally:
        reader.close()
    return counts["documents"], counts["passages"]


def settings_of(reader: IndexReader) -> dict:
    """The model, analyzer, BM25, passage, vector-index and rescorer settings of an index, to create a copy."""
    settings = {key: reader.manifest[key] for key in ("model", "analyzer", "bm25", "split")}
    settings["ann"] = {"requested": reader.manifest.get("ann", {}).get("requested", "auto")}
    if reader.manifest.get("rescorer"):
        settings["rescorer"] = reader.manifest["rescorer"]
    return settings


def stage_reader(reader: IndexReader, writer: Writer) -> None:
    """Stage every document of ``reader``'s generation into ``writer`` with its stored vectors and terms."""
    records = reader.all_passages()
    ids, vectors = reader.stored_vectors()  # the same passages in the same (id) order, exact vectors
    terms = _terms_by_id(reader)
    rescore = reader.sentence_vectors(ids.tolist())
    by_doc: dict[str, list[int]] = defaultdict(list)
    for row, record in enumerate(records):
        by_doc[record.doc_name].append(row)
    for name, doc in reader.documents().items():
        rows = by_doc.get(name, [])
        record = DocumentRecord(name, doc.title, doc.source, "", doc.sha256, "", doc.size, doc.mtime_ns, doc.meta)
        passages = [NewPassage(records[r].paragraph, records[r].start, records[r].end, records[r].heading,
                               records[r].text, rescore.get(records[r].passage_id)) for r in rows]
        writer.add(record, passages, vectors[rows], [terms.get(int(ids[r]), []) for r in rows])


def _terms_by_id(reader: IndexReader) -> dict[int, list[str]]:
    """Each passage's terms (as a multiset) from the BM25 postings of ``reader``'s generation."""
    bm25 = reader.load_lexical()
    words = list(bm25.terms)
    term_of = np.repeat(np.arange(len(words)), np.diff(bm25.offsets))
    row_ids = bm25.row_ids.tolist()
    out: dict[int, list[str]] = defaultdict(list)
    for term, row, tf in zip(term_of.tolist(), bm25.rows.tolist(), bm25.tfs.astype(np.int64).tolist(), strict=True):
        out[row_ids[row]].extend([words[term]] * tf)
    return out
