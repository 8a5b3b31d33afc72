"""Look after an index: list its documents, check it, repair it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .errors import IndexFormatError
from .store import DATABASE, IndexReader, IndexWriter, StoredDocument

#: The way out when the database is damaged: it holds the only copy of the passages, vectors and terms.
REBUILD_HINT = (
    "the database itself is damaged and cannot be repaired from the index: rebuild it from the source "
    "documents with: souyi index SOURCES... --index {path}"
)


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
    except IndexFormatError as exc:  # not a database at all, or damaged beyond an integrity report
        if not isinstance(exc.__cause__, sqlite3.DatabaseError):
            raise
        problems = [f"SQLite database {Path(index_path) / DATABASE} is unreadable ({exc.__cause__})"]
    finally:
        reader.close()
    if database_damaged(problems):
        return problems + [REBUILD_HINT.format(path=index_path)]
    if not problems or not repair:
        return problems
    with IndexWriter(index_path, lock_timeout=lock_timeout) as writer:
        writer.repair()
    return check_index(index_path, repair=False)


def database_damaged(problems: list[str]) -> bool:
    """True when the problems include the database itself (``--repair`` cannot help then)."""
    return any(problem.startswith("SQLite") for problem in problems)
