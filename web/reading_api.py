"""The JSON API for reading what was found: ``/api/document`` and ``/api/similar``.

A document is :meth:`search.Document.to_dict` as it is and similar passages
are hits as ``/api/search`` returns them, so the API, ``souyi show --json`` /
``souyi similar --json`` and the Python API show one shape.  Ids come only
from the index: an id it does not hold is a JSON 404 (see :mod:`web.errors`).
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, request

from search import MAX_DEPTH, BadQuery

from .engine import current_engine
from .params import parse_int, parse_query

bp = Blueprint("reading_api", __name__, url_prefix="/api")

DEFAULT_SIMILAR = 10
#: Largest passage id the API reads (``parse_int`` bounds every number it takes).
MAX_PASSAGE_ID = 9_999_999


def required(name: str) -> str:
    """The request parameter ``name``; missing or empty is a 400."""
    value = request.args.get(name)
    if not value:
        raise BadQuery(f"the {name} parameter is required")
    return value


@bp.get("/document")
def document() -> Response:
    """The document ``id`` (a hit's ``doc_id``), with highlight spans of ``q`` when given."""
    doc_id = required("id")
    query = parse_query(request.args["q"]) if request.args.get("q") else None  # empty: none, as on the page
    found = current_engine().searcher().document(doc_id, query)
    return jsonify(found.to_dict())


@bp.get("/similar")
def similar() -> Response:
    """The ``k`` passages nearest in meaning to ``passage_id`` (of other documents unless ``same_document=1``)."""
    started = time.perf_counter()
    passage_id = parse_int("passage_id", required("passage_id"), None, 0, MAX_PASSAGE_ID)
    k = parse_int("k", request.args.get("k"), DEFAULT_SIMILAR, 1, MAX_DEPTH)
    same_document = parse_int("same_document", request.args.get("same_document"), 0, 0, 1) == 1
    hits = current_engine().searcher().similar(passage_id, k=k, same_document=same_document)
    return jsonify(
        passage_id=passage_id,
        k=k,
        same_document=same_document,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        count=len(hits),
        hits=[hit.to_dict() for hit in hits],
    )
