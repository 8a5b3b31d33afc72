"""The document page in real headless Chromium: from a hit to its passage and back, and hostile ids.

``souyi serve`` runs as a real process over the sample index.  Screenshots go
to the test's tmp_path; with ``SOUYI_SCREENSHOT_DIR=docs`` they are kept as
docs/screenshot-document.png and docs/screenshot-document-phone.png.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

import pytest
from browser_support import launch, require_chromium

require_chromium()

from playwright.sync_api import expect, sync_playwright  # noqa: E402  (only once Chromium is known to be there)
from test_browser import DESKTOP, PHONE, query_of, shoot  # noqa: E402
from test_web import running_server, stop_with_ctrl_c  # noqa: E402

ZH_QUERY = "杭州软件服务外包"
EN_QUERY = "software outsourcing in Hangzhou"
HOSTILE_IDS = ["../../etc/passwd", "<script>alert(1)</script>", "\x00", "x" * 3000, "%FF%FE", "%C0%AF..%C0%AF"]

IN_VIEW = """el => { const r = el.getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight + r.height && r.top < window.innerHeight; }"""


def _open_hit(page, base: str, query: str, rank: int, lang: str) -> str:
    """Search, click hit ``rank``'s title, check its passage is marked and in view; the result page's URL."""
    page.goto(base + "/?" + urllib.parse.urlencode({"q": query, "mode": "hybrid", "k": 5, "page": 1, "lang": lang}))
    results_url = page.url
    title = page.locator(".result-title a").nth(rank - 1)
    passage = query_of(title.get_attribute("href"))["passage"][0]
    title.click()
    page.wait_for_url(lambda url: "/doc?" in url and url.endswith(f"#passage-{passage}"))
    marked = page.locator(".hit-passage").first
    expect(marked).to_be_visible()
    assert marked.evaluate(IN_VIEW), "the hit passage is scrolled into view"
    return results_url


@dataclass
class Watched:
    """A page and what must not happen on it: console errors (CSP violations), script errors, dialogs and
    requests leaving the origin."""

    page: object
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


def watch(context, base: str) -> Watched:
    seen = Watched(context.pages[0] if context.pages else context.new_page())
    seen.page.on("console", lambda msg: seen.problems.append(msg.text) if msg.type in ("error", "warning") else None)
    seen.page.on("pageerror", lambda exc: seen.problems.append(str(exc)))
    seen.page.on("dialog", lambda dialog: (seen.dialogs.append(dialog.message), dialog.dismiss()))
    context.on("request", lambda request: None if request.url.startswith(base) else seen.foreign.append(request.url))
    return seen


@pytest.fixture()
def base(sample_index, cli_env, tmp_path):
    """``souyi serve`` over the sample index, stopped with Ctrl-C after the test; its base URL."""
    log = tmp_path / "serve.log"
    with running_server(cli_env, log, "--index", str(sample_index)) as (url, proc):
        yield url
        stop_with_ctrl_c(proc, log)


def test_from_a_hit_to_its_passage_and_back(base, tmp_path):
    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path / "profile", locale="zh-CN", viewport=PHONE)
        try:
            seen = watch(context, base)
            page = seen.page

            # Chinese query: the passage is marked and in view; n / p step through the matches.
            results_url = _open_hit(page, base, ZH_QUERY, rank=3, lang="zh")
            marks = page.locator("mark[id^='m-']")
            assert marks.count() > 2 and all(word in ZH_QUERY for word in marks.all_inner_texts())
            page.keyboard.press("n")
            page.wait_for_url(lambda url: url.endswith("#m-1"))
            page.keyboard.press("n")
            page.wait_for_url(lambda url: url.endswith("#m-2"))
            assert page.locator("#m-2").evaluate(IN_VIEW)
            page.keyboard.press("p")
            page.wait_for_url(lambda url: url.endswith("#m-1"))
            shoot(page, tmp_path, "screenshot-document-phone.png")
            page.locator(".doc-back a").click()
            page.wait_for_url(lambda url: "/doc" not in url)
            assert query_of(page.url) == query_of(results_url)  # the same query, mode, k and page
            expect(page.locator(".result").first).to_be_visible()

            # English query over the Chinese report (no words in common): the passage is still marked and in view.
            page.set_viewport_size(DESKTOP)
            results_url = _open_hit(page, base, EN_QUERY, rank=2, lang="en")
            expect(page.locator(".doc-back a")).to_have_text("← Back to the results")
            page.go_back()
            page.wait_for_url(results_url)
            expect(page.locator(".result").first).to_be_visible()
            page.goto(base + "/doc?" + urllib.parse.urlencode({"id": "zhejiang-2008-software-report.txt", "passage": 12,
                                                                  "q": ZH_QUERY, "lang": "en"}) + "#passage-12")
            assert page.locator(".hit-passage").first.evaluate(IN_VIEW)
            shoot(page, tmp_path, "screenshot-document.png")
        finally:
            context.close()
    assert not [p for p in seen.problems if "Failed to load resource" not in p], seen.problems
    assert seen.dialogs == [] and seen.foreign == []


def test_hostile_ids_in_chromium(base, tmp_path):
    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path / "profile", locale="en")
        try:
            seen = watch(context, base)
            page = seen.page
            for doc_id in HOSTILE_IDS:
                raw = doc_id if doc_id.startswith("%") else urllib.parse.quote(doc_id, safe="")
                for path in ("/doc?id=", "/api/document?id="):
                    response = page.goto(base + path + raw + "&q=" + urllib.parse.quote("<img src=x onerror=alert(2)>"))
                    assert response.status == 404, (path, doc_id)
                    page.wait_for_load_state("networkidle")
                expect(page.locator("body")).not_to_contain_text("root:")
            page.goto(base + "/doc?id=" + urllib.parse.quote("<script>alert(1)</script>"))
            expect(page.locator("main h1")).to_have_text("No such document or passage in the index")
        finally:
            context.close()
    assert seen.dialogs == [], seen.dialogs
    assert seen.foreign == [], seen.foreign
