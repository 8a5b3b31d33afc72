"""The search page: a plain GET form and server-rendered results.

The page works without JavaScript: the query, mode, page and language are all
in the URL, so a result page can be bookmarked and shared.  Views stay thin:
read the parameters, call the search API, render.  Every document string
reaches the template as text (Jinja2 autoescapes it); highlights are built
from spans by :func:`web.render.highlight`.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, make_response, render_template, request, url_for

from search import MAX_DEPTH, MODES, NotInIndex, SearchError

from . import i18n
from .engine import current_engine
from .params import EmptyQuery, check_depth, parse_int, parse_mode, parse_query
from .refine import chips, facet_values

bp = Blueprint("views", __name__)

#: Most results one page shows (the API allows up to search.MAX_DEPTH).
MAX_PAGE_SIZE = 50


@bp.get("/")
def index() -> Response:
    """Home page without ``q``; result page with it."""
    args = request.args
    mode = parse_mode(args.get("mode"))
    k = parse_int("k", args.get("k"), current_app.config["SOUYI_PAGE_SIZE"], 1, MAX_PAGE_SIZE)
    page = parse_int("page", args.get("page"), 1, 1, MAX_DEPTH)
    offset = (page - 1) * k
    check_depth(k, offset)
    if "q" not in args:
        current_engine().searcher()  # the home page too says when the index is missing
        return render_page()
    query = parse_query(args.get("q"))
    searcher = current_engine().searcher()
    started = time.perf_counter()
    results = searcher.query(query, k=k, mode=mode, offset=offset, facets=current_app.config["SOUYI_FACETS"])
    took_ms = (time.perf_counter() - started) * 1000
    kept = _kept_args()
    return render_page(
        also_searched=results.also_searched,
        query=query,
        hits=list(results.hits),
        took_ms=took_ms,
        page=page,
        total=results.total,
        chips=chips(results.parsed, kept),
        facets=facet_values(results, kept),
        prev_url=_page_url(page - 1) if page > 1 else None,
        next_url=_page_url(page + 1) if offset + k < results.total else None,
    )


def render_page(status: int = 200, **context: Any) -> Response:
    """The page with the parts every state shares (form, language switch, footer)."""
    args = request.args
    lang = i18n.pick_language(args.get("lang"), request.accept_languages)
    other = next(code for code in i18n.LANGUAGES if code != lang)
    searcher = current_engine().current()
    try:
        mode = parse_mode(args.get("mode"))
    except SearchError:
        mode = "hybrid"
    context.setdefault("hits", None)
    html = render_template(
        "page.html",
        lang=lang,
        t=i18n.strings(lang),
        html_lang=i18n.HTML_LANG[lang],
        switch_label=i18n.SWITCH_LABEL[lang],
        switch_lang=i18n.HTML_LANG[other],
        switch_url=_switch_url(other, context.pop("switch_keeps_args", False)),
        home_url=url_for("views.index", **_kept_args(only=("lang",))),
        q=args.get("q", ""),
        mode=mode,
        modes=MODES,
        explicit_lang=args.get("lang") if args.get("lang") in i18n.LANGUAGES else None,
        explicit_k=_valid_k(args.get("k")),
        info=searcher.info() if searcher is not None else None,
        format_ms=_format_ms,
        **context,
    )
    response = make_response(html, status)
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-cache"
    return response


def render_error(status: int, exc: Exception, message: str) -> Response:
    """The page with a notice in place of results (called by :mod:`web.errors`)."""
    t = i18n.strings(i18n.pick_language(request.args.get("lang"), request.accept_languages))
    if isinstance(exc, EmptyQuery):
        error = {"title": t["empty_query_title"], "hint": t["empty_query_hint"], "detail": None, "kind": "empty"}
    else:
        hint = t["error_503_hint"] if status == 503 else None
        title = t["not_in_index"] if isinstance(exc, NotInIndex) else t.get(f"error_{status}", t["error_other"])
        error = {"title": title, "hint": hint, "detail": message, "kind": f"error-{status}"}
    return render_page(status, error=error)


def _kept_args(lang: str | None = None, only: tuple[str, ...] | None = None) -> dict[str, str]:
    """The current query parameters to carry into a link, with ``lang`` replaced when given."""
    keep = only or ("q", "mode", "k", "page", "lang")
    args = {name: request.args[name] for name in keep if name in request.args}
    if lang is not None:
        args["lang"] = lang
    return args


def _switch_url(lang: str, keep_args: bool) -> str:
    """This page in language ``lang``: with all its parameters (``keep_args``), else the result page's."""
    if not keep_args:
        return url_for("views.index", **_kept_args(lang=lang))
    args = {name: request.args.getlist(name) for name in request.args if name != "lang"}
    return url_for(request.endpoint, **args, lang=lang)


def _valid_k(raw: str | None) -> int | None:
    """``k`` to keep in the form: only a valid one, or the next search would fail again."""
    try:
        return parse_int("k", raw, None, 1, MAX_PAGE_SIZE) if raw else None
    except SearchError:
        return None


def _page_url(page: int) -> str:
    args = _kept_args()
    if page > 1:
        args["page"] = str(page)
    else:
        args.pop("page", None)
    return url_for("views.index", **args)


def _format_ms(ms: float) -> str:
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"
