"""Build an index from documents: read, split, embed, tokenize, write."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .analyze import default_analyzer
from .bm25 import BM25Index
from .documents import find_sources, read_document
from .embedding import Embedder, load_embedder
from .errors import DocumentError
from .split import ASCII_UNIT, DEFAULT_PASSAGE_SIZE, split_document
from .store import DocumentRecord, NewPassage, write_index

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildReport:
    """What a build did, for the CLI and for callers."""

    index_path: Path
    documents: int
    passages: int
    seconds: float
    refused: tuple[str, ...] = field(default=())  # one message per file not indexed


def embedding_text(passage: NewPassage) -> str:
    """The text the model embeds for a passage.

    The heading above a passage is prepended: a paragraph that says "它" or
    "the industry" is far easier to match with its section title in view.
    """
    return f"{passage.heading}\n{passage.text}" if passage.heading else passage.text


def build_index(
    paths: Iterable[str | Path],
    index_path: str | Path,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    passage_size: int = DEFAULT_PASSAGE_SIZE,
    progress: bool = False,
) -> BuildReport:
    """Index the .txt/.md files at ``paths`` (files or folders) into ``index_path``.

    A file that cannot be read or decoded is left out and reported in
    :attr:`BuildReport.refused`; if no file could be read, nothing is written
    and :class:`DocumentError` is raised.  An existing index at
    ``index_path`` is replaced only once the new one is complete.
    """
    documents, refused = [], []
    for source in find_sources(paths):
        try:
            documents.append(read_document(source))
        except DocumentError as exc:
            logger.warning("%s", exc)
            refused.append(str(exc))
    if not documents:
        raise DocumentError("no document could be indexed" + (f": {refused[0]}" if refused else " (no .txt/.md files)"))
    report = build_from_documents(
        documents, index_path, model=model, embedder=embedder, passage_size=passage_size, progress=progress
    )
    return BuildReport(report.index_path, report.documents, report.passages, report.seconds, tuple(refused))


def build_from_documents(
    documents: Sequence[DocumentRecord],
    index_path: str | Path,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    passage_size: int = DEFAULT_PASSAGE_SIZE,
    progress: bool = False,
) -> BuildReport:
    """Index documents that are already in memory (used by ``souyi eval`` too)."""
    started = time.perf_counter()
    embedder = embedder or load_embedder(model)
    analyzer = default_analyzer()
    passages = [
        NewPassage(doc_no, c.paragraph, c.start, c.end, c.heading, c.text)
        for doc_no, doc in enumerate(documents)
        for c in split_document(doc.text, passage_size)
    ]
    texts = [embedding_text(p) for p in passages]
    logger.info("embedding %d passages of %d documents with %s", len(passages), len(documents), embedder.model_id)
    vectors = embedder.encode_passages(texts, show_progress=progress)
    lexical = BM25Index.build([analyzer.tokens(p.text) for p in passages])
    manifest = {
        "model": {"id": embedder.model_id, "dim": embedder.dim, "normalized": True, "metric": "inner_product"},
        "analyzer": analyzer.config(),
        "bm25": {"k1": lexical.k1, "b": lexical.b},
        "split": {"passage_size": passage_size, "ascii_unit": ASCII_UNIT},
    }
    write_index(Path(index_path), manifest, documents, passages, vectors, lexical)
    seconds = time.perf_counter() - started
    logger.info("indexed %d passages in %.1f s into %s", len(passages), seconds, index_path)
    return BuildReport(Path(index_path), len(documents), len(passages), seconds)
