"""souyi's web frontend: a search page and a JSON API over the search API (and, with a write token, over
the indexing jobs of :mod:`indexer.jobs`: :mod:`web.uploads`).

    from web import create_app
    app = create_app("my-index")          # any WSGI server can serve it
    # or: souyi serve --index my-index     (waitress, see web.server)

``web`` reads only through the public API of ``search``; its write routes go
through the public job queue of ``indexer.jobs`` (writing is the indexer's
job); nothing in ``search`` or ``indexer`` imports ``web``.  The engine (one :class:`search.Searcher`) lives on the
app, in ``app.extensions["souyi"]``, never in a module global, so several apps
over several indexes can live in one process (tests do this).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response

from indexer.jobs import UPLOAD_LIMITS, JobQueue

from . import api, auth, documents, errors, reading_api, uploads, views
from .engine import Engine
from .render import highlight
from .request import SouyiRequest

logger = logging.getLogger(__name__)

__all__ = ["SETTINGS", "Setting", "create_app"]


@dataclass(frozen=True)
class Setting:
    """One app setting: its config key, default and what it is for."""

    name: str
    default: Any
    help: str


#: Every setting the app reads.  A ``SOUYI_*`` key that is not here is refused
#: at start-up, so a misspelled key is an error instead of a silent default.
SETTINGS = (
    Setting("SOUYI_SEARCHER", None, "an already open search.Searcher to serve (the index is not opened again)"),
    Setting("SOUYI_EMBEDDER", None, "an embedder object to open the index with (saves loading the model again)"),
    Setting("SOUYI_MODEL", None, "model name to open the index with; default: the model recorded in the index"),
    Setting("SOUYI_TRANSLATE", True, "also search a query's dictionary translations across languages "
            "(docs/translation.md); False turns the bridge off"),
    Setting("SOUYI_OPEN_AT_START", True, "open the index in create_app, so the first search is fast"),
    Setting("SOUYI_RETRY_SECONDS", 5.0, "while the index cannot be opened, try again at most this often"),
    Setting("SOUYI_PAGE_SIZE", 10, "results per page on the search page (the k parameter overrides it, 1 to 50)"),
    Setting("SOUYI_FACETS", ("doc",), "fields whose result counts the search page lists beside the results "
            "(doc, title or metadata fields; souyi serve --facet)"),
    Setting("SOUYI_MAX_URL_QUERY", 16 * 1024, "longest query string accepted, in bytes; longer is a 400"),
    Setting("MAX_CONTENT_LENGTH", 16 * 1024, "largest request body accepted, in bytes; larger is a 413 (uploads: "
            "SOUYI_MAX_UPLOAD_BYTES)"),
    Setting("SOUYI_WRITE_TOKEN", None, "the token that turns on the write routes (upload, remove, jobs); without "
            "it they do not exist (souyi serve --write-token-file)"),
    Setting("SOUYI_READ_TOKEN", None, "a token that the page and the read API then need too (HTTP Basic password "
            "or Bearer); /api/health stays open (souyi serve --read-token-file)"),
    Setting("SOUYI_STATE_DIR", None, "the folder of the jobs journal and of uploads while they wait (private); "
            "default: beside the index, named after it with .jobs"),
    *(Setting(name, default, help) for name, (default, help) in UPLOAD_LIMITS.items()),
)

#: Headers on every response.  The policy allows no inline script or style at
#: all: the page's JS and CSS are static files served by the app itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def create_app(index_path: str | os.PathLike[str], config: dict[str, Any] | None = None) -> Flask:
    """The web app over the index at ``index_path``.

    ``config`` holds Flask settings and the ``SOUYI_*`` settings of
    :data:`SETTINGS`.  A missing or unreadable index does not stop the app:
    it answers 503 with the reason and opens the index once it appears.
    """
    settings = _settings(config or {})
    app = Flask(__name__)
    app.request_class = SouyiRequest
    app.config.update(settings)
    app.json.ensure_ascii = False  # Chinese text as text, not \\u escapes
    app.json.sort_keys = False  # hits keep the field order of search.Hit
    model = settings["SOUYI_EMBEDDER"] or settings["SOUYI_MODEL"]
    engine = Engine(index_path, searcher=settings["SOUYI_SEARCHER"], model=model,
                    retry_seconds=float(settings["SOUYI_RETRY_SECONDS"]), translate=bool(settings["SOUYI_TRANSLATE"]))
    app.extensions["souyi"] = engine
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(reading_api.bp)
    app.register_blueprint(documents.bp)
    uploads.install(app, _job_queue(index_path, settings, engine))
    app.add_template_global(documents.doc_url, "doc_url")
    app.add_template_filter(highlight, "highlight")
    app.before_request(auth.check_read_access)
    app.before_request(errors.check_request_size)
    app.after_request(_add_security_headers)
    errors.register(app)
    if settings["SOUYI_OPEN_AT_START"]:
        engine.try_open()
    return app


def _job_queue(index_path: str | os.PathLike[str], settings: dict[str, Any], engine: Engine) -> JobQueue | None:
    """The queue of the write routes, or None without a write token (then they do not exist)."""
    if not settings["SOUYI_WRITE_TOKEN"]:
        return None
    index = Path(index_path)
    state = Path(settings["SOUYI_STATE_DIR"] or index.with_name(index.name + ".jobs"))
    return JobQueue(index, state, on_commit=engine.refresh, max_queued=int(settings["SOUYI_MAX_QUEUED_JOBS"]),
                    max_chars=int(settings["SOUYI_MAX_DOCUMENT_CHARS"]))


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    known = {s.name for s in SETTINGS}
    unknown = sorted(key for key in config if key.startswith("SOUYI_") and key not in known)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if config.get("SOUYI_EMBEDDER") is not None and config.get("SOUYI_MODEL") is not None:
        raise ValueError("give SOUYI_EMBEDDER or SOUYI_MODEL, not both")
    page_size = config.get("SOUYI_PAGE_SIZE", 10)
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= views.MAX_PAGE_SIZE:
        raise ValueError(f"SOUYI_PAGE_SIZE must be a whole number from 1 to {views.MAX_PAGE_SIZE}")
    facets = config.get("SOUYI_FACETS", ())
    if isinstance(facets, str) or not all(isinstance(name, str) and name for name in facets):
        raise ValueError("SOUYI_FACETS must be a list of field names, e.g. ('doc', 'year')")
    for key in ("SOUYI_WRITE_TOKEN", "SOUYI_READ_TOKEN"):
        token = config.get(key)
        if token is not None and (not isinstance(token, str) or not token.strip() or token != token.strip()):
            raise ValueError(f"{key} must be a non-empty string without surrounding spaces")
    if config.get("SOUYI_READ_TOKEN") and config.get("SOUYI_READ_TOKEN") == config.get("SOUYI_WRITE_TOKEN"):
        raise ValueError("the read token and the write token must differ (the read token must not allow writes)")
    for key in UPLOAD_LIMITS:
        value = config.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a whole number of at least 1")
    return {**{s.name: s.default for s in SETTINGS}, **config}


def _add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
