"""The cross-language lexical bridge: dictionary rules, query translation, and search through translated words."""

import json
import subprocess
import sys

import pytest

from indexer.analyze import default_analyzer
from indexer.bilingual import DICTIONARY_NAME, Dictionary, clean_gloss, compiled_path, dictionary, load_dictionary
from indexer.build import build_index
from search import Searcher
from search.translate import translate

# Chinese passages that share no Latin-script word with the English question below.
CHINESE = {
    "rivers.txt": "长江是中国最长的河流，流经许多城市，沿岸的农业、航运和IT产业十分发达。",
    "markets.txt": "这家公司去年在香港证券交易所挂牌，股票价格上涨了很多，投资者非常高兴。",
    "schools.txt": "这所大学有两万名学生，图书馆藏书丰富，每年都有很多留学生来这里学习。",
}
ENGLISH = {
    "library.txt": "The university library holds many old books and welcomes visiting students every year.",
    "harbor.txt": "A fishing boat leaves the harbor at dawn and returns in the evening with the catch.",
}


def test_glosses_are_cleaned_into_lookup_keys():
    assert clean_gloss("to go public") == "go public"
    assert clean_gloss("university (abbr.)") == "university"
    assert clean_gloss("variant of 大學|大学") is None
    assert clean_gloss("surname Li") is None
    assert clean_gloss("to have a long talk with sb about sth") is None  # a definition, not a translation


def test_a_small_dictionary_maps_both_ways_most_direct_first():
    words = Dictionary([
        "大學 大学 [da4 xue2] /university/college/\n",
        "學院 学院 [xue2 yuan4] /college/academy/\n",
        "學 学 [xue2] /to learn/college (in some names)/\n",
        "隻 只 [zhi1] /classifier for birds/\n",
    ])
    assert words.chinese("college") == ("学院", "大学", "学")  # first sense first, lone characters last
    assert words.english("大学") == ("university", "college")
    assert words.english("只") == ()  # a classifier gloss is no translation


def test_english_query_words_and_phrases_become_chinese_headwords():
    translation = translate("How many students does the university have in 2008?", default_analyzer())
    assert "大学" in translation.terms and "学员" in translation.terms  # "students" through its base form
    assert "2008" in translation.terms  # numbers keep matching as they are
    assert "the" not in translation.terms and "how" not in translation.terms
    assert translation.covered == 1.0


def test_chinese_query_words_become_english_glosses():
    translation = translate("大学图书馆", default_analyzer())
    assert "university" in translation.terms and "library" in translation.terms


def test_the_dictionary_is_loaded_once_and_shared():
    assert dictionary() is dictionary()


def test_the_compiled_copy_gives_the_parsed_dictionary_and_a_damaged_copy_is_parsed_again(tmp_path):
    parsed = load_dictionary(tmp_path)  # no copy yet: parsed, and the copy written
    copy = compiled_path(tmp_path)
    assert copy.is_file() and [p.name for p in copy.parent.iterdir()] == [copy.name]  # no temp file left
    assert load_dictionary(tmp_path).compiled == parsed.compiled == dictionary().compiled
    copy.write_bytes(copy.read_bytes()[:1000])  # cut short, as by a full disk
    assert load_dictionary(tmp_path).compiled == parsed.compiled
    assert compiled_path(tmp_path).stat().st_size > 1000  # and written whole again


