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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import ann as ann_index
from .analyze import Analyzer, default_analyzer
from .bilingual import dictionary_config
from .documents import MAX_DOCUMENT_CHARS, SUPPORTED_SUFFIXES, SourceFile, find_sources, read_document
from .embedding import DEFAULT_RESCORER, Embedder, load_embedder
from .errors import DocumentError
from .identity import check_name_prefix, conflict, documents_to_remove
from .index_dir import LOCK_TIMEOUT, index_exists
from .pipeline import FAST_KEY, FAST_PASSAGE_PRECISION, Progress, fast_manifest, stage_documents
from .records import DocumentRecord, StoredDocument
from .split import ASCII_UNIT, DEFAULT_PASSAGE_SIZE
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
    fast: bool = False,
    name_prefix: str = "",
) -> BuildReport:
    """Index the files at ``paths`` (files or folders) into a fresh index at ``index_path``.

    ``userdict`` is a jieba user dictionary of domain terms; it is copied
    into the index so that queries are tokenized with it too.  ``ann`` picks
    the vector index (``auto``: exact up to ``ann.FLAT_MAX`` passages, IVF above;
    ``flat`` or ``ivf`` to force one; see :mod:`indexer.ann`).  ``rescorer``
    names the second model whose passage and sentence vectors rerank
    candidates and find answer sentences (:mod:`indexer.rescore`); None
    leaves it out.  ``fast`` builds in fast mode (:mod:`indexer.pipeline`).
    Documents are named by their path relative to the folder given (a file
    given directly: its file name), under ``name_prefix`` if one is given
    (:mod:`indexer.identity`).

    A file that cannot be read or decoded, or holds more than ``max_chars``
    characters of text, is left out and reported in
    :attr:`BuildReport.refused`; if no file could be read, nothing is written
    and :class:`DocumentError` is raised.  An existing index at
    ``index_path`` is replaced only once the new one is complete.
    """
    refused: list[str] = []
    sources = batch_sources(paths, include, exclude, name_prefix)
    documents = _read(sources, {}, meta or {}, refused, [], max_chars)
    if not documents:
        reason = refused[0] if refused else f"no {', '.join(SUPPORTED_SUFFIXES)} files found"
        raise DocumentError(f"no document could be indexed: {reason}")
    report = build_from_documents(
        documents, index_path, model=model, embedder=embedder, passage_size=passage_size, userdict=userdict,
        progress=progress, ann=ann, milvus=milvus, rescorer=rescorer, fast=fast,
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
    fast: bool = False,
) -> BuildReport:
    """Index documents that are already in memory into a fresh index (``souyi eval`` uses it)."""
    started = time.perf_counter()
    target = Path(index_path)
    embedder = embedder or load_embedder(model, precision=FAST_PASSAGE_PRECISION if fast else None)
    analyzer = Analyzer(userdict) if userdict else default_analyzer()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        second = load_embedder(rescorer) if rescorer else None
        create = {**_new_manifest(embedder, analyzer, passage_size, ann, second),
                  **(milvus.manifest() if milvus else {}), **(fast_manifest(embedder) if fast else {})}
        with open_writer(staging, create=create, userdict=Path(userdict) if userdict else None) as writer:
            stage_documents(writer, documents, embedder, analyzer, passage_size, progress, second)
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
    fast: bool = False,
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
    dictionary, vector index choice and rescorer, and ``fast`` (fast mode) likewise.
    ``merge=False`` leaves an embedded index's segments unmerged after the
    batch (``souyi optimize`` merges them later; docs/index-format.md).
    """
    started = time.perf_counter()
    target = Path(index_path)
    sources = batch_sources(paths, include, exclude, name_prefix)
    new_index = NewIndex(model, passage_size, userdict, ann, milvus, rescorer, fast)
    with open_batch(target, new_index, embedder, lock_timeout=lock_timeout, merge=merge) as batch:
        known = batch.writer.documents()
        refused: list[str] = []
        conflicts: list[str] = []
        documents = _read(sources, known, meta or {}, refused, None if replace else conflicts, max_chars)
        batch.stage(documents, progress)
        generation = batch.writer.commit()
        counts = batch.writer.manifest["counts"]
    updated = sum(doc.name in known for doc in documents)
    return BuildReport(
        target, counts["documents"], counts["passages"], time.perf_counter() - started, tuple(refused),
        added=len(documents) - updated, updated=updated, unchanged=len(sources) - len(documents) - len(refused),
        generation=generation, conflicts=tuple(conflicts),
    )


@dataclass(frozen=True)
class NewIndex:
    """How to create the index of a batch when it does not exist yet (an existing one keeps its own)."""

    model: str | None = None
    passage_size: int = DEFAULT_PASSAGE_SIZE
    userdict: str | Path | None = None
    ann: str = "auto"
    milvus: MilvusTarget | None = None
    rescorer: str | None = DEFAULT_RESCORER
    fast: bool = False


@dataclass
class Batch:
    """An open writer with the models and analyzer of its index: what staging documents needs."""

    writer: Writer
    embedder: Embedder
    analyzer: Analyzer
    passage_size: int
    rescorer: Embedder | None

    def stage(self, documents: Sequence[DocumentRecord], progress: Progress) -> None:
        """Split, embed and stage ``documents`` (:func:`indexer.pipeline.stage_documents`)."""
        stage_documents(self.writer, documents, self.embedder, self.analyzer, self.passage_size, progress,
                        self.rescorer)


@contextmanager
def open_batch(target: Path, new_index: NewIndex, embedder: Embedder | None = None, *,
               lock_timeout: float = LOCK_TIMEOUT, merge: bool = True,
               loader: Callable[..., Embedder] = load_embedder) -> Iterator[Batch]:
    """One atomic batch on the index at ``target`` (created from ``new_index`` if missing), models loaded.

    ``loader`` loads a model by id (``precision=`` for fast mode); a
    long-lived process passes a caching one so that a batch does not load the
    models again.
    """
    create = None
    fast = new_index.fast
    userdict = Path(new_index.userdict) if new_index.userdict else None
    if not index_exists(target):
        embedder = embedder or loader(new_index.model, precision=FAST_PASSAGE_PRECISION if fast else None)
        create = _new_manifest(embedder, Analyzer(userdict) if userdict else default_analyzer(),
                               new_index.passage_size, new_index.ann,
                               loader(new_index.rescorer) if new_index.rescorer else None)
        create.update(new_index.milvus.manifest() if new_index.milvus else {})
        create.update(fast_manifest(embedder) if fast else {})
    with open_writer(target, create=create, userdict=userdict, lock_timeout=lock_timeout, merge=merge) as writer:
        if embedder is None:
            embedder = loader(new_index.model or writer.manifest["model"]["id"],
                              precision=FAST_PASSAGE_PRECISION if writer.manifest.get(FAST_KEY) else None)
        writer.check_model(embedder.model_id, embedder.dim)
        analyzer = Analyzer.from_config(writer.manifest["analyzer"], writer.userdict())
        second = writer.manifest.get("rescorer")
        yield Batch(writer, embedder, analyzer, int(writer.manifest["split"]["passage_size"]),
                    loader(second["id"]) if second else None)


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
        "translation": dictionary_config(),
        "bm25": {"k1": 1.2, "b": 0.75},
        "split": {"passage_size": passage_size, "ascii_unit": ASCII_UNIT},
    }


def batch_sources(paths: Iterable[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = (),
                  name_prefix: str = "") -> list[SourceFile]:
    """The files a batch of ``paths`` reads and the names they get (``souyi add`` and ``souyi add --server``)."""
    return _named(_select(find_sources(paths), include, exclude), name_prefix)


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
            fields = {**meta, **sidecar_meta(source.path)}
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


def sidecar_meta(path: Path) -> dict:
    """The metadata fields of ``FILE.meta.json`` beside ``path`` ({} without one); raises :class:`DocumentError`."""
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

