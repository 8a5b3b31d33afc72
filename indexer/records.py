"""The records every store reads and writes, whichever holds the index (embedded or Milvus).

Ranking, building and the CLI see documents and passages only through these
types, so a store is free to keep them as it likes; the one representation
two stores must agree on is the rescorer's float16 packing
(:func:`pack_sentence_vectors`), so that a migrated index ranks as its source.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DocumentRecord:
    """A source document, as read and as stored."""

    name: str
    title: str
    source: str
    encoding: str
    sha256: str
    text: str
    size: int = 0
    mtime_ns: int = 0
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDocument:
    """What ``souyi list`` shows of a document, and what updates compare against."""

    name: str
    title: str
    source: str
    sha256: str
    size: int
    mtime_ns: int
    meta: dict
    passages: int
    indexed_at: float


@dataclass(frozen=True)
class PassageRecord:
    """A passage as stored, joined with its document."""

    passage_id: int
    doc_name: str
    title: str
    paragraph: int
    start: int
    end: int
    heading: str
    text: str
    meta: dict


@dataclass(frozen=True)
class SentenceVectors:
    """A passage's rescoring vectors: one for the passage, one per sentence (``spans``).

    ``spans`` may be given as its stored JSON text: ranking reads the vectors
    of a hundred candidates per query but needs the spans of the few shown.
    """

    spans_or_json: tuple[tuple[int, int], ...] | str
    passage: np.ndarray  # (dim,)
    sentences: np.ndarray  # (number of sentences, dim)

    @functools.cached_property
    def spans(self) -> tuple[tuple[int, int], ...]:
        raw = self.spans_or_json
        return tuple(tuple(s) for s in json.loads(raw)) if isinstance(raw, str) else tuple(raw)

    def spans_json(self) -> str:
        """``spans`` as stored: a JSON list of ``[start, end]`` pairs."""
        return json.dumps([list(s) for s in self.spans])


@dataclass(frozen=True)
class NewPassage:
    """A passage to write, cut from the document it is staged with."""

    paragraph: int
    start: int
    end: int
    heading: str
    text: str
    rescore: SentenceVectors | None = None  # present when the index has a rescorer


def pack_sentence_vectors(vectors: SentenceVectors) -> bytes:
    """A passage's rescoring vectors as stored: float16 rows, the passage first, then each sentence."""
    return np.vstack([vectors.passage[None, :], vectors.sentences]).astype(np.float16).tobytes()


def unpack_vector_rows(packed: bytes, dim: int) -> np.ndarray:
    """The float32 rows of one or more :func:`pack_sentence_vectors` results joined together."""
    return np.frombuffer(packed, dtype=np.float16).reshape(-1, dim).astype(np.float32)
