"""BM25 arrays, the analyzer (folding, user dictionary) and highlighting, without a model."""

import hashlib
import json
import math

import numpy as np
import pytest

from indexer import bm25
from indexer.analyze import ANALYZER_VERSION, BIGRAM_PREFIX, Analyzer, default_analyzer, normalize
from indexer.bm25 import BM25Index
from indexer.errors import IndexFormatError
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


def _zipf_corpus(n_docs: int, seed: int) -> list[list[str]]:
    """Documents whose word frequencies follow Zipf's law, as natural text does: a few words in most
    documents (long posting lists), many in few."""
    rng = np.random.default_rng(seed)
    words = np.minimum(rng.zipf(1.3, size=(n_docs, 24)), 5000)
    return [[f"w{w}" for w in row[: rng.integers(4, 24)]] for row in words]


def _ranked_by_full_scores(index, query, n, allowed=None):
    scores = index.scores(query)
    if allowed is not None:
        scores[~allowed] = 0.0
    rows = np.flatnonzero(scores > 0)
    rows = rows[np.lexsort((rows, -scores[rows]))][:n]
    return rows, scores[rows]


def test_top_n_equals_ranking_every_row_also_when_common_terms_are_skipped(monkeypatch):
    index = BM25Index.build(_zipf_corpus(8_000, seed=3))
    monkeypatch.setattr(bm25, "SCAN_ALWAYS", 0)  # prune at this size too (it only pays off on large indexes)
    pruned = []
    real = BM25Index._top_pruned
    monkeypatch.setattr(BM25Index, "_top_pruned", lambda *a: pruned.append(1) or real(*a))
    rng = np.random.default_rng(4)
    mask = rng.random(index.n_rows) < 0.3
    for i in range(120):
        common = [f"w{w}" for w in rng.integers(1, 4, size=rng.integers(1, 4))]
        rare = [f"w{w}" for w in rng.integers(20, 5000, size=rng.integers(0, 5))]
        query = common + rare + (["unseen"] if i % 7 == 0 else [])
        for n, allowed in ((1, None), (10, None), (100, None), (100, mask)):
            rows, scores = index.top(query, n, allowed)
            want_rows, want_scores = _ranked_by_full_scores(index, query, n, allowed)
            assert np.array_equal(rows, want_rows), query
            np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    assert len(pruned) > 100  # the test did exercise the pruning path, not only the full scan
    rows = np.array([0, 5, 17, index.n_rows - 1])
    np.testing.assert_allclose(index.scores_at(["w1", "w2", "w40"], rows), index.scores(["w1", "w2", "w40"])[rows],
                               rtol=1e-6)


