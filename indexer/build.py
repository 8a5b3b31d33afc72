"""Build and update indexes: read, split, embed, tokenize, write.

``build_index`` makes a fresh index (written beside the target and swapped
in whole); ``add_documents`` and ``remove_documents`` change an existing one
in one atomic batch each (see :mod:`indexer.store`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import ann as ann_index
from .analyze import Analyzer, default_analyzer
from .documents import MAX_DOCUMENT_CHARS, SUPPORTED_SUFFIXES, SourceFile, find_sources, read_document
from .embedding import DEFAULT_RESCORER, Embedder, load_embedder
from .errors import DocumentError
from .identity import check_name_prefix, conflict, documents_to_remove
from .index_dir import LOCK_TIMEOUT, index_exists
from .records import DocumentRecord, NewPassage, StoredDocument
from .rescore import sentence_vectors
from .split import ASCII_UNIT, DEFAULT_PASSAGE_SIZE, split_document
from .stores import MilvusTarget, Writer, open_writer, replace_index

logger = logging.getLogger(__name__)

#: A JSON object in ``<file>.meta.json`` beside a document adds metadata fields to it.
SIDECAR_SUFFIX = ".meta.json"


@dataclass(frozen=True)
class BuildReport:
    """What a build or an update did, for the CLI and for callers."""

    index_path: Path
    documents: int  # documents in the index afterwards
    passages: int  # passages in the index afterwards
    seconds: float
    refused: tuple[str, ...] = field(default=())  # one message per file not indexed
    added: int = 0  # new documents
    updated: int = 0  # documents whose content changed
    unchanged: int = 0  # documents skipped because nothing changed
    removed: int = 0
    generation: int = 0
    #: names of documents refused because another source already holds the name (also in ``refused``)
    conflicts: tuple[str, ...] = field(default=())
    #: names of the documents removed (``remove_documents``)
    removed_names: tuple[str, ...] = field(default=())


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
    userdict: str | Path | None = None,
    meta: dict | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    progress: bool = False,
    ann: str = "auto",
    milvus: MilvusTarget | None = None,
    rescorer: str | None = DEFAULT_RESCORER,
    max_chars: int = MAX_DOCUMENT_CHARS,
    name_prefix: str = "",
) -> BuildReport:
    """Index the files at ``paths`` (files or folders) into a fresh index at ``index_path``.

    ``userdict`` is a jieba user dictionary of domain terms; it is copied
    into the index so that queries are tokenized with it too.  ``ann`` picks
    the vector index (``auto``: exact up to ``ann.FLAT_MAX`` passages, IVF above;
    ``flat`` or ``ivf`` to force one; see :mod:`indexer.ann`).  ``rescorer``
    names the second model whose passage and sentence vectors rerank
    candidates and find answer sentences (:mod:`indexer.rescore`); None
    leaves it out.  Documents are named by their path relative to the folder
    given (a file given directly: its file name), under ``name_prefix`` if
    one is given (:mod:`indexer.identity`).

    A file that cannot be read or decoded, or holds more than ``max_chars``
    characters of text, is left out and reported in
    :attr:`BuildReport.refused`; if no file could be read, nothing is written
    and :class:`DocumentError` is raised.  An existing index at
    ``index_path`` is replaced only once the new one is complete.
    """
    refused: list[str] = []
    sources = _named(_select(find_sources(paths), include, exclude), name_prefix)
    documents = _read(sources, {}, meta or {}, refused, [], max_chars)
    if not documents:
        reason = refused[0] if refused else f"no {', '.join(SUPPORTED_SUFFIXES)} files found"
        raise DocumentError(f"no document could be indexed: {reason}")
    report = build_from_documents(
        documents, index_path, model=model, embedder=embedder, passage_size=passage_size, userdict=userdict,
        progress=progress, ann=ann, milvus=milvus, rescorer=rescorer,
    )
    return dataclasses.replace(report, refused=tuple(refused))


def build_from_documents(
    documents: Sequence[DocumentRecord],
    index_path: str | Path,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    passage_size: int = DEFAULT_PASSAGE_SIZE,
    userdict: str | Path | None = None,
    progress: bool = False,
    ann: str = "auto",
    milvus: MilvusTarget | None = None,
    rescorer: str | None = DEFAULT_RESCORER,
) -> BuildReport:
    """Index documents that are already in memory into a fresh index (``souyi eval`` uses it)."""
    started = time.perf_counter()
    target = Path(index_path)
    embedder = embedder or load_embedder(model)
    analyzer = Analyzer(userdict) if userdict else default_analyzer()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        second = load_embedder(rescorer) if rescorer else None
        create = {**_new_manifest(embedder, analyzer, passage_size, ann, second),
                  **(milvus.manifest() if milvus else {})}
        with open_writer(staging, create=create, userdict=Path(userdict) if userdict else None) as writer:
            _stage(writer, documents, embedder, analyzer, passage_size, progress, second)
            generation = writer.commit()
            counts = writer.manifest["counts"]
        replace_index(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    logger.info("indexed %d passages in %.1f s into %s", counts["passages"], seconds, target)
    return BuildReport(target, counts["documents"], counts["passages"], seconds, added=len(documents),
                       generation=generation)


def add_documents(
    paths: Iterable[str | Path],
    index_path: str | Path,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    meta: dict | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    passage_size: int = DEFAULT_PASSAGE_SIZE,
    userdict: str | Path | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    progress: bool = False,
    ann: str = "auto",
    milvus: MilvusTarget | None = None,
    rescorer: str | None = DEFAULT_RESCORER,
    max_chars: int = MAX_DOCUMENT_CHARS,
    name_prefix: str = "",
    replace: bool = False,
    merge: bool = True,
) -> BuildReport:
    """Add files and folders to the index at ``index_path`` in one atomic batch.

    A document already indexed under the same name *from the same source
    file* is replaced when its content changed and skipped when it did not
    (same size and mtime: not even read; same SHA-256: not re-embedded).  A
    name already held by a document read from *another* source is refused
    (listed in :attr:`BuildReport.refused` and :attr:`BuildReport.conflicts`)
    unless ``replace`` is true; ``name_prefix`` puts the batch's names under a
    folder-like label so that both can stay (:mod:`indexer.identity`).  The index is created if it
    does not exist (with ``model``, ``passage_size``, ``userdict``, ``ann`` and
    ``rescorer``); an existing index keeps its own model, passage size, user
    dictionary, vector index choice and rescorer.  ``merge=False`` leaves an
    embedded index's segments unmerged after the batch (``souyi optimize``
    merges them later; docs/index-format.md).
    """
    started = time.perf_counter()
    target = Path(index_path)
    sources = _named(_select(find_sources(paths), include, exclude), name_prefix)
    create = None
    if not index_exists(target):
        embedder = embedder or load_embedder(model)
        create = _new_manifest(embedder, Analyzer(userdict) if userdict else default_analyzer(), passage_size, ann,
                               load_embedder(rescorer) if rescorer else None)
        create.update(milvus.manifest() if milvus else {})
    with open_writer(target, create=create, userdict=Path(userdict) if userdict else None,
                     lock_timeout=lock_timeout, merge=merge) as writer:
        if embedder is None:
            embedder = load_embedder(model or writer.manifest["model"]["id"])
        writer.check_model(embedder.model_id, embedder.dim)
        analyzer = Analyzer.from_config(writer.manifest["analyzer"], writer.userdict())
        size = int(writer.manifest["split"]["passage_size"])
        second = writer.manifest.get("rescorer")
        second = load_embedder(second["id"]) if second else None
        known = writer.documents()
        refused: list[str] = []
        conflicts: list[str] = []
        documents = _read(sources, known, meta or {}, refused, None if replace else conflicts, max_chars)
        _stage(writer, documents, embedder, analyzer, size, progress, second)
        generation = writer.commit()
        counts = writer.manifest["counts"]
    updated = sum(doc.name in known for doc in documents)
    return BuildReport(
        target, counts["documents"], counts["passages"], time.perf_counter() - started, tuple(refused),
        added=len(documents) - updated, updated=updated, unchanged=len(sources) - len(documents) - len(refused),
        generation=generation, conflicts=tuple(conflicts),
    )


def remove_documents(
    names: Iterable[str], index_path: str | Path, *, lock_timeout: float = LOCK_TIMEOUT, merge: bool = True
) -> BuildReport:
    """Remove documents in one atomic batch, each given by name or by the path it was added from.

    A path (relative to the current directory, or absolute) designates the
    document read from that file, or every document read from below that
    folder; a name as ``souyi list`` shows it wins over a path.  A target that
    designates nothing raises :class:`DocumentError` and nothing is removed.
    :attr:`BuildReport.removed_names` lists what went.  ``merge`` as for :func:`add_documents`.
    """
    started = time.perf_counter()
    target = Path(index_path)
    with open_writer(target, lock_timeout=lock_timeout, merge=merge) as writer:
        try:
            wanted = documents_to_remove(names, writer.documents())
        except DocumentError as exc:
            raise DocumentError(f"{exc} --index {target}") from None
        for name in wanted:
            writer.remove(name)
        generation = writer.commit()
        counts = writer.manifest["counts"]
    return BuildReport(target, counts["documents"], counts["passages"], time.perf_counter() - started,
                       removed=len(wanted), generation=generation, removed_names=tuple(wanted))


def _new_manifest(embedder: Embedder, analyzer: Analyzer, passage_size: int, ann: str,
                  rescorer: Embedder | None) -> dict:
    return {
        "ann": {"requested": ann_index.check_kind(ann)},
        "model": {"id": embedder.model_id, "dim": embedder.dim, "normalized": True, "metric": "inner_product"},
        "rescorer": {"id": rescorer.model_id, "dim": rescorer.dim} if rescorer else None,
        "analyzer": analyzer.config(),
        "bm25": {"k1": 1.2, "b": 0.75},
        "split": {"passage_size": passage_size, "ascii_unit": ASCII_UNIT},
    }


def _select(sources: list[SourceFile], include: Sequence[str], exclude: Sequence[str]) -> list[SourceFile]:
    """Keep the sources whose name matches an ``include`` glob (if any) and no ``exclude`` glob."""
    return [
        s
        for s in sources
        if (not include or any(fnmatch.fnmatch(s.name, g) for g in include))
        and not any(fnmatch.fnmatch(s.name, g) for g in exclude)
    ]


def _named(sources: list[SourceFile], name_prefix: str) -> list[SourceFile]:
    """``sources`` with their names under ``name_prefix`` (checked; nothing changes without one)."""
    prefix = check_name_prefix(name_prefix)
    return [dataclasses.replace(s, name=prefix + s.name) for s in sources] if prefix else sources


def _read(
    sources: list[SourceFile],
    known: dict[str, StoredDocument],
    meta: dict,
    refused: list[str],
    conflicts: list[str] | None,
    max_chars: int,
) -> list[DocumentRecord]:
    """Read the sources that are new or changed; record refusals instead of stopping.

    With a ``conflicts`` list, a source whose name another source holds is
    refused and its name recorded there; with None it replaces that document.
    """
    documents = []
    for source in sources:
        try:
            stat = source.path.stat()
            old = known.get(source.name)
            clash = old and conflict(source.name, old, str(source.path.resolve()))
            if clash and conflicts is not None:
                logger.warning("skipped %s", clash)
                refused.append(clash)
                conflicts.append(source.name)
                continue
            old = None if clash else old  # a replaced document of another source is never "unchanged"
            fields = {**meta, **_sidecar(source.path)}
            if old and (old.size, old.mtime_ns) == (stat.st_size, stat.st_mtime_ns) and old.meta == fields:
                continue
            doc = read_document(source, max_chars)
            if old and old.sha256 == doc.sha256 and old.meta == fields:
                continue
            documents.append(dataclasses.replace(doc, size=stat.st_size, mtime_ns=stat.st_mtime_ns, meta=fields))
        except (DocumentError, OSError) as exc:
            message = str(exc) if isinstance(exc, DocumentError) else f"{source.path}: {exc}"
            logger.warning("skipped %s", message)
            refused.append(message)
    return documents


def _sidecar(path: Path) -> dict:
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        fields = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DocumentError(f"{sidecar}: not a JSON object ({exc})") from exc
    if not isinstance(fields, dict):
        raise DocumentError(f"{sidecar}: must hold a JSON object of metadata fields")
    return fields


def _stage(
    writer: Writer,
    documents: Sequence[DocumentRecord],
    embedder: Embedder,
    analyzer: Analyzer,
    passage_size: int,
    progress: bool,
    rescorer: Embedder | None = None,
) -> None:
    """Split, embed (all passages in one call, one progress bar) and stage ``documents``."""
    split = [
        [NewPassage(c.paragraph, c.start, c.end, c.heading, c.text) for c in split_document(doc.text, passage_size)]
        for doc in documents
    ]
    flat = [p for passages in split for p in passages]
    logger.info("embedding %d passages of %d documents with %s", len(flat), len(documents), embedder.model_id)
    texts = [embedding_text(p) for p in flat]
    vectors = embedder.encode_passages(texts, show_progress=progress)
    if rescorer is not None:
        extra = iter(sentence_vectors(rescorer, [p.text for p in flat], texts))
        split = [[dataclasses.replace(p, rescore=next(extra)) for p in passages] for passages in split]
    offset = 0
    for doc, passages in zip(documents, split, strict=True):
        chunk = vectors[offset : offset + len(passages)] if passages else np.zeros((0, embedder.dim), np.float32)
        writer.add(doc, passages, chunk, [analyzer.tokens(p.text) for p in passages])
        offset += len(passages)
