"""The one place where errors become HTTP responses.

A :class:`~search.SearchError` carries its HTTP status (``BadQuery`` 400,
``IndexNotFound`` 503, ``ModelMismatch`` 409, ...); Werkzeug's HTTP errors
(404, 405, 413, and 500 for a bug) carry theirs.  Both go through
:func:`handle_error`, which answers JSON ``{"status", "error", "message"}``
under ``/api/`` (or to a client that asks for JSON) and the search page with
a notice everywhere else.  A traceback is logged, never sent.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from search import SearchError

logger = logging.getLogger(__name__)

#: The endpoint whose requests carry documents (web.uploads.add).
UPLOAD_ENDPOINT = "uploads.add"

#: Headers of an HTTP error that the answer keeps (what to send instead, when to retry, how to authenticate).
PASSED_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def register(app: Flask) -> None:
    """Install :func:`handle_error` for every error the app can meet."""
    app.register_error_handler(SearchError, handle_error)
    app.register_error_handler(HTTPException, handle_error)


def handle_error(exc: Exception) -> Response:
    """Map ``exc`` to its status and answer in the form the client reads."""
    if isinstance(exc, SearchError):
        status, message = int(exc.status), str(exc)
    elif isinstance(exc, HTTPException):
        status, message = int(exc.code or 500), _http_message(exc)
    else:  # pragma: no cover - Flask wraps anything else in InternalServerError
        status, message = 500, "internal error"
    if status >= 500 and not isinstance(exc, SearchError):
        message = "internal error; the server log has the details"
    headers = {}
    if isinstance(exc, HTTPException):
        given = dict(exc.get_headers())
        headers = {name: given[name] for name in PASSED_HEADERS if name in given}
    if wants_json():
        response = jsonify(status=status, error=_reason(status), message=message)
    else:
        from .views import render_error  # the page lives in views; imported late to avoid a cycle

        response = render_error(status, exc, message)
    response.status_code = status
    response.headers.update(headers)
    return response


def wants_json() -> bool:
    """JSON for the API, and for any client that prefers JSON to HTML."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def check_request_size() -> None:
    """Refuse an oversized body (413) or query string (400) before any view runs.

    Werkzeug enforces ``MAX_CONTENT_LENGTH`` only when a body is read, and no
    view here reads one, so the declared length is checked up front.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.endpoint == UPLOAD_ENDPOINT:  # uploads have their own, larger bound (enforced while reading too)
        limit = request.max_content_length = current_app.config["SOUYI_MAX_UPLOAD_BYTES"]
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"the request body is {request.content_length} bytes; the limit is {limit}")
    url_limit = current_app.config["SOUYI_MAX_URL_QUERY"]
    if len(request.query_string) > url_limit:
        raise BadRequest(f"the query string is {len(request.query_string)} bytes long; the limit is {url_limit}")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _http_message(exc: HTTPException) -> str:
    if exc.code == 404:
        return f"no such page or API route: {request.path}"
    if exc.code == 405:
        return f"{request.method} is not allowed here (allowed: {dict(exc.get_headers()).get('Allow', 'GET')})"
    return exc.description or _reason(int(exc.code or 500))
