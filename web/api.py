"""The read-only JSON API: ``/api/search``, ``/api/health`` and its OpenAPI description.

Hits are ``search.Hit.to_dict()`` as they are, so the API, the CLI's ``--json``
and the Python API show one shape.  Errors are answered by :mod:`web.errors`.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify, request

from search import MAX_DEPTH

from .auth import corpus_is_private
from .engine import current_engine
from .openapi import openapi_spec
from .params import given, parse_facets, parse_filter_args, parse_int, parse_mode, parse_query

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_K = 10


@bp.get("/search")
def search() -> Response:
    """The ``k`` best passages for ``q`` after ``offset``, in ``mode``, within ``filter=KEY:VALUE`` (repeatable)."""
    started = time.perf_counter()  # took_ms covers the whole answer: checks, (re)opening, search
    args = request.args
    query = parse_query(args.get("q"))
    mode = parse_mode(given("mode", args.get("mode")))
    k = parse_int("k", given("k", args.get("k")), DEFAULT_K, 1, MAX_DEPTH)
    offset = parse_int("offset", given("offset", args.get("offset")), 0, 0, MAX_DEPTH - 1)
    k = min(k, MAX_DEPTH - offset)  # the result list ends at MAX_DEPTH: a page past it is cut, not refused
    filters = parse_filter_args(args.getlist("filter"))
    facets = parse_facets(args.get("facets"))
    searcher = current_engine().searcher()
    counted = {}
    if facets:  # the whole result list is ranked: its length and facet counts come with the page
        results = searcher.query(query, k=k, mode=mode, offset=offset, filters=filters, facets=facets)
        hits, counted = list(results.hits), {"total": results.total, "facets": results.to_dict()["facets"]}
        also = results.also_searched
    else:
        hits = searcher.search(query, k=k, mode=mode, offset=offset, filters=filters)
        also = searcher.also_searched(query, filters) if mode != "dense" else ()
    more = len(hits) == k and offset + k < min(MAX_DEPTH, searcher.size)
    return jsonify(
        **counted,
        query=query,
        mode=mode,
        k=k,
        offset=offset,
        filters=filters,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        count=len(hits),
        next_offset=offset + k if more else None,
        hits=[hit.to_dict() for hit in hits],
        also_searched=list(also),
    )


@bp.get("/health")
def health() -> Response:
    """What is being served: passage and document counts, model, index format (503 if nothing).

    Open to everyone; with a read token set it says only that the server is up (nothing of the corpus).
    """
    if corpus_is_private():
        return jsonify(status="ok")
    info = current_engine().searcher().info()
    return jsonify(status="ok", **info)


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    config = current_app.config
    files = config["SOUYI_MAX_UPLOAD_FILES"] if config["SOUYI_WRITE_TOKEN"] else None
    return jsonify(openapi_spec(max_upload_files=files, private=bool(config["SOUYI_READ_TOKEN"])))
