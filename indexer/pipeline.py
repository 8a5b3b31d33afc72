"""The indexing pipeline: split, then embed, rescore and tokenize chunk by chunk with the work overlapped.

Why a pipeline: the primary model (e5) keeps a thread per core busy, while the
rescorer (a single-threaded NumPy model) and jieba each use one core at most;
run one after the other, they add their whole time to the build.  Here the
passages go through in chunks: while e5 embeds a chunk, a side thread computes
that chunk's rescorer vectors and BM25 terms, so on a machine with spare core
time the side work hides behind e5 (figures: docs/performance.md, "Indexing
end to end").  Every passage is still embedded alone (see
:mod:`indexer.onnx_embedding`), so its vector does not depend on the chunking.

The progress bar counts a passage when all of its work is done (vectors,
rescorer vectors, terms), so its rate and ETA are those of the whole batch.

*Fast mode* (``souyi index --fast``, ``build_index(fast=True)``) trades a little
quality for time, recorded in the manifest under :data:`FAST_KEY` so that later
batches added to the index are built the same way: passages embedded with the
int8 export of the default model (queries already are), and no per-sentence
rescorer vectors, only the passage one (the answer sentence is then picked by
matching words alone; see :mod:`search.answer`).  Its cost on every eval set:
docs/quality.md, "Fast indexing".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .analyze import Analyzer
from .embedding import Embedder
from .records import DocumentRecord, NewPassage, SentenceVectors
from .rescore import sentence_vectors
from .split import split_document
from .stores import Writer

logger = logging.getLogger(__name__)

#: Passages per chunk: large enough that a chunk's thread hand-offs cost nothing, small enough that
#: the side thread starts early and the progress bar moves.
CHUNK = 64
#: Manifest key of an index built in fast mode (absent otherwise).
FAST_KEY = "fast"
#: Precision of passage vectors in fast mode (the default model on ONNX; other models keep theirs).
FAST_PASSAGE_PRECISION = "int8"


#: How a batch reports progress: a bar on the terminal (True), nothing (False), or a callable told
#: ``(passages done, passages in the batch)`` after each chunk (a background job's progress).
Progress = bool | Callable[[int, int], None]


def fast_manifest(embedder: Embedder) -> dict:
    """The manifest entry that records fast mode and what it changed."""
    return {FAST_KEY: {"passage_runtime": getattr(embedder, "runtime", None), "sentence_vectors": False}}


def stage_documents(
    writer: Writer,
    documents: Sequence[DocumentRecord],
    embedder: Embedder,
    analyzer: Analyzer,
    passage_size: int,
    progress: Progress,
    rescorer: Embedder | None = None,
) -> None:
    """Split, embed, rescore and tokenize ``documents`` and stage them in ``writer``.

    An index built in fast mode (its manifest says so) gets no rescorer
    sentence vectors; ``embedder`` is already the fast one there (see
    :func:`indexer.embedding.load_embedder`).
    """
    fast = bool(writer.manifest.get(FAST_KEY))
    split = [
        [NewPassage(c.paragraph, c.start, c.end, c.heading, c.text) for c in split_document(doc.text, passage_size)]
        for doc in documents
    ]
    flat = [p for passages in split for p in passages]
    logger.info("embedding %d passages of %d documents with %s", len(flat), len(documents), embedder.model_id)
    texts = [embedding_text(p) for p in flat]
    vectors = np.zeros((len(flat), embedder.dim), np.float32)
    extras: list[SentenceVectors | None] = [None] * len(flat)
    terms: list[list[str]] = [[] for _ in flat]

    def side_work(start: int, end: int) -> None:
        """The rescorer's vectors and the BM25 terms of passages ``start:end``."""
        if rescorer is not None:
            chunk = [p.text for p in flat[start:end]]
            extras[start:end] = (_passage_only(rescorer, texts[start:end]) if fast
                                 else sentence_vectors(rescorer, chunk, texts[start:end]))
        terms[start:end] = [analyzer.tokens(p.text) for p in flat[start:end]]

    with _bar(progress, len(flat)) as bar, ThreadPoolExecutor(max_workers=1) as side:
        for start in range(0, len(flat), CHUNK):
            end = min(start + CHUNK, len(flat))
            pending = side.submit(side_work, start, end)
            vectors[start:end] = embedder.encode_passages(texts[start:end])
            pending.result()
            bar.update(end - start)

    offset = 0
    for doc, passages in zip(documents, split, strict=True):
        end = offset + len(passages)
        if rescorer is not None:
            passages = [dataclasses.replace(p, rescore=r) for p, r in zip(passages, extras[offset:end], strict=True)]
        writer.add(doc, passages, vectors[offset:end], terms[offset:end])
        offset = end


def embedding_text(passage: NewPassage) -> str:
    """The text the model embeds for a passage.

    The heading above a passage is prepended: a paragraph that says "它" or
    "the industry" is far easier to match with its section title in view.
    """
    return f"{passage.heading}\n{passage.text}" if passage.heading else passage.text


def _passage_only(rescorer: Embedder, embed_texts: Sequence[str]) -> list[SentenceVectors]:
    """Fast mode's rescorer vectors: the passage's own, no sentences."""
    whole = rescorer.encode_passages(list(embed_texts))
    empty = np.zeros((0, rescorer.dim), np.float32)
    return [SentenceVectors((), vector, empty) for vector in whole]


class _Counter:
    """A progress "bar" that tells a callable (or nobody) how many passages are done."""

    def __init__(self, report: Callable[[int, int], None] | None, total: int) -> None:
        self._report, self._total, self._done = report, total, 0

    def __enter__(self) -> _Counter:
        self.update(0)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        self._done += n
        if self._report is not None:
            self._report(self._done, self._total)


def _bar(progress: Progress, total: int):  # -> tqdm or _Counter
    """One bar for the whole batch, counted in passages whose every stage is done."""
    if progress is not True:
        return _Counter(progress or None, total)
    from tqdm import tqdm

    return tqdm(total=total, desc="Indexing", unit="passage")
