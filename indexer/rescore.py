"""Rescoring vectors: a second model's view of each passage and of each of its sentences.

The primary model's vectors live in FAISS and find candidates; the rescorer's
vectors stay on disk (SQLite, float16) and are read only for the candidates
of one query.  That keeps memory and the ANN index sized by the primary model
while the second model still votes on the final order, and it gives every
sentence a vector, so the sentence that answers a question can be found even
when it shares no word with the question (an English question, a Chinese
passage).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .embedding import Embedder
from .records import SentenceVectors
from .split import sentences

logger = logging.getLogger(__name__)


def sentence_vectors(rescorer: Embedder, texts: Sequence[str], embed_texts: Sequence[str]) -> list[SentenceVectors]:
    """Vectors of each passage (``embed_texts[i]``, heading included) and of each sentence of ``texts[i]``."""
    spans = [sentences(text) or [(0, len(text))] for text in texts]
    pieces = [text[s:e] for text, found in zip(texts, spans, strict=True) for s, e in found]
    logger.info("rescorer %s: %d passages, %d sentences", rescorer.model_id, len(texts), len(pieces))
    whole = rescorer.encode_passages(list(embed_texts))
    parts = rescorer.encode_passages(pieces) if pieces else np.zeros((0, rescorer.dim), np.float32)
    out, offset = [], 0
    for i, found in enumerate(spans):
        out.append(SentenceVectors(tuple(found), whole[i], parts[offset : offset + len(found)]))
        offset += len(found)
    return out
