"""Which store holds an index: the embedded directory (default) or Milvus.

The choice is made once, when an index is created (``MilvusTarget`` given or
not), and recorded in the index directory's ``manifest.json``; from then on
every command and :meth:`search.Searcher.open` find it there, so only the
index path is needed.  This module is the one place that dispatches on it for
the indexer, the CLI and ``souyi migrate``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import milvus_store
from .errors import IndexFormatError
from .manage import check_index as check_embedded
from .manage import list_documents as list_embedded
from .store import DocumentRecord, IndexReader, IndexWriter, NewPassage, StoredDocument, swap_in

BACKENDS = ("embedded", "milvus")


@dataclass(frozen=True)
class MilvusTarget:
    """Where a new Milvus-backed index goes: a milvus-lite file (``x.db``) or a server URL, and a collection name."""

    uri: str
    collection: str = "souyi"

    def manifest(self) -> dict:
        """The part of a new index's manifest that selects Milvus."""
        return {"milvus": {"uri": self.uri, "collection": self.collection}}


def backend_of(path: str | os.PathLike[str]) -> str:
    """``milvus`` or ``embedded``: which store the index at ``path`` uses."""
    return "milvus" if milvus_store.is_milvus_index(path) else "embedded"


def open_writer(
    path: str | os.PathLike[str],
    *,
    create: dict | None = None,
    userdict: Path | None = None,
    lock_timeout: float = 10.0,
) -> IndexWriter | milvus_store.MilvusWriter:
    """The writer of the index at ``path``; a new index is a Milvus one when ``create`` has a ``milvus`` part."""
    exists = (Path(path) / "manifest.json").is_file()
    if (not exists and create is not None and create.get("milvus")) or (exists and backend_of(path) == "milvus"):
        return milvus_store.MilvusWriter(path, create=create, userdict=userdict, lock_timeout=lock_timeout)
    return IndexWriter(path, create=create, userdict=userdict, lock_timeout=lock_timeout)


def replace_index(staging: Path, target: Path) -> None:
    """Swap the complete index at ``staging`` in for ``target``; a replaced Milvus index's collections are dropped."""
    old = milvus_store.read_manifest(target) if backend_of(target) == "milvus" else None
    swap_in(staging, target)
    if old is not None:
        milvus_store.drop_collections(old)


def drop_index(path: str | os.PathLike[str]) -> None:
    """Drop what an index keeps outside its directory (a Milvus index's collections)."""
    if backend_of(path) == "milvus":
        milvus_store.drop_collections(milvus_store.read_manifest(path))


def list_documents(path: str | os.PathLike[str]) -> list[StoredDocument]:
    """The documents of the committed index at ``path``, by name, whatever its store."""
    if backend_of(path) == "embedded":
        return list_embedded(path)
    index = milvus_store.MilvusIndex(Path(path), milvus_store.read_manifest(path))
    try:
        return list(index.documents_at(index.state()).values())
    finally:
        index.close()


def check_index(path: str | os.PathLike[str], repair: bool = False, lock_timeout: float = 10.0) -> list[str]:
    """Problems found in the index at ``path`` (empty: healthy); see :func:`indexer.manage.check_index`.

    For Milvus: the committed counts must match the rows the collections
    hold, and each document's passage count its passages; ``repair``
    recounts the term statistics.
    """
    if backend_of(path) == "embedded":
        return check_embedded(path, repair=repair, lock_timeout=lock_timeout)
    if repair:
        with milvus_store.MilvusWriter(path, lock_timeout=lock_timeout) as writer:
            writer.repair()
    index = milvus_store.MilvusIndex(Path(path), milvus_store.read_manifest(path))
    try:
        return _check_milvus(index)
    finally:
        index.close()


def _check_milvus(index: milvus_store.MilvusIndex) -> list[str]:
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

    Vectors come from the source's vector index, terms from its BM25
    postings (their order is lost, which BM25 does not use); documents keep
    their names, titles, hashes and metadata.  Returns (documents, passages).
    """
    if backend_of(source) != "embedded":
        raise IndexFormatError(f"{source} is not an embedded index")
    if (Path(target) / "manifest.json").exists():
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


def stage_reader(reader: IndexReader, writer: IndexWriter | milvus_store.MilvusWriter) -> None:
    """Stage every document of ``reader``'s generation into ``writer`` with its stored vectors and terms."""
    records = reader.all_passages()
    ids = np.array([r.passage_id for r in records], dtype=np.int64)
    vectors = reader.load_vectors().reconstruct_batch(ids) if len(ids) else np.zeros((0, reader.dim), np.float32)
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
