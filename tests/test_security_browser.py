"""Hostile documents and requests against ``souyi serve``, in real headless Chromium and over HTTP.

Documents carrying ``<script>``, event-handler attributes, ``javascript:``
URLs and CSS that would fetch from elsewhere are indexed as they are and
searched; the result pages must stay inert: no dialog opens and no request
leaves the server's own origin.  Path-like request parameters never reach
the file system, and every response carries the security headers.  (There is
no write API: every method but GET/HEAD is a 405, tested in test_web.py.)
"""

from __future__ import annotations

import urllib.parse

import pytest
from browser_support import launch, require_chromium

from indexer import build_index
from web import SECURITY_HEADERS, create_app

require_chromium()

from playwright.sync_api import sync_playwright  # noqa: E402
from test_web import fetch, running_server  # noqa: E402

EVIL = "http://evil.example"
HOSTILE = f"""港口报告 <script>alert("script")</script>

宁波港吞吐量 <img src=x onerror=alert("img")> 与 <svg onload=alert("svg")> 增长。

舟山港 <a href="javascript:alert('link')">点击</a> <iframe src="{EVIL}/frame"></iframe> 数据。

港口样式 <style>body {{ background: url({EVIL}/css) }}</style> <div style="background:url({EVIL}/inline)">x</div>
@import url({EVIL}/import.css); <link rel=stylesheet href="{EVIL}/link.css">
<meta http-equiv=refresh content="0;url={EVIL}/">

Port report " onmouseover=alert("attr") x=" and '><script src="{EVIL}/x.js"></script> with javascript:alert(1)
"""
#: (query, mode): hybrid shows every passage of the small hostile index; lexical ones aim at single passages.
PAGES = (("港口报告", "hybrid"), ("舟山港 javascript", "lexical"), ("Port report onmouseover", "lexical"))


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    (folder / "hostile.html").write_text(f"<title>{HOSTILE[:40]}</title><body><p>{HOSTILE}</p></body>", "utf-8")
    build_index([folder], folder / "index", embedder=embedder)
    return folder / "index"


def test_hostile_documents_render_inert_in_chromium(hostile_index, cli_env, tmp_path):
    with (
        running_server(cli_env, tmp_path / "serve.log", "--index", str(hostile_index)) as (base, proc),
        sync_playwright() as playwright,
    ):
        context = launch(playwright, tmp_path / "profile", locale="zh-CN")
        dialogs: list[str] = []
        foreign: list[str] = []
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            context.on("request", lambda request: None if request.url.startswith(base) else foreign.append(request.url))
            for query, mode in PAGES:
                page.goto(f"{base}/?" + urllib.parse.urlencode({"q": query, "mode": mode, "k": 20}))
                page.wait_for_load_state("networkidle")
                for link in page.locator(".result a").all():  # no link a document wrote is clickable
                    assert not (link.get_attribute("href") or "").lower().startswith("javascript:")
                page.mouse.move(300, 300)  # hover over the results, for on-mouse-over handlers
            texts = page.locator(".result").all_inner_texts()
            assert texts and any("alert" in text for text in texts)  # the markup is there, as text
        finally:
            context.close()
        for url in ("/", "/?q=港口", "/api/search?q=港口", "/api/nope", "/static/app.js"):  # the real server's headers
            _, headers, _ = fetch(base + urllib.parse.quote(url, safe="/?=&"))
            assert all(headers[name] == value for name, value in SECURITY_HEADERS.items()), (url, headers)
    assert dialogs == [], dialogs
    assert foreign == [], foreign


@pytest.mark.parametrize("path", [
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/static//etc/passwd", "/static/%00", "/api/search?q=../../etc/passwd&lang=../../etc/passwd",
    "/?q=/etc/passwd&mode=../../etc/passwd&lang=/etc/passwd", "/?q=x&k=../../1",
    "/api/search?q=x%00&filter=doc:/etc/passwd",
    "/static/app.js%00.png", "//etc/passwd", "/api/..%2f..%2fetc/passwd",
])
def test_path_like_parameters_never_reach_the_file_system(hostile_index, embedder, path):
    client = create_app(hostile_index, {"SOUYI_EMBEDDER": embedder}).test_client()
    response = client.get(path)
    body = response.get_data(as_text=True)
    assert response.status_code in (200, 308, 400, 404), (path, response.status_code)
    assert urllib.parse.urlsplit(response.headers.get("Location", "/")).netloc in ("", "localhost")  # stays here
    assert "root:x:0:0" not in body and "Traceback" not in body
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
