"""The default model run by onnxruntime: the fast :class:`~indexer.embedding.Embedder`.

Same network, tokenizer, prompts, truncation, pooling and normalisation as the
sentence-transformers path, exported once by :mod:`indexer.onnx_export`; what
changes is the engine (no torch at run time, no Python per layer) and,
optionally, int8 weights.  Two choices:

- One text per inference call, never a padded batch.  Dynamic int8
  quantisation scales activations per call, so in a batch a passage's vector
  would depend on its neighbours (slightly, but measurably):
  an added document would then not get the vectors a rebuild gives it.  Alone,
  a text always gets the same vector, and there is no padding to waste work;
  batches of 4 to 32 length-sorted passages measured no faster.
- One intra-op thread per call.  A query is a few dozen tokens: a second thread
  saves little on an idle machine and stalls a query for a long time on a busy
  one.  Passages are embedded in parallel instead, one per core, from a thread
  pool over the same session (``InferenceSession.run`` is thread-safe and
  releases the GIL).
- Queries may run another export than passages (by default int8 queries over
  float32 passages, :mod:`indexer.embedding`): query embedding is most of a
  search's time, and int8 weights make it several times faster while MRR@10
  stays within noise (docs/performance.md), whereas int8 *passages* cost measurable accuracy.  Each
  session is loaded on first use, so a search process never holds the
  passage network and an indexing job never the query one.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from .errors import ModelUnavailableError


class OnnxEmbedder:
    """An :class:`~indexer.embedding.Embedder` over an exported sentence-transformers folder.

    ``onnx_path`` embeds passages; ``query_onnx_path`` (default: the same
    export) embeds queries.
    """

    def __init__(
        self,
        model_id: str,
        model_dir: Path,
        onnx_path: Path,
        runtime: str,
        workers: int | None = None,
        query_onnx_path: Path | None = None,
        query_runtime: str | None = None,
    ) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelUnavailableError(f"the {runtime} runtime needs onnxruntime: {exc}") from exc
        self.model_id = model_id
        self.runtime = runtime
        self.query_runtime = query_runtime or runtime
        model_dir = Path(model_dir)
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        prompts = json.loads((model_dir / "config_sentence_transformers.json").read_text()).get("prompts", {})
        self._query_prompt, self._passage_prompt = prompts.get("query", ""), prompts.get("passage", "")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(st_config["max_seq_length"]))
        self._tokenizer.no_padding()
        self._onnxruntime = onnxruntime
        self._paths = {"passage": Path(onnx_path), "query": Path(query_onnx_path or onnx_path)}
        self._sessions: dict[Path, object] = {}
        self._lock = threading.Lock()
        self._workers = workers or len(os.sched_getaffinity(0))
        # Read, not measured by embedding a text: that would load the query network into an indexing job.
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        self.dim = int(pooling["word_embedding_dimension"])

    def _session(self, kind: str):  # -> onnxruntime.InferenceSession
        """The session for ``kind`` (``query`` or ``passage``), loaded on first use and shared."""
        path = self._paths[kind]
        session = self._sessions.get(path)
        if session is None:
            with self._lock:
                session = self._sessions.get(path)
                if session is None:
                    options = self._onnxruntime.SessionOptions()
                    options.intra_op_num_threads = 1
                    options.inter_op_num_threads = 1
                    try:
                        session = self._onnxruntime.InferenceSession(
                            str(path), options, providers=["CPUExecutionProvider"]
                        )
                    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
                        raise ModelUnavailableError(f"cannot load ONNX model {path}: {exc}") from exc
                    self._sessions[path] = session
        return session

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt, "query", show_progress=False)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._passage_prompt, "passage", show_progress=show_progress)

    def _encode(self, texts: Sequence[str], prompt: str, kind: str, show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._session(kind)
        if len(texts) == 1:  # a query: no thread hop (encode_batch hands even one text to a worker thread)
            return _run(session, self._tokenizer.encode(prompt + texts[0]).ids)[None, :]
        encodings = self._tokenizer.encode_batch([prompt + text for text in texts])
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            vectors = pool.map(partial(_run, session), [e.ids for e in encodings])
            if show_progress:
                from tqdm import tqdm

                vectors = tqdm(vectors, total=len(texts), desc="Passages", unit="passage")
            for row, vector in enumerate(vectors):
                out[row] = vector
        return out


def _run(session, token_ids: list[int]) -> np.ndarray:
    """The vector of one tokenised text (a batch of one: no padding, no neighbours)."""
    ids = np.asarray([token_ids], dtype=np.int64)
    (vectors,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    return vectors[0].astype(np.float32, copy=False)
