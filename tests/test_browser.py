"""End to end: ``souyi serve`` as a real process, driven in real headless Chromium.

Uses Debian's ``chromium`` (/usr/bin/chromium) through Playwright's Python
package, without Playwright's own browser download (``.ci/run`` installs
both).  Screenshots go to the test's tmp_path; set ``SOUYI_SCREENSHOT_DIR``
(e.g. to ``docs``) to also keep them there, as docs/screenshot-zh.png and
docs/screenshot-en.png are made.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from browser_support import launch, require_chromium

require_chromium()

from playwright.sync_api import expect, sync_playwright  # noqa: E402  (only once Chromium is known to be there)
from test_web import running_server, stop_with_ctrl_c  # noqa: E402

ZH_QUERY = "阿里巴巴在哪里上市"
EN_QUERY = "Where did Alibaba go public?"
ANSWER = "阿里巴巴在香港成功上市"
DESKTOP = {"width": 1200, "height": 1000}
PHONE = {"width": 375, "height": 740}


def shoot(page, tmp_path: Path, name: str) -> Path:
    """A screenshot of the viewport, checked to be a real PNG, kept in SOUYI_SCREENSHOT_DIR if set."""
    path = tmp_path / name
    page.screenshot(path=str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, (name, len(data))
    keep = os.environ.get("SOUYI_SCREENSHOT_DIR")
    if keep:
        shutil.copyfile(path, Path(keep) / name)
    return path


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_search_page_in_headless_chromium(sample_index, cli_env, tmp_path):
    with (
        running_server(cli_env, tmp_path / "serve.log", "--index", str(sample_index)) as (base, proc),
        sync_playwright() as playwright,
    ):
        context = launch(playwright, tmp_path / "profile", locale="zh-CN", viewport=DESKTOP)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            problems: list[str] = []  # CSP violations and script errors show up here
            page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))

            # Chinese interface (from Accept-Language), Chinese query typed into the autofocused box.
            page.goto(base + "/")
            box = page.locator("#q")
            expect(box).to_be_focused()
            expect(page.locator("button[type=submit]")).to_have_text("搜索")
            page.keyboard.type(ZH_QUERY)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: "q=" in url)
            expect(page.locator(".result mark").first).to_be_visible()
            assert query_of(page.url)["q"] == [ZH_QUERY]  # bookmarkable
            expect(box).to_have_value(ZH_QUERY)  # the query stays in the box
            assert "阿里巴巴" in page.locator(".result mark").all_inner_texts()
            expect(page.locator(".result").first).to_contain_text(ANSWER)
            expect(page.locator(".summary")).to_contain_text("毫秒")
            shoot(page, tmp_path, "screenshot-zh.png")

            # Keyboard only: Escape leaves the box, "/" comes back to it.
            page.keyboard.press("Escape")
            expect(box).not_to_be_focused()
            page.keyboard.press("/")
            expect(box).to_be_focused()

            # The language switch keeps the query; then an English question finds the Chinese passage.
            page.locator(".lang-switch a").click()
            expect(page.locator("button[type=submit]")).to_have_text("Search")
            expect(box).to_have_value(ZH_QUERY)
            box.fill(EN_QUERY)
            box.press("Enter")
            page.wait_for_url(lambda url: query_of(url).get("q") == [EN_QUERY])
            expect(page.locator(".result").first).to_be_visible()
            top3 = page.locator(".result .passage").all_inner_texts()[:3]
            assert any(ANSWER in text for text in top3), top3
            assert query_of(page.url)["lang"] == ["en"]
            expect(page.locator("html")).to_have_attribute("lang", "en")
            shoot(page, tmp_path, "screenshot-en.png")

            # A mode chosen with the keyboard: arrow to "Keyword", Enter searches in that mode.
            page.locator("input[name=mode][value=hybrid]").focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: query_of(url).get("mode") == ["lexical"])
            expect(page.locator("input[name=mode][value=lexical]")).to_be_checked()

            # Paging and an empty query, then a phone-width screen with no sideways scrolling.
            page.goto(base + "/?" + "q=信息&k=5&lang=en")
            page.locator("a[rel=next]").click()
            expect(page.locator(".result").first).to_have_attribute("value", "6")
            page.goto(base + "/?q=&lang=en")
            expect(page.locator(".notice")).to_contain_text("Type something to search for")
            page.set_viewport_size(PHONE)
            page.goto(base + "/?" + "q=杭州软件服务外包")
            expect(page.locator(".result mark").first).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            shoot(page, tmp_path, "screenshot-phone.png")

            # No CSP violation or script error happened on any of these pages.
            assert not [p for p in problems if "Failed to load resource" not in p], problems
        finally:
            context.close()
        stop_with_ctrl_c(proc, tmp_path / "serve.log")


SYNTAX_DOCS = {
    "park-2009.txt": ("园区年报\n\n软件园的企业数量继续增长，园区为初创企业提供办公场地和人才公寓。"
                      "电子商务企业也在软件园集聚。"),
    "park-2010.txt": "园区年报\n\n軟件園引进了三家研发中心，軟件園的出口收入创新高。",
    "port-2010.txt": "港口年报\n\n宁波舟山港的集装箱吞吐量创新高，软件园为港口开发了调度系统。",
    "tea-2010.txt": "茶叶\n\n龙井茶通过电子商务平台销售，茶农收入增加。",
}


def test_query_syntax_chips_and_facets_in_chromium(embedder, cli_env, tmp_path):
    """A phrase with an exclusion typed into the box, a facet value clicked, a chip removed: all plain links."""
    from indexer.build import build_index

    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in SYNTAX_DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
        year = name.split("-")[1].split(".")[0]
        (folder / f"{name}.meta.json").write_text(f'{{"year": {year}}}', encoding="utf-8")
    index = tmp_path / "index"
    build_index([folder], index, embedder=embedder)
    serve_args = ("--index", str(index), "--facet", "year", "--facet", "doc")
    with (
        running_server(cli_env, tmp_path / "serve.log", *serve_args) as (base, proc),
        sync_playwright() as playwright,
    ):
        context = launch(playwright, tmp_path / "profile", locale="en-US", viewport=PHONE, java_script_enabled=False)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(base + "/?lang=en")
            page.locator("#q").fill('"软件园" -电子商务')
            page.locator("#q").press("Enter")
            page.wait_for_url(lambda url: "q=" in url)
            expect(page.locator(".chip")).to_have_count(2)
            assert [c.strip() for c in page.locator(".chip span:first-child").all_inner_texts()] == [
                '"软件园"', "-电子商务"]
            docs = page.locator(".result .doc").all_inner_texts()
            assert sorted(docs) == ["park-2010.txt", "port-2010.txt"]  # 軟件園 folds to 软件园; park-2009 excluded
            expect(page.locator(".facet").first).to_contain_text("2010")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

            page.locator(".facet a", has_text="port-2010.txt").click()  # narrow to one document
            page.wait_for_url(lambda url: "doc:" in query_of(url)["q"][0])
            expect(page.locator(".chip")).to_have_count(3)
            assert page.locator(".result .doc").all_inner_texts() == ["port-2010.txt"]

            page.locator(".chip", has_text="-电子商务").click()  # widen again: the exclusion is gone
            page.wait_for_url(lambda url: "电子商务" not in query_of(url)["q"][0])
            expect(page.locator(".chip")).to_have_count(2)
            assert page.locator(".result .doc").all_inner_texts() == ["port-2010.txt"]
            expect(page.locator(".syntax-help summary")).to_have_text("Search syntax")
        finally:
            context.close()
        stop_with_ctrl_c(proc, tmp_path / "serve.log")
