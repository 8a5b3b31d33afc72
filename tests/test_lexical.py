"""BM25 arrays, the analyzer and highlighting, without a model."""

import math

import numpy as np
import pytest

from indexer.analyze import BIGRAM_PREFIX, default_analyzer, normalize
from indexer.bm25 import BM25Index
from search.highlight import highlight_spans, query_terms


@pytest.fixture(scope="module")
def analyzer():
    return default_analyzer()


def _bm25_reference(docs, query, k1=1.2, b=0.75):
    """Textbook BM25 (Lucene IDF), one document at a time."""
    n = len(docs)
    avg = sum(map(len, docs)) / n
    out = []
    for doc in docs:
        score = 0.0
        for term in set(query):
            df = sum(term in d for d in docs)
            if not df:
                continue
            tf = doc.count(term)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avg))
        out.append(score)
    return out


def test_bm25_matches_the_textbook_formula():
    docs = [["杭州", "软件", "外包", "软件"], ["浙江", "信息", "产业"], ["软件", "信息", "服务", "业", "浙江"], []]
    index = BM25Index.build(docs)
    for query in (["软件"], ["浙江", "软件", "没有"], ["信息", "信息"]):
        np.testing.assert_allclose(index.scores(query), _bm25_reference(docs, query), rtol=1e-5)


def test_bm25_round_trips_through_arrays_and_handles_empty():
    docs = [["a", "b"], ["b", "c", "c"]]
    index = BM25Index.build(docs)
    again = BM25Index.from_arrays(index.to_arrays())
    np.testing.assert_array_equal(again.scores(["c", "b"]), index.scores(["c", "b"]))
    assert again.matched_terms(["c", "a", "zz"], 1) == {"c"}
    empty = BM25Index.build([])
    assert empty.scores(["a"]).shape == (0,)
    assert BM25Index.from_arrays(empty.to_arrays()).n_rows == 0


def test_unseen_terms_get_the_highest_idf():
    index = BM25Index.build([["a"], ["a", "b"]])
    idf = index.term_idf(["a", "b", "unseen"])
    assert idf["unseen"] == index.max_idf() > idf["b"] > idf["a"]


def test_search_mode_finds_parts_of_compounds(analyzer):
    tokens = analyzer.tokens("安装简单")
    assert {"安装", "简单", "安装简单"} <= set(tokens)
    assert BIGRAM_PREFIX + "装简" in tokens


def test_width_and_case_folding_keep_offsets(analyzer):
    text = "ＡＢＣ公司２００８年"
    assert normalize(text) == "abc公司2008年"
    assert len(normalize(text)) == len(text)
    assert "2008" in analyzer.tokens(text) and "abc" in analyzer.tokens(text)


def test_punctuation_is_dropped(analyzer):
    assert not [t for t in analyzer.tokens("“走出去”，和！？…") if not any(c.isalnum() for c in t)]


def test_highlight_marks_query_words_in_passage(analyzer):
    text = "杭州软件服务外包基地发展良好，安装简单。"
    spans = highlight_spans(query_terms("软件外包 简单", analyzer), text)
    marked = [text[s:e] for s, e in spans]
    assert "软件" in "".join(marked) and "外包" in "".join(marked) and "简单" in marked
    assert all(e > s for s, e in spans)
    assert all(spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1))  # merged, ordered


def test_highlight_english_whole_words_only_and_width_folded(analyzer):
    text = "Information on the ＮＦＬ and nfl teams"
    spans = highlight_spans(query_terms("NFL in", analyzer), text)
    assert [text[s:e] for s, e in spans] == ["ＮＦＬ", "nfl"]


def test_highlight_skips_function_characters_but_not_a_lone_query(analyzer):
    text = "我的软件的服务"
    assert [text[s:e] for s, e in highlight_spans(query_terms("的软件", analyzer), text)] == ["软件"]
    assert [text[s:e] for s, e in highlight_spans(query_terms("的", analyzer), text)] == ["的", "的"]
