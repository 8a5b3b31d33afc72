"""Feeding the index over HTTP: upload and remove documents as background jobs, follow the jobs, list documents.

``POST /api/documents`` and ``DELETE /api/documents`` queue one atomic batch
each (:mod:`indexer.jobs`) and answer ``202`` with the job at once;
``GET /api/jobs/<id>`` follows it.  These three exist only when the server has
a write token (:mod:`web.auth`); ``GET /api/documents`` is a read route.  A
name sent by a client is only ever a key in the index: the uploaded bytes are
stored under names the server makes up.  docs/api.md describes every field.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge, TooManyRequests

from indexer import list_documents
from indexer.jobs import JobQueue, NewDocument, QueueFull

from .auth import write_route
from .engine import current_engine
from .params import given, parse_int

bp = Blueprint("uploads", __name__, url_prefix="/api")
reading = Blueprint("document_list", __name__, url_prefix="/api")

#: Seconds a client told "queue full" (429) is asked to wait.
RETRY_AFTER = 5
#: The largest job id (SQLite's integer range); a larger one is simply unknown (404).
MAX_JOB_ID = 2**63 - 1
#: Most documents in one page of ``GET /api/documents``, and the largest offset it takes.
MAX_LIST = 1000
MAX_OFFSET = 9_999_999  # the most digits web.params reads


def job_queue() -> JobQueue:
    """The job queue of the app handling the current request."""
    return current_app.extensions["souyi_jobs"]


def install(app: Flask, queue: JobQueue | None) -> None:
    """Add the document list, and with a job queue (a write token is set) the write routes."""
    app.register_blueprint(reading)
    if queue is not None:
        app.extensions["souyi_jobs"] = queue
        app.register_blueprint(bp)


def _accepted(job: int) -> Response:
    response = jsonify(job_queue().get(job))
    response.status_code = 202
    response.headers["Location"] = f"/api/jobs/{job}"
    return response


def _queued(submit) -> Response:  # noqa: ANN001 - a zero-argument callable returning a job id
    try:
        return _accepted(submit())
    except QueueFull as exc:
        refused = TooManyRequests(f"{exc}; try again in {RETRY_AFTER} s", retry_after=RETRY_AFTER)
        raise refused from None


@bp.post("/documents")
@write_route
def add() -> Response:
    """Queue one batch adding the request's documents (multipart files or JSON text)."""
    documents, replace = _json_documents() if request.is_json else _multipart_documents()
    if not documents:
        raise BadRequest("no documents: send files as multipart parts named 'file', or JSON {\"documents\": [...]}")
    limit = current_app.config["SOUYI_MAX_UPLOAD_FILES"]
    if len(documents) > limit:
        raise RequestEntityTooLarge(f"{len(documents)} documents in one request; the limit is {limit}")
    return _queued(lambda: job_queue().submit_add(documents, replace=replace))


@bp.delete("/documents")
@write_route
def remove() -> Response:
    """Queue one batch removing the documents named by ``id`` (repeatable)."""
    names = request.args.getlist("id")
    if not names or not all(names):
        raise BadRequest("name the documents to remove: ?id=NAME (repeatable)")
    return _queued(lambda: job_queue().submit_remove(names))


@bp.get("/jobs/<int:job>")
@write_route
def job(job: int) -> Response:
    """A job's state, progress and outcome per document."""
    found = job_queue().get(job) if job <= MAX_JOB_ID else None
    if found is None:
        raise NotFound(f"no job {job}")
    return jsonify(found)


@reading.get("/documents")
def documents() -> Response:
    """The index's documents by name, a page at a time."""
    offset = parse_int("offset", given("offset", request.args.get("offset")), 0, 0, MAX_OFFSET)
    limit = parse_int("limit", given("limit", request.args.get("limit")), 100, 1, MAX_LIST)
    current_engine().searcher()  # 503 with the reason while there is no index
    stored = sorted(list_documents(current_engine().index_path), key=lambda doc: doc.name)
    page = [{"name": doc.name, "title": doc.title, "passages": doc.passages,
             "indexed_at": doc.indexed_at,
             "meta": doc.meta} for doc in stored[offset:offset + limit]]
    return jsonify(total=len(stored), offset=offset, limit=limit, documents=page)


def _multipart_documents() -> tuple[list[NewDocument], bool]:
    """Files of parts named ``file`` (the filename is the document name), with ``meta`` and ``meta:<name>``."""
    form = request.form
    if not request.files and not form and request.content_length:
        raise BadRequest("no part could be read from the multipart body: it holds no 'file' part, or its part "
                         "headers are not UTF-8 (a file name in another encoding makes the whole body unreadable)")
    common = _meta(form.get("meta", "{}"), "meta")
    documents = []
    for part in request.files.getlist("file"):
        name = part.filename or ""
        if not name:
            raise BadRequest("every part named 'file' needs a filename: the document's name, e.g. reports/2008.txt")
        meta = {**common, **_meta(form.get(f"meta:{name}", "{}"), f"meta:{name}")}
        documents.append(NewDocument(name, part.read(), meta=meta))
    replace = form.get("replace", "false")
    if replace not in ("true", "false"):
        raise BadRequest(f"replace must be true or false; got {replace[:40]!r}")
    return documents, replace == "true"


def _json_documents() -> tuple[list[NewDocument], bool]:
    """``{"documents": [{"name", "text", "meta"?}], "meta"?, "replace"?}``."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("documents"), list):
        raise BadRequest('the JSON body must be an object {"documents": [{"name": ..., "text": ...}, ...]}')
    common = _meta(body.get("meta", {}), "meta")
    replace = body.get("replace", False)
    if not isinstance(replace, bool):
        raise BadRequest("replace must be true or false")
    documents = []
    for number, entry in enumerate(body["documents"]):
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("text"), str)):
            raise BadRequest(f"documents[{number}] must be an object with a string name and a string text")
        meta = {**common, **_meta(entry.get("meta", {}), f"documents[{number}].meta")}
        try:
            text = entry["text"].encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"documents[{number}].text is not valid Unicode (a lone surrogate)") from None
        documents.append(NewDocument(entry["name"], text, is_text=True, meta=meta))
    return documents, replace


def _meta(raw: object, where: str) -> dict:
    """A metadata object given as JSON text (a form field) or as an object (JSON body)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BadRequest(f"{where} must be a JSON object of metadata fields") from None
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be a JSON object of metadata fields")
    return raw
