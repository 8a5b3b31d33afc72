"""Reading what was found on the web: ``/api/document``, ``/api/similar``, the ``/doc`` and ``/similar`` pages.

Real index, real model, Flask's test client; hostile ids go through both the
API and the pages.
"""

from __future__ import annotations

import html as html_lib
import re
import urllib.parse

import pytest
import test_web
from test_web import error_json

from conftest import SAMPLE_FILE
from web.openapi_reading import DOCUMENT_PROPERTIES

HOSTILE_IDS = ["../../etc/passwd", "/etc/passwd", "<script>alert(1)</script>", "a\x00b", "x" * 5000,
               "..%2F..%2Fetc%2Fpasswd"]
#: Percent-encoded query strings: a NUL, invalid UTF-8 bytes, an over-long UTF-8 form of '/'.
RAW_IDS = ["%00", "%FF%FE", "%C0%AF..%C0%AFetc", "%ED%A0%80"]

app, client = test_web.app, test_web.client  # the result page tests' fixtures: the sample index's app


@pytest.fixture(scope="module")
def hit(searcher):
    return searcher.search("杭州软件服务外包", k=1)[0]


def _url(path: str, **params: object) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"


# ---------------------------------------------------------------- JSON API


def test_api_document_is_the_python_document_with_highlights(client, searcher, hit):
    body = client.get(_url("/api/document", id=hit.doc_id, q="软件服务外包")).get_json()
    expected = searcher.document(hit.doc_id, "软件服务外包")
    assert body == expected.to_dict() and list(body) == list(DOCUMENT_PROPERTIES)
    assert body["highlights"] and all(body["text"][s:e] for s, e in body["highlights"])
    assert any("软件" in body["text"][s:e] for s, e in body["highlights"])
    plain = client.get(_url("/api/document", id=hit.doc_id)).get_json()
    assert plain["highlights"] == [] and plain["text"] == body["text"]


@pytest.mark.parametrize("doc_id", HOSTILE_IDS)
def test_api_document_unknown_ids_are_404_json(client, doc_id):
    body = error_json(client.get(_url("/api/document", id=doc_id)), 404)
    assert "root:" not in body["message"]


@pytest.mark.parametrize("raw", RAW_IDS)
def test_api_document_raw_encoded_ids_are_404_json(client, raw):
    error_json(client.get(f"/api/document?id={raw}"), 404)


@pytest.mark.parametrize("query", ["", "id=", f"id={SAMPLE_FILE.name}&q=%20",
                                   f"id={SAMPLE_FILE.name}&q=" + "字" * 2000])
def test_api_document_bad_parameters_are_400_json(client, query):
    error_json(client.get(f"/api/document?{query}"), 400)


def test_api_similar_is_the_python_similar(client, searcher, hit):
    body = client.get(_url("/api/similar", passage_id=hit.passage_id, k=3, same_document=1)).get_json()
    assert body["hits"] == [h.to_dict() for h in searcher.similar(hit.passage_id, k=3, same_document=True)]
    assert body["count"] == 3 and body["same_document"] is True
    others = client.get(_url("/api/similar", passage_id=hit.passage_id)).get_json()
    assert others["hits"] == [] and others["k"] == 10  # one document in the sample index


@pytest.mark.parametrize("query", ["", "passage_id=", "passage_id=abc", "passage_id=-1", "passage_id=1.5",
                                   "passage_id=%00", "passage_id=%FF", "passage_id=1&k=0", "passage_id=1&k=1001",
                                   "passage_id=1&same_document=2"])
def test_api_similar_bad_parameters_are_400_json(client, query):
    error_json(client.get(f"/api/similar?{query}"), 400)


def test_api_similar_unknown_passage_is_404_json(client):
    error_json(client.get("/api/similar?passage_id=9999999"), 404)


