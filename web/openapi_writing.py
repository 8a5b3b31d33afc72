"""The OpenAPI description of the document list and the write routes (merged into :mod:`web.openapi`).

The write paths and the token security schemes are described only when the
server has them (a write token, a read token), so that the description
served is always the API this server answers.
"""

from __future__ import annotations

import copy
from typing import Any

from indexer.jobs import STATES, UPLOAD_LIMITS
from indexer.uploads import OUTCOMES

from .openapi_reading import error_response, object_schema, ok_response
from .uploads import MAX_JOB_ID, MAX_LIST, MAX_OFFSET

_INT = {"type": "integer"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULLABLE_SECONDS = {"type": ["number", "null"]}
_WRITE = [{"writeToken": []}]

_UNAUTHORIZED = error_response("No token, or a token that is not valid (WWW-Authenticate names the scheme).")
_FORBIDDEN = error_response("The read token was sent; this route needs the write token.")
_ACCEPTED = {**ok_response("Queued: the job, at once (its URL also in Location).", "Job"),
             "headers": {"Location": {"description": "/api/jobs/{id}", "schema": {"type": "string"}}}}
_QUEUE_FULL = {**error_response(f"Too many jobs waiting (at most {UPLOAD_LIMITS['SOUYI_MAX_QUEUED_JOBS'][0]} by "
                                "default, souyi serve --max-queued-jobs); try again after Retry-After seconds."),
               "headers": {"Retry-After": {"schema": _INT}}}

DOCUMENT_LIST_PATH: dict[str, Any] = {
    "get": {
        "operationId": "listDocuments",
        "summary": "The index's documents by name, a page at a time",
        "parameters": [
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET,
                                                         "default": 0}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST,
                                                        "default": 100}},
        ],
        "responses": {
            "200": ok_response("One page of documents, by name.", "DocumentList"),
            "400": error_response("offset or limit is not a whole number in range."),
            "503": error_response("The index is missing or unreadable."),
        },
    }
}

def write_paths(max_files: int) -> dict[str, Any]:
    """``POST`` and ``DELETE /api/documents`` for a server taking at most ``max_files`` documents a request."""
    paths = copy.deepcopy(_WRITE_PATHS)
    # not a maxItems: more documents than the bound is the documented 413, not a malformed request (400)
    paths["post"]["description"] += f" At most {max_files:,} documents a request (more: 413)."
    return paths


_WRITE_PATHS: dict[str, Any] = {
    "post": {
        "operationId": "addDocuments",
        "summary": "Add or replace documents: one atomic batch, run as a background job",
        "security": _WRITE,
        "description": "multipart/form-data: one part named `file` per document, its filename the document's name "
        "(its suffix chooses the format: .txt .md .html .htm .pdf .docx); optional fields `replace` (true: replace "
        "a document of that name that came from another source), and `meta` and `meta:NAME`, each a JSON object "
        "of metadata fields (for every document, for document NAME; a field that is not a JSON object is a 400). "
        "Or JSON {documents: [{name, text, meta?}], meta?, replace?}. A document "
        "that cannot be indexed (bad name, binary, too long, a name held by another source) is refused in the "
        "job's outcome while the others go in.",
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}},
                "replace": {"type": "string", "enum": ["true", "false"]}}}},
            "application/json": {"schema": {
                "type": "object", "required": ["documents"],
                "properties": {
                    "documents": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["name", "text"],
                        "properties": {"name": {"type": "string"}, "text": {"type": "string"},
                                       "meta": {"type": "object"}}}},
                    "meta": {"type": "object"},
                    "replace": {"type": "boolean", "default": False},
                }}},
        }},
        "responses": {
            "202": _ACCEPTED,
            "400": error_response("No documents, two with one name, or a malformed body."),
            "401": _UNAUTHORIZED, "403": _FORBIDDEN,
            "413": error_response("The request is larger than --max-upload-bytes, or holds more documents than "
                                  "--max-upload-files."),
            "429": _QUEUE_FULL,
        },
    },
    "delete": {
        "operationId": "removeDocuments",
        "summary": "Remove documents by name: one atomic batch, run as a background job",
        "security": _WRITE,
        "parameters": [{"name": "id", "in": "query", "required": True, "explode": True,
                        "description": "A document name (repeatable). If one names nothing, the job fails and "
                        "nothing is removed.", "schema": {"type": "array", "items": {"type": "string",
                                                                                      "minLength": 1}}}],
        "responses": {"202": _ACCEPTED, "400": error_response("No id given."), "401": _UNAUTHORIZED,
                      "403": _FORBIDDEN, "429": _QUEUE_FULL},
    },
}

JOB_PATH: dict[str, Any] = {
    "get": {
        "operationId": "job",
        "summary": "A job's state, progress and outcome per document",
        "security": _WRITE,
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_JOB_ID}}],
        "responses": {"200": ok_response("The job.", "Job"), "401": _UNAUTHORIZED, "403": _FORBIDDEN,
                      "404": error_response("No job with this id.")},
    }
}

SCHEMAS: dict[str, Any] = {
    "DocumentList": object_schema({
        "total": {**_INT, "description": "Documents in the index."},
        "offset": _INT,
        "limit": _INT,
        "documents": {"type": "array", "items": object_schema({
            "name": {"type": "string", "description": "The document's id (a hit's doc_id)."},
            "title": {"type": "string"},
            "passages": _INT,
            "indexed_at": {"type": "number", "description": "Unix time at which the document was indexed."},
            "meta": {"type": "object"},
        })},
    }),
    "Job": object_schema({
        "id": _INT,
        "kind": {"type": "string", "enum": ["add", "remove"]},
        "state": {"type": "string", "enum": list(STATES), "description": "done only once searches see the batch; "
                  "lost: the server stopped before the batch was committed (send it again)."},
        "submitted_at": {"type": "string", "format": "date-time"},
        "started_at": _NULLABLE_TIME,
        "finished_at": _NULLABLE_TIME,
        "progress": object_schema({"passages_done": _INT, "passages_total": {"type": ["integer", "null"]}}),
        "documents": {"type": "array", "items": object_schema({
            "name": {"type": "string"},
            "outcome": {"type": "string", "enum": list(OUTCOMES)},
            "reason": {"type": ["string", "null"], "description": "Why a document was refused."}})},
        "generation": {"type": ["integer", "null"], "description": "The committed batch holding the job's change."},
        "error": {"type": ["string", "null"], "description": "Why a job failed or was lost."},
        "timings": object_schema({"embedding": _NULLABLE_SECONDS, "commit": _NULLABLE_SECONDS}),
    }),
}

SECURITY_SCHEMES: dict[str, Any] = {
    "writeToken": {"type": "http", "scheme": "bearer", "description": "The write token (souyi serve "
                   "--write-token-file); it also opens the read routes."},
    "readToken": {"type": "http", "scheme": "bearer", "description": "The read token (souyi serve "
                  "--read-token-file), or the write token."},
    "readPassword": {"type": "http", "scheme": "basic", "description": "HTTP Basic: any user name, the read token "
                     "as password (what a browser asks for)."},
}
