"""Reading what was found on the web: ``/api/document``, ``/api/similar``, the ``/doc`` and ``/similar`` pages.

Real index, real model, Flask's test client; hostile ids go through both the
API and the pages.
"""

from __future__ import annotations

import urllib.parse

import pytest
from test_web import error_json

from conftest import SAMPLE_FILE
from web import create_app
from web.openapi_reading import DOCUMENT_PROPERTIES

HOSTILE_IDS = ["../../etc/passwd", "/etc/passwd", "<script>alert(1)</script>", "a\x00b", "x" * 5000,
               "..%2F..%2Fetc%2Fpasswd"]
#: Percent-encoded query strings: a NUL, invalid UTF-8 bytes, an over-long UTF-8 form of '/'.
RAW_IDS = ["%00", "%FF%FE", "%C0%AF..%C0%AFetc", "%ED%A0%80"]


@pytest.fixture(scope="module")
def app(sample_index, searcher):
    return create_app(sample_index, {"SOUYI_SEARCHER": searcher})


@pytest.fixture()
def client(app):
    return app.test_client()


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


@pytest.mark.parametrize("query", ["", "id=", f"id={SAMPLE_FILE.name}&q=", f"id={SAMPLE_FILE.name}&q=" + "字" * 2000])
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