def test_openapi_describes_document_and_similar(client, hit):
    spec = client.get("/api/openapi.json").get_json()
    assert {"/api/document", "/api/similar"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    document = client.get(_url("/api/document", id=hit.doc_id)).get_json()
    assert list(document) == list(schemas["Document"]["properties"])
    similar = client.get(_url("/api/similar", passage_id=hit.passage_id)).get_json()
    assert set(similar) == set(schemas["Similar"]["properties"])


# ---------------------------------------------------------------- pages

QUERY = "软件服务外包"


def _links(html: str, path: str) -> list[str]:
    return [html_lib.unescape(u) for u in re.findall(rf'href="({re.escape(path)}\?[^"]+)"', html)]


@pytest.fixture(scope="module")
def doc_link(app) -> str:
    html = app.test_client().get(_url("/", q=QUERY, mode="lexical", page=1, lang="en")).get_data(as_text=True)
    return _links(html, "/doc")[0]


def test_hit_title_opens_its_passage_with_the_result_page_parameters(doc_link, searcher):
    path, _, fragment = doc_link.partition("#")
    args = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    first = searcher.search(QUERY, k=1, mode="lexical")[0]
    assert fragment == f"passage-{first.passage_id}" and args["passage"] == [str(first.passage_id)]
    assert args["id"] == [first.doc_id] and args["q"] == [QUERY] and args["mode"] == ["lexical"]
    assert args["page"] == ["1"] and args["lang"] == ["en"]


def test_document_page_marks_the_passage_and_the_query(client, doc_link, searcher):
    response = client.get(doc_link)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    passage_id = int(doc_link.rpartition("-")[2])
    passage = searcher.document(SAMPLE_FILE.name).passage(passage_id)
    hit_text = "".join(re.findall(r'<span class="hit-passage">(.*?)</span>(?=<|$)', html))
    assert html_lib.unescape(re.sub(r"<[^>]+>", "", hit_text)) == searcher.document(SAMPLE_FILE.name).text[
        passage.start : passage.end]
    assert f'id="passage-{passage_id}"' in html
    marks = re.findall(r'<mark id="m-(\d+)"><a href="#m-(\d+)">([^<]+)</a></mark>', html)
    assert marks and all(int(b) == int(a) % len(marks) + 1 for a, b, _ in marks)  # each match leads to the next
    assert all(word in QUERY for _, _, word in marks)
    back = [html_lib.unescape(u) for u in re.findall(r'class="doc-back"><a href="([^"]+)"', html)]
    assert back and urllib.parse.parse_qs(urllib.parse.urlsplit(back[0]).query) == {
        "q": [QUERY], "mode": ["lexical"], "page": ["1"], "lang": ["en"]}
    assert "Back to the results" in html and "document.js" in html
    switch = [html_lib.unescape(u) for u in re.findall(r'href="([^"]+)"[^>]*rel="alternate"', html)]
    assert switch[0].startswith("/doc?") and "lang=zh" in switch[0] and f"passage={passage_id}" in switch[0]


def test_document_page_in_chinese_has_contents_and_metadata(client, searcher):
    document = searcher.document(SAMPLE_FILE.name)
    html = client.get(_url("/doc", id=SAMPLE_FILE.name, lang="zh")).get_data(as_text=True)
    assert "索引时间" in html and document.name in html
    for heading in document.outline:
        assert f'href="#passage-{heading.passage_id}"' in html
    assert "<mark" not in html and "hit-passage" not in html  # no query, no passage: nothing marked


def test_similar_page_uses_the_result_layout(client, hit, searcher):
    html = client.get(_url("/similar", passage_id=hit.passage_id, same_document=1)).get_data(as_text=True)
    expected = searcher.similar(hit.passage_id, k=10, same_document=True)
    assert html.count('<li class="result"') == len(expected) == 10
    assert _links(html, "/doc")[0].startswith(f"/doc?id={urllib.parse.quote(expected[0].doc_id)}")
    others = client.get(_url("/similar", passage_id=hit.passage_id)).get_data(as_text=True)
    assert '<li class="result"' not in others and "same_document=1" in others


@pytest.mark.parametrize("path", ["/doc?id=", "/similar?passage_id="])
@pytest.mark.parametrize("raw", [urllib.parse.quote(i, safe="") for i in HOSTILE_IDS] + RAW_IDS)
def test_hostile_ids_are_a_404_page(client, path, raw):
    response = client.get(path + raw, headers={"Accept-Language": "en"})
    html = response.get_data(as_text=True)
    if path == "/doc?id=":
        assert response.status_code == 404 and "No such document or passage in the index" in html
    else:  # a passage id is a number: anything else is a bad request
        assert response.status_code == 400
    assert "<script>alert" not in html and "root:" not in html and response.mimetype == "text/html"


def test_unknown_passage_of_a_known_document_is_404(client):
    assert client.get(_url("/doc", id=SAMPLE_FILE.name, passage=9_999_999)).status_code == 404
    assert client.get(_url("/similar", passage_id=9_999_999)).status_code == 404
