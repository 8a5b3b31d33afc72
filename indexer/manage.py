"""Look after an index: list its documents, check it, repair it."""

from __future__ import annotations

import os

from .errors import IndexFormatError
from .store import IndexReader, IndexWriter, StoredDocument


def list_documents(index_path: str | os.PathLike[str]) -> list[StoredDocument]:
    """The documents of the committed index, by name."""
    reader = IndexReader.open(index_path)
    try:
        return list(reader.documents().values())
    finally:
        reader.close()


def check_index(index_path: str | os.PathLike[str], repair: bool = False, lock_timeout: float = 10.0) -> list[str]:
    """Problems found (SQLite, FAISS and BM25 must agree on the passage set); empty when healthy.

    With ``repair``, damaged FAISS/BM25 files are rewritten from what SQLite
    holds (no document is re-read or re-embedded) and the check runs again.
    A damaged database cannot be repaired here: rebuild from the sources.
    """
    try:
        reader = IndexReader.open(index_path)
    except IndexFormatError as exc:
        return [str(exc)]
    try:
        problems = reader.check()
    finally:
        reader.close()
    if not problems or not repair:
        return problems
    if any(problem.startswith("SQLite") for problem in problems):
        return problems + ["the database itself is damaged: rebuild with souyi index SOURCES... --index DIR"]
    with IndexWriter(index_path, lock_timeout=lock_timeout) as writer:
        writer.repair()
    return check_index(index_path, repair=False)