@pytest.fixture(scope="module")
def bilingual_index(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("bilingual")
    for name, text in {**CHINESE, **ENGLISH}.items():
        (folder / name).write_text(text, encoding="utf-8")
    target = tmp_path_factory.mktemp("bilingual-index") / "index"
    build_index([folder], target, embedder=embedder, rescorer=None)
    return target


@pytest.fixture(scope="module")
def bilingual(bilingual_index, embedder):
    searcher = Searcher.open(bilingual_index, embedder)
    yield searcher
    searcher.close()


def test_english_question_finds_chinese_passage_only_through_translations(bilingual):
    query = "Which company was listed on the stock exchange?"
    hits = bilingual.search(query, mode="lexical")
    assert hits and hits[0].doc_id == "markets.txt"
    top = hits[0]
    marked = " ".join(top.text[s:e] for s, e in top.translation_highlights)
    assert "公司" in marked and "挂牌" in marked
    assert not top.highlights  # none of the query's own words is in the passage
    assert "公司" in bilingual.also_searched(query)
    assert "markets.txt" not in [h.doc_id for h in bilingual.search(query, mode="lexical", translate=False)]


def test_chinese_question_finds_english_passage_through_translations(bilingual):
    hits = bilingual.search("渔船 港口", mode="lexical")
    assert hits and hits[0].doc_id == "harbor.txt"
    assert {hits[0].text[s:e].lower() for s, e in hits[0].translation_highlights} == {"fishing boat", "harbor"}


def test_same_language_queries_are_not_translated(bilingual):
    """A Chinese question whose translation ("IT") matches a Chinese passage stays a same-language search."""
    query = "长江沿岸的信息技术"
    assert "it" in translate(query, default_analyzer()).terms
    assert bilingual.also_searched(query) == ()
    on = bilingual.search(query)
    off = bilingual.search(query, translate=False)
    assert [(h.passage_id, h.score) for h in on] == [(h.passage_id, h.score) for h in off]
    assert all(not h.translation_highlights for h in on)


def test_translation_off_for_a_whole_searcher(bilingual_index, embedder):
    searcher = Searcher.open(bilingual_index, embedder, translate=False)
    try:
        assert searcher.also_searched("Which company was listed on the stock exchange?") == ()
        hits = searcher.search("Which company was listed on the stock exchange?", mode="lexical")
        assert all(not h.translation_highlights for h in hits)
    finally:
        searcher.close()


def test_the_manifest_records_the_dictionary(bilingual_index, bilingual):
    recorded = json.loads((bilingual_index / "manifest.json").read_text(encoding="utf-8"))["translation"]
    assert recorded["name"] == DICTIONARY_NAME and recorded["version"] != "missing"
    assert bilingual.info()["translation"] == recorded


def test_hits_carry_translation_highlights_in_json(bilingual):
    data = bilingual.search("Which company was listed on the stock exchange?", mode="lexical")[0].to_dict()
    assert data["translation_highlights"] and all(len(span) == 2 for span in data["translation_highlights"])


def test_cli_search_shows_what_the_query_was_also_searched_as(bilingual_index, cli_env):
    command = [sys.executable, "-m", "souyi", "search", "Which company was listed?", "--index", str(bilingual_index),
               "--mode", "lexical"]
    shown = subprocess.run([*command, "--json"], capture_output=True, text=True, env=cli_env, check=True)
    assert "公司" in json.loads(shown.stdout)["also_searched"]
    plain = subprocess.run([*command, "--no-translation"], capture_output=True, text=True, env=cli_env, check=True)
    assert "also searched" not in plain.stdout


def test_the_page_and_the_api_show_the_translated_words(bilingual_index, bilingual):
    from web import create_app

    client = create_app(bilingual_index, {"SOUYI_SEARCHER": bilingual}).test_client()
    query = "Which company was listed on the stock exchange?"
    data = client.get("/api/search", query_string={"q": query, "mode": "lexical"}).get_json()
    assert "公司" in data["also_searched"] and data["hits"][0]["translation_highlights"]
    for lang, label in (("en", "Also searched:"), ("zh", "同时搜索了：")):
        page = client.get("/", query_string={"q": query, "mode": "lexical", "lang": lang}).get_data(as_text=True)
        assert label in page and '<mark class="translated">' in page


def test_translated_spans_are_marked_apart_and_escaped():
    from web.render import highlight

    marked = str(highlight("ab<cd>ef", [(0, 2)], None, [(1, 5)]))
    assert marked == '<mark>ab</mark><mark class="translated">&lt;cd</mark>&gt;ef'
    assert str(highlight("ab<cd>ef", [(0, 2)], (1, 6), [(2, 5)])) == (
        '<mark>a</mark><span class="answer"><mark>b</mark><mark class="translated">&lt;cd</mark>&gt;</span>ef')
