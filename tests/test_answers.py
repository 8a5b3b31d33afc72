"""The rescoring model and answer sentences: what ranking and highlighting rely on."""

from __future__ import annotations

import numpy as np
import pytest

from indexer import add_documents, remove_documents
from indexer.build import build_index
from indexer.embedding import DEFAULT_RESCORER, load_embedder
from indexer.records import SentenceVectors
from indexer.store import KEEP_GENERATIONS, IndexReader
from search import ModelMismatch, Searcher
from search.answer import answer_span
from search.embedded import EmbeddedStore
from search.fusion import MAX_RESCORER_SHARE, rescorer_share, semantic

# One passage, three unrelated sentences: which one answers is unambiguous.
THREE_TOPICS = "宁波港的货物吞吐量达到五亿吨。杭州的软件企业数量增加到两千家。龙井茶的春季产量比去年有所下降。"
OTHER = "温州的民营企业以制造业为主，出口额稳步增长。"


@pytest.fixture(scope="module")
def topics_index(tmp_path_factory, embedder):
    docs = tmp_path_factory.mktemp("topics-docs")
    (docs / "topics.txt").write_text(THREE_TOPICS, encoding="utf-8")
    (docs / "other.txt").write_text(OTHER, encoding="utf-8")
    target = tmp_path_factory.mktemp("topics") / "index"
    build_index([docs], target, embedder=embedder)
    return target


def _sentence(hit) -> str:
    assert hit.answer is not None
    return hit.text[hit.answer[0] : hit.answer[1]]


def test_the_index_records_its_rescorer_and_stores_sentence_vectors(topics_index):
    reader = IndexReader.open(topics_index)
    assert reader.manifest["rescorer"] == {"id": DEFAULT_RESCORER, "dim": 512}
    passage = next(p for p in reader.all_passages() if p.doc_name == "topics.txt")
    stored = reader.sentence_vectors([passage.passage_id])[passage.passage_id]
    assert [passage.text[s:e] for s, e in stored.spans] == [s + "。" for s in THREE_TOPICS.split("。") if s]
    assert stored.sentences.shape == (3, 512)
    assert np.allclose(np.linalg.norm(stored.sentences, axis=1), 1.0, atol=1e-2)  # float16 on disk


def test_an_english_question_marks_the_chinese_sentence_that_answers_it(topics_index, embedder):
    searcher = Searcher.open(topics_index, embedder)
    hit = searcher.search("How many software companies are there in Hangzhou?", k=1)[0]
    assert hit.doc_id == "topics.txt"
    assert not hit.highlights  # no word of the question is in the passage: only meaning can find the answer
    assert _sentence(hit) == "杭州的软件企业数量增加到两千家。"
    tea = searcher.search("What happened to the spring tea harvest?", k=1)[0]
    assert _sentence(tea) == "龙井茶的春季产量比去年有所下降。"


def test_answers_in_every_mode_follow_the_query(topics_index, embedder):
    searcher = Searcher.open(topics_index, embedder)
    for mode in ("hybrid", "dense", "lexical"):
        hit = searcher.search("宁波港吞吐量", k=1, mode=mode)[0]
        assert _sentence(hit) == "宁波港的货物吞吐量达到五亿吨。", mode
        hit = searcher.search("龙井茶产量", k=1, mode=mode)[0]
        assert _sentence(hit) == "龙井茶的春季产量比去年有所下降。", mode
    assert searcher.search("港口", k=1)[0].to_dict()["answer"] == list(searcher.search("港口", k=1)[0].answer)


def test_a_different_rescorer_is_refused(topics_index, embedder):
    with pytest.raises(ModelMismatch):
        Searcher(EmbeddedStore.open(topics_index), embedder, rescorer=embedder)


def test_without_a_rescorer_answers_come_from_the_query_words_only(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "topics.txt").write_text(THREE_TOPICS, encoding="utf-8")
    build_index([docs], tmp_path / "index", embedder=embedder, rescorer=None)
    assert IndexReader.open(tmp_path / "index").manifest["rescorer"] is None
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert searcher.rescorer is None
    assert _sentence(searcher.search("龙井茶", k=1)[0]) == "龙井茶的春季产量比去年有所下降。"
    assert searcher.search("How many software companies are there in Hangzhou?", k=1)[0].answer is None


