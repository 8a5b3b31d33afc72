"""Documents that arrive in memory (uploads over HTTP), added or removed in one atomic batch each.

``souyi add`` reads files named on its command line; an upload is a name
chosen by a client plus the file's bytes (or plain text).  The name is only
ever a key in the index (:func:`indexer.identity.check_document_name`), the
bytes are decoded in memory (:func:`indexer.documents.document_from_bytes`)
and the document's recorded source is ``upload:<name>``, so uploading the
same name again replaces it (or leaves it alone when nothing changed) while a
name held by a document that ``souyi add`` read from a file is a conflict,
refused unless the client asks to replace it (:mod:`indexer.identity`).

Every document gets an :class:`Outcome`, the per-document report a job
shows: added, replaced, unchanged, refused (with the reason) or removed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .build import NewIndex, open_batch
from .documents import MAX_DOCUMENT_CHARS, document_from_bytes
from .embedding import Embedder, load_embedder
from .errors import DocumentError
from .identity import check_document_name, conflict
from .index_dir import LOCK_TIMEOUT
from .pipeline import Progress
from .records import DocumentRecord
from .stores import open_writer

logger = logging.getLogger(__name__)

#: The source recorded for an uploaded document: this prefix and its name.
UPLOAD_SOURCE = "upload:"
OUTCOMES = ("added", "replaced", "unchanged", "refused", "removed")


@dataclass(frozen=True)
class Upload:
    """One document sent by a client: a file's bytes (its name's suffix picks the format) or plain text."""

    name: str
    data: bytes | None = None
    text: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a batch did with one document."""

    name: str
    outcome: str  # one of OUTCOMES
    reason: str | None = None


@dataclass(frozen=True)
class UploadReport:
    """A committed upload or removal batch: the generation it made and each document's outcome."""

    generation: int
    outcomes: tuple[Outcome, ...]
    embedding_seconds: float = 0.0
    commit_seconds: float = 0.0


def add_uploads(
    uploads: Sequence[Upload],
    index_path: str | Path,
    *,
    replace: bool = False,
    max_chars: int = MAX_DOCUMENT_CHARS,
    progress: Progress = False,
    lock_timeout: float = LOCK_TIMEOUT,
    loader: Callable[..., Embedder] = load_embedder,
) -> UploadReport:
    """Add ``uploads`` to the existing index at ``index_path`` in one atomic batch.

    A document that cannot be indexed (bad name, unsupported or binary file,
    too long, a name held by another source without ``replace``, a name that
    several documents of the batch share) is refused with the reason and the
    others go in.  ``loader`` as for
    :func:`indexer.build.open_batch`.
    """
    target = Path(index_path)
    with open_batch(target, NewIndex(), lock_timeout=lock_timeout, loader=loader) as batch:
        known = batch.writer.documents()
        names = Counter(upload.name for upload in uploads)
        outcomes: list[Outcome] = []
        documents = []
        for upload in uploads:
            try:
                if names[upload.name] > 1:
                    raise DocumentError(f"{upload.name}: {names[upload.name]} documents of this batch have this "
                                        "name; none of them is indexed")
                doc = _record(upload, max_chars)
                old = known.get(doc.name)
                clash = old and conflict(doc.name, old, doc.source)
                if clash and not replace:
                    raise DocumentError(clash)
                if old and not clash and old.sha256 == doc.sha256 and old.meta == doc.meta:
                    outcomes.append(Outcome(doc.name, "unchanged"))
                    continue
                documents.append(doc)
                outcomes.append(Outcome(doc.name, "replaced" if old else "added"))
            except DocumentError as exc:
                logger.warning("refused upload: %s", exc)
                outcomes.append(Outcome(upload.name, "refused", str(exc)))
        started = time.perf_counter()
        batch.stage(documents, progress)
        embedded = time.perf_counter()
        generation = batch.writer.commit()
        committed = time.perf_counter()
    return UploadReport(generation, tuple(outcomes), embedded - started,
                        committed - embedded)


def remove_named(names: Sequence[str], index_path: str | Path, *, lock_timeout: float = LOCK_TIMEOUT) -> UploadReport:
    """Remove the documents of these names in one atomic batch.

    Unlike ``souyi remove`` a name is never taken for a path on this machine.
    A name that designates nothing raises :class:`DocumentError` and nothing is removed.
    """
    started = time.perf_counter()
    with open_writer(Path(index_path), lock_timeout=lock_timeout) as writer:
        known = writer.documents()
        missing = [name for name in names if name not in known]
        if missing:
            raise DocumentError(f"no document named {missing[0]!r}; nothing removed (GET /api/documents lists them)")
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            writer.remove(name)
        generation = writer.commit()
    return UploadReport(generation, tuple(Outcome(name, "removed") for name in wanted),
                        commit_seconds=time.perf_counter() - started)


def _record(upload: Upload, max_chars: int) -> DocumentRecord:
    """The document an upload holds, its source ``upload:<name>``; raises :class:`DocumentError`."""
    name = check_document_name(upload.name)
    source = UPLOAD_SOURCE + name
    if upload.data is not None:
        doc = document_from_bytes(upload.data, name, name, source, max_chars)
    else:  # plain text, whatever the name's suffix says
        doc = document_from_bytes((upload.text or "").encode("utf-8"), name, f"{name}.txt", source, max_chars)
        if not doc.text.strip():
            raise DocumentError(f"{name}: no text; not indexed")
    return dataclasses.replace(doc, size=len(upload.data or doc.text.encode("utf-8")), meta=dict(upload.meta))

