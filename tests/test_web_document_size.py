"""The document page stays under 1 MB of HTML however long the document and however many matches.

The page is rendered by the app's own view code (:func:`web.documents.document_page`)
from a 2,000,000-character :class:`search.Document` built in memory: indexing
one with the real model would take minutes, and the page's size depends
only on the document, not on how it was indexed.
"""

from __future__ import annotations

import re

import pytest

from search import Document, Heading, Paragraph, Passage
from web import create_app
from web.documents import document_page

MB = 1_000_000
LENGTH = 2_000_000


def _document(paragraph_chars: int) -> Document:
    """A 2M-character Chinese document, a match on every other character, a heading every 10 passages."""
    line = ("软件" * paragraph_chars)[:paragraph_chars]
    text = "\n".join(line for _ in range(LENGTH // (paragraph_chars + 1) + 1))[:LENGTH]
    spans = [m.span() for m in re.finditer(r"[^\n]+", text)]
    paragraphs = tuple(Paragraph(n, s, e) for n, (s, e) in enumerate(spans, start=1))
    passages = []
    for number, (s, e) in enumerate(spans, start=1):
        passages += [Passage(len(passages), number, a, min(a + 100, e), f"第{len(passages) // 10}节")
                     for a in range(s, e, 100)]
    outline = tuple(Heading(p.heading, p.start, p.passage_id) for p in passages if p.passage_id % 10 == 0)
    highlights = tuple((m.start(), m.end()) for m in re.finditer("软", text))
    return Document("big.txt", "big", {"source": "<script>x</script>"}, 0.0, text, paragraphs, tuple(passages),
                    outline, highlights=highlights)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("none"), {"SOUYI_OPEN_AT_START": False})


@pytest.mark.parametrize("paragraph_chars", [300, LENGTH])  # many short paragraphs; one paragraph of it all
def test_every_window_is_under_one_megabyte_and_together_they_show_the_whole_text(app, paragraph_chars):
    document = _document(paragraph_chars)
    shown = 0
    window, count = 1, None
    while count is None or window <= count:
        with app.test_request_context(f"/doc?id=big.txt&q=软&window={window}"):
            html = document_page(document, None).get_data(as_text=True)
        assert len(html.encode()) < MB
        assert "<script>x</script>" not in html
        text = re.search(r'<div class="doc-text">(.*?)</div>', html, re.S).group(1)
        shown += len(re.sub(r"<[^>]+>|\s", "", text))
        count = int(re.search(r"第 \d+ / (\d+) 部分", html).group(1))
        window += 1
    assert count > 1 and shown == len(document.text.replace("\n", ""))


def test_the_window_holding_the_passage_is_chosen(app):
    document = _document(300)
    passage = document.passages[len(document.passages) // 2]
    with app.test_request_context(f"/doc?id=big.txt&passage={passage.passage_id}"):
        html = document_page(document, passage.passage_id).get_data(as_text=True)
    assert f'id="passage-{passage.passage_id}"' in html and 'class="hit-passage"' in html