def test_sentence_vectors_follow_their_passages_through_updates_and_purges(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "topics.txt").write_text(THREE_TOPICS, encoding="utf-8")
    index = tmp_path / "index"
    add_documents([docs], index, embedder=embedder)
    old_ids = [p.passage_id for p in IndexReader.open(index).all_passages()]
    assert set(IndexReader.open(index).sentence_vectors(old_ids)) == set(old_ids)
    remove_documents(["topics.txt"], index)
    for number in range(KEEP_GENERATIONS):  # enough newer generations for the deleted rows to be purged
        (docs / f"filler-{number}.txt").write_text(f"第{number}份补充材料。{OTHER}", encoding="utf-8")
        add_documents([docs / f"filler-{number}.txt"], index, embedder=embedder)
    reader = IndexReader.open(index)
    assert reader.sentence_vectors(old_ids) == {}
    live = [p.passage_id for p in reader.all_passages()]
    assert set(reader.sentence_vectors(live)) == set(live)


def test_answer_span_weighs_meaning_and_words():
    spans = ((0, 4), (4, 8))
    vectors = SentenceVectors(spans, np.array([1.0, 0.0]), np.array([[0.9, 0.1], [0.1, 0.9]]))
    assert answer_span("一二三四五六七八", (), vectors, np.array([0.0, 1.0])) == (4, 8)  # meaning alone
    # a near tie in meaning is settled by where the query's words are
    close = SentenceVectors(spans, np.array([1.0, 0.0]), np.array([[0.52, 0.0], [0.5, 0.0]]))
    assert answer_span("一二三四五六七八", ((5, 7),), close, np.array([1.0, 0.0])) == (4, 8)
    assert answer_span("甲。乙。", (), None, None) is None  # neither meaning nor words: no answer
    assert answer_span("甲。乙。", ((2, 3),), None, None) == (2, 4)


def test_semantic_mix_keeps_cosines_alone_and_normalises_members():
    cosines = np.array([0.81, 0.8, 0.79])
    others = [np.array([0.1, 0.9, 0.5]), np.array([0.2, 0.6, 0.4])]
    assert np.array_equal(semantic([cosines]), cosines)
    assert np.array_equal(semantic([cosines, *others], 0.0), cosines)  # no share: the primary model's cosines
    mixed = semantic([cosines, *others], 0.5)
    assert mixed.argmax() == 1 and 0.0 <= mixed.min() and mixed.max() <= 1.0


def test_the_rescorer_votes_in_proportion_to_the_script_gap():
    chinese = ["宁波港的货物吞吐量达到五亿吨。", "杭州的软件企业数量增加到两千家。"]
    # punctuation counts as "not CJK" on both sides, so the gap is near, not exactly, 1
    assert 0.9 * MAX_RESCORER_SHARE < rescorer_share("How much cargo did Ningbo handle?", chinese) <= MAX_RESCORER_SHARE
    assert rescorer_share("宁波港吞吐量是多少？", chinese) < 0.05 * MAX_RESCORER_SHARE
    assert rescorer_share("Ningbo port handled how much cargo", ["Ningbo port handled cargo."]) == 0.0
    assert 0.0 < rescorer_share("宁波港 cargo throughput", chinese) < MAX_RESCORER_SHARE
    assert rescorer_share("anything", []) == 0.0


def test_the_rescorer_loads_by_name_and_embeds_across_languages():
    rescorer = load_embedder(DEFAULT_RESCORER)
    zh, en, other = rescorer.encode_passages(["杭州的软件企业", "software companies in Hangzhou", "春季茶叶产量"])
    assert zh @ en > zh @ other


def test_an_english_corpus_answers_english_and_chinese_questions(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "port.txt").write_text(
        "Ningbo port handled five hundred million tonnes of cargo. The city also opened a new railway station.",
        encoding="utf-8",
    )
    (docs / "tea.txt").write_text(
        "Longjing tea output fell this spring after a late frost. Farmers expect prices to rise.", encoding="utf-8"
    )
    build_index([docs], tmp_path / "index", embedder=embedder)
    searcher = Searcher.open(tmp_path / "index", embedder)
    english = searcher.search("How much cargo did the port handle?", k=1)[0]
    assert english.doc_id == "port.txt" and english.highlights
    assert _sentence(english) == "Ningbo port handled five hundred million tonnes of cargo."
    chinese = searcher.search("今年春天龙井茶的产量怎么样？", k=1)[0]
    assert chinese.doc_id == "tea.txt"
    assert _sentence(chinese) == "Longjing tea output fell this spring after a late frost."