@pytest.mark.parametrize("postings", [30, 3_000])  # fewer than n_rows / SPARSE_SCAN, and more
def test_row_sums_add_like_a_full_score_array_either_way(postings):
    """A scan's sums through distinct rows and through an array over all rows are the same float64 numbers."""
    rng = np.random.default_rng(postings)
    n_rows = 1_000
    rows = np.concatenate([np.sort(rng.choice(n_rows, postings // 3, replace=False)) for _ in range(3)])
    weights = rng.random(len(rows)) * 10.0 ** rng.integers(-8, 3, len(rows))  # magnitudes that round if reordered
    found, sums = bm25.row_sums(rows.astype(np.int32), weights, n_rows)
    full = np.zeros(n_rows)
    for row, weight in zip(rows, weights, strict=True):  # in input order, one posting at a time
        full[row] += weight
    assert found.dtype == np.int64 and found.tolist() == np.unique(rows).tolist()
    assert sums.tolist() == full[found].tolist()


def test_top_n_on_small_and_empty_indexes():
    index = BM25Index.build([["a", "b"], ["b"], ["c", "c", "b"]])
    rows, scores = index.top(["b", "c"], 2)
    assert rows.tolist() == [2, 1] and scores[0] > scores[1] > 0  # the shorter of the two "b" rows second
    assert index.top(["zz"], 5)[0].size == 0 and index.top(["b"], 0)[0].size == 0
    assert BM25Index.empty().top(["a"], 3)[0].size == 0
    assert index.top(["b"], 3, np.array([False, True, False]))[0].tolist() == [1]


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


# --------------------------------------------------------------------------- traditional = simplified


def test_traditional_folds_to_simplified_keeping_length():
    assert normalize("臺灣資訊產業發展") == "台湾资讯产业发展"
    assert normalize("軟體資訊服務業") == "软体资讯服务业"  # 1:1 characters; 軟體→软件 is a phrase, not folded
    text = "ＡＢＣ軟體公司２００８年，發展「雲端」服務。"
    assert len(normalize(text)) == len(text)
    assert normalize(normalize(text)) == normalize(text)
    assert normalize("鐘錶 乾燥 後來 著名 干净") == "钟表 干燥 后来 著名 干净"  # simplified text is left alone
    assert normalize("⼀⻓⻔") == "一长门"  # CJK radicals (from PDF text layers) are their ideographs
    assert normalize("软件信息服务业", fold_traditional=False) == "软件信息服务业"
    assert normalize("軟體", fold_traditional=False) == "軟體"


def test_traditional_and_simplified_tokens_overlap(analyzer):
    assert analyzer.tokens("臺灣資訊產業") == analyzer.tokens("台湾资讯产业")
    traditional, simplified = set(analyzer.tokens("軟體資訊服務業")), set(analyzer.tokens("软件信息服务业"))
    assert {"服务", "服务业", BIGRAM_PREFIX + "服务", BIGRAM_PREFIX + "务业"} <= traditional & simplified


def test_traditional_query_ranks_simplified_passage_and_back(analyzer):
    passages = ["浙江省软件与信息服务业发展迅速。", "台湾的资讯产业与半导体制造。", "杭州西湖风景优美。"]
    index = BM25Index.build([analyzer.tokens(p) for p in passages])
    assert int(np.argmax(index.scores(analyzer.tokens("臺灣資訊產業")))) == 1
    index = BM25Index.build([analyzer.tokens(p) for p in ["臺灣的資訊產業與半導體製造。", "杭州西湖風景優美。"]])
    assert int(np.argmax(index.scores(analyzer.tokens("杭州西湖")))) == 1


def test_highlight_traditional_query_on_simplified_passage_and_back(analyzer):
    text = "2008年，台湾的资讯产业与半导体制造业增长较快。"
    spans = highlight_spans(query_terms("臺灣資訊產業", analyzer), text)
    assert [text[s:e] for s, e in spans] == ["台湾", "资讯产业"]
    assert spans[0] == (text.index("台湾"), text.index("台湾") + 2)  # offsets in the original text
    text = "２００８年，臺灣的資訊產業與半導體製造業增長較快。"
    spans = highlight_spans(query_terms("台湾 半导体", analyzer), text)
    assert [text[s:e] for s, e in spans] == ["臺灣", "半導體"]


# --------------------------------------------------------------------------- user dictionary


@pytest.fixture()
def userdict(tmp_path):
    path = tmp_path / "terms.txt"
    path.write_text("云原生数据湖 20 n\nK8S集群\n雲端運算\n", encoding="utf-8")
    return path


def test_user_dictionary_makes_domain_terms_one_token(analyzer, userdict):
    assert "云原生数据湖" not in analyzer.tokens("建设云原生数据湖平台")
    custom = Analyzer(userdict)
    assert "云原生数据湖" in custom.tokens("建设云原生数据湖平台")
    assert "k8s集群" in custom.tokens("部署K8S集群")  # entries are normalised like the text
    assert "云端运算" in custom.tokens("雲端運算服務") and "云端运算" in custom.tokens("云端运算服务")
    assert "云原生数据湖" not in Analyzer().tokens("建设云原生数据湖平台")  # jieba's global dictionary untouched


def test_config_records_folding_and_user_dictionary(analyzer, userdict, tmp_path):
    plain = analyzer.config()
    assert plain["version"] == ANALYZER_VERSION >= 2
    assert plain["userdict"] is None
    assert plain["fold"]["pairs"] > 4000 and len(plain["fold"]["sha256"]) == 64
    custom = Analyzer(userdict).config()
    assert custom["userdict"] == {"sha256": hashlib.sha256(userdict.read_bytes()).hexdigest(), "entries": 3}
    other = tmp_path / "other.txt"
    other.write_text("云原生数据湖 30 n\n", encoding="utf-8")
    assert Analyzer(other).config()["userdict"]["sha256"] != custom["userdict"]["sha256"]
    json.dumps(custom)  # goes into manifest.json as is


def test_from_config_rebuilds_or_refuses(analyzer, userdict, tmp_path):
    assert Analyzer.from_config(analyzer.config(), None) is analyzer  # the shared default
    rebuilt = Analyzer.from_config(Analyzer(userdict).config(), userdict)
    assert "云原生数据湖" in rebuilt.tokens("云原生数据湖")
    other = tmp_path / "other.txt"
    other.write_text("云原生数据湖 30 n\n", encoding="utf-8")
    with pytest.raises(IndexFormatError, match="another user dictionary"):
        Analyzer.from_config(Analyzer(userdict).config(), other)
    with pytest.raises(IndexFormatError, match="none was given"):
        Analyzer.from_config(Analyzer(userdict).config(), None)
    with pytest.raises(IndexFormatError, match="without a user dictionary"):
        Analyzer.from_config(analyzer.config(), userdict)
    with pytest.raises(IndexFormatError, match="rebuild the index"):
        Analyzer.from_config({**analyzer.config(), "version": 1}, None)
    with pytest.raises(IndexFormatError, match="traditional/simplified table"):
        Analyzer.from_config({**analyzer.config(), "fold": {"sha256": "0" * 64}}, None)


def test_grouped_numbers_meet_their_plain_spelling(analyzer):
    plain, grouped = analyzer.tokens("销售收入4300亿元"), analyzer.tokens("销售收入 4,300 亿元")
    assert "4300" in plain and "4300" in grouped
    assert "1234567.5" in analyzer.tokens("１，２３４，５６７.５元")  # full-width digits and comma fold first
    assert "1234" not in analyzer.tokens("12,34")  # not a thousands grouping


def test_indexes_of_the_previous_analyzer_version_still_tokenize_as_they_were_built(analyzer):
    old = Analyzer.from_config({**analyzer.config(), "version": 2})
    assert old.config()["version"] == 2
    assert "4300" not in old.tokens("4,300 亿") and "4300" in analyzer.tokens("4,300 亿")
    with pytest.raises(IndexFormatError):
        Analyzer.from_config({**analyzer.config(), "version": 1})
