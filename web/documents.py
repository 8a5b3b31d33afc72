"""The pages for reading what was found: ``/doc`` (a document, one window at a time) and ``/similar``.

A hit's title links to ``/doc?id=DOC&q=QUERY&passage=N#passage-N``: the
window holding passage N is chosen on the server and the browser scrolls to
the fragment, so the passage is in view without JavaScript.  The query,
mode, page and filters of the result page ride along in the URL so that
"back to the results" returns to the same page.  Ids come only from the
index (:meth:`search.Searcher.document`); an unknown id is the 404 page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from flask import Blueprint, Response, request, url_for

from search import Document, Hit

from .doc_view import render_window, window_of, window_starts, windows
from .engine import current_engine
from .params import parse_int, parse_query
from .reading_api import DEFAULT_SIMILAR, MAX_PASSAGE_ID, required
from .views import render_page

bp = Blueprint("documents", __name__)

#: The result page's parameters a document link carries, to lead back to the same results.
RESULT_ARGS = ("q", "mode", "k", "page", "lang", "filter")
#: Headings listed in the table of contents; a document with more lists the first ones (bounds the page size).
MAX_OUTLINE = 500


def result_args() -> dict[str, list[str]]:
    """The current request's result-page parameters (``filter`` may repeat)."""
    return {name: request.args.getlist(name) for name in RESULT_ARGS if name in request.args}


@bp.get("/doc")
def document() -> Response:
    """One window of document ``id``: ``passage`` picks the window and is marked, ``q`` is highlighted."""
    doc_id = required("id")
    query = parse_query(request.args["q"]) if request.args.get("q") else None
    passage_id = parse_int("passage", request.args.get("passage"), None, 0, MAX_PASSAGE_ID)
    return document_page(current_engine().searcher().document(doc_id, query), passage_id)


def document_page(found: Document, passage_id: int | None) -> Response:
    """The page of ``found`` in the current request: the window asked for, or the one holding ``passage_id``."""
    parts = windows(found)
    starts = window_starts(parts)
    passage_starts = {p.passage_id: p.start for p in found.passages}
    hit = None
    if passage_id is not None:
        passage = found.passage(passage_id)
        hit = (passage.start, passage.end)
    default = window_of(starts, hit[0]) if hit else 0
    shown = parse_int("window", request.args.get("window"), default + 1, 1, len(parts)) - 1
    match_href = _match_href(found, starts, shown)
    marked = render_window(found, parts[shown], hit, match_href)
    back = result_args()
    return render_page(
        document=found,
        indexed_at=datetime.fromtimestamp(found.indexed_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        paragraphs=marked.paragraphs,
        marked=marked,
        matches=len(found.highlights),
        first_match_url=match_href(1) if found.highlights else None,
        hit_passage=passage_id,
        window=shown + 1,
        window_count=len(parts),
        prev_window_url=_window_url(shown - 1) if shown > 0 else None,
        next_window_url=_window_url(shown + 1) if shown + 1 < len(parts) else None,
        outline=[(h, _passage_url(h.passage_id, passage_starts, starts, shown)) for h in found.outline[:MAX_OUTLINE]],
        outline_more=max(0, len(found.outline) - MAX_OUTLINE),
        back_url=url_for("views.index", **back) if "q" in back else None,
        switch_keeps_args=True,
    )


@bp.get("/similar")
def similar() -> Response:
    """The passages nearest in meaning to ``passage_id``, in the result list layout."""
    passage_id = parse_int("passage_id", required("passage_id"), None, 0, MAX_PASSAGE_ID)
    same_document = parse_int("same_document", request.args.get("same_document"), 0, 0, 1) == 1
    searcher = current_engine().searcher()
    started = time.perf_counter()
    hits = searcher.similar(passage_id, k=DEFAULT_SIMILAR, same_document=same_document)
    took_ms = (time.perf_counter() - started) * 1000
    return render_page(hits=hits, took_ms=took_ms, page=1, similar_to=passage_id, same_document=same_document,
                       switch_keeps_args=True)


def doc_url(hit: Hit) -> str:
    """The document page of a hit, keeping the current result page's parameters (for the template)."""
    args = result_args()
    return url_for("documents.document", id=hit.doc_id, passage=hit.passage_id, **args,
                   _anchor=f"passage-{hit.passage_id}")


def _match_href(document: Document, starts: list[int], shown: int) -> Callable[[int], str]:
    """The link of match ``n``: its anchor in this window, else the window that holds it (past the last: the first)."""

    def href(number: int) -> str:
        if number > len(document.highlights):
            number = 1
        where = window_of(starts, document.highlights[number - 1][0])
        return f"#m-{number}" if where == shown else _window_url(where, f"m-{number}")

    return href


def _passage_url(passage_id: int, passage_starts: dict[int, int], starts: list[int], shown: int) -> str:
    """The link of a table-of-contents entry: its first passage, in this window or the one holding it."""
    where = window_of(starts, passage_starts[passage_id])
    anchor = f"passage-{passage_id}"
    return f"#{anchor}" if where == shown else _window_url(where, anchor)


def _window_url(index: int, anchor: str | None = None) -> str:
    """This page with window ``index`` (counted from 0) shown."""
    args = {name: request.args.getlist(name) for name in request.args if name != "window"}
    args["window"] = [str(index + 1)]
    return url_for("documents.document", **args, _anchor=anchor)
