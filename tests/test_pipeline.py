"""The indexing pipeline (indexer/pipeline.py): chunked, overlapped work that stores what a plain loop would,
fast mode and its manifest entry, and one progress bar for the whole batch."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from indexer import pipeline
from indexer.analyze import Analyzer
from indexer.build import add_documents, build_index
from indexer.embedding import DEFAULT_RESCORER, load_embedder
from indexer.pipeline import FAST_KEY, embedding_text
from indexer.store import IndexReader
from indexer.stores import _terms_by_id
from search import Searcher
from souyi import SAMPLE_DIR

SMALL_CHUNK = 5  # several chunks over the sample, the last one partial


@pytest.fixture(scope="module")
def rescorer():
    return load_embedder(DEFAULT_RESCORER)


@pytest.fixture(scope="module")
def chunked_index(tmp_path_factory, embedder):
    """The sample indexed with small chunks, so that every chunk boundary is crossed."""
    target = tmp_path_factory.mktemp("chunked") / "index"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "CHUNK", SMALL_CHUNK)
        build_index([SAMPLE_DIR], target, embedder=embedder)
    return target


@pytest.fixture(scope="module")
def fast_index(tmp_path_factory, embedder):  # embedder: the session's model cache
    target = tmp_path_factory.mktemp("fast") / "index"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "CHUNK", SMALL_CHUNK)
        build_index([SAMPLE_DIR], target, fast=True)
    return target


def _vectors_by_text(path) -> dict[str, np.ndarray]:
    reader = IndexReader.open(path)
    ids, vectors = reader.stored_vectors()
    texts = {p.passage_id: embedding_text(p) for p in reader.all_passages()}
    return {texts[int(i)]: v for i, v in zip(ids, vectors, strict=True)}


def test_each_passage_stores_its_own_vectors_terms_and_sentences(chunked_index, embedder, rescorer):
    reader = IndexReader.open(chunked_index)
    passages = reader.all_passages()
    assert len(passages) > 3 * SMALL_CHUNK
    ids, vectors = reader.stored_vectors()
    stored = dict(zip(ids.tolist(), vectors, strict=True))
    extra = reader.sentence_vectors([p.passage_id for p in passages])
    terms = _terms_by_id(reader)
    analyzer = Analyzer.from_config(reader.manifest["analyzer"], None)
    for passage in passages[SMALL_CHUNK - 2 : 2 * SMALL_CHUNK + 2]:  # across two chunk boundaries
        alone = embedder.encode_passages([embedding_text(passage)])[0]
        assert np.allclose(stored[passage.passage_id], alone, atol=1e-5)  # not a neighbour's, not batch-dependent
        own = rescorer.encode_passages([embedding_text(passage)])[0]
        assert float(extra[passage.passage_id].passage @ own) > 0.999  # stored as float16
        assert len(extra[passage.passage_id].spans) == len(extra[passage.passage_id].sentences) >= 1
        assert sorted(terms[passage.passage_id]) == sorted(analyzer.tokens(passage.text))


def test_fast_mode_is_recorded_and_keeps_passage_rescorer_vectors_only(fast_index, sample_index):
    reader = IndexReader.open(fast_index)
    assert reader.manifest[FAST_KEY] == {"passage_runtime": "onnx-int8", "sentence_vectors": False}
    assert FAST_KEY not in IndexReader.open(sample_index).manifest
    ids = [p.passage_id for p in reader.all_passages()]
    extra = reader.sentence_vectors(ids)
    assert set(extra) == set(ids)
    assert all(len(v.spans) == 0 and v.sentences.shape == (0, 512) for v in extra.values())
    fast, default = _vectors_by_text(fast_index), _vectors_by_text(sample_index)
    assert fast.keys() == default.keys()
    cosines = np.array([float(fast[t] @ default[t]) for t in fast])
    assert cosines.min() > 0.97 and cosines.max() < 1 - 1e-6  # int8 vectors: close, not the float32 ones


def test_a_fast_index_answers_and_grows_in_fast_mode(fast_index, embedder, tmp_path):
    hits = Searcher.open(fast_index, embedder).search("软件业务收入", k=3)
    assert hits and all(hit.answer is None or hit.answer[1] > hit.answer[0] for hit in hits)
    grown_index = tmp_path / "grown"
    shutil.copytree(fast_index, grown_index)
    extra = tmp_path / "extra.txt"
    extra.write_text("杭州的软件企业在二〇〇八年增加了研发投入。\n\n宁波的港口物流软件发展很快。", encoding="utf-8")
    add_documents([extra], grown_index)
    fresh = tmp_path / "fresh"
    build_index([extra], fresh, fast=True)
    grown, alone = _vectors_by_text(grown_index), _vectors_by_text(fresh)
    for text, vector in alone.items():
        assert np.array_equal(grown[text], vector)  # int8 again, as the manifest says


def test_one_progress_bar_counts_every_passage(tmp_path, embedder, capsys):
    report = build_index([SAMPLE_DIR], tmp_path / "index", embedder=embedder, progress=True)
    err = capsys.readouterr().err
    assert err.count("Indexing") >= 1 and "Passages" not in err
    assert f"{report.passages}/{report.passages}" in err
