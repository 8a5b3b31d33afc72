"""The OpenAPI description of ``/api/document`` and ``/api/similar`` (merged into :mod:`web.openapi`).

The document schema's properties are checked by a test against
``search.Document.to_dict()``, as the hit schema is against ``search.Hit``.
"""

from __future__ import annotations

from typing import Any

from search import MAX_DEPTH, MAX_QUERY_CHARS

from .reading_api import MAX_PASSAGE_ID

_INT = {"type": "integer"}
#: What the server takes as blank (Python's whitespace) or drops (control characters and non-characters:
#: search.clean_query), spelled out because JSON Schema's \s is not Python's.  (A URL cannot carry a lone
#: surrogate: invalid UTF-8 is decoded to U+FFFD, a visible character.)
BLANK = "\\x00-\\x20\\x7f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufffe\\uffff"
CONTROL = "\\x00-\\x1f\\x7f"
#: A query needs one character that is neither blank nor dropped (a pattern matches anywhere in the string).
QUERY_PATTERN = f"[^{BLANK}]"
_SPANS = {"type": "array", "items": {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2}}


def object_schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def ok_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


DOCUMENT_PROPERTIES: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "description": "The document's id: a hit's `doc_id`."},
    "title": {"type": "string", "description": "The document's title."},
    "metadata": {"type": "object", "description": "The document's metadata fields."},
    "indexed_at": {"type": "number", "description": "Unix time at which the document was indexed."},
    "text": {"type": "string", "description": "The decoded text; every offset below points into it. Plain text: "
             "escape it before showing it as HTML."},
    "paragraphs": {"type": "array", "description": "Non-empty lines, numbered from 1 as a hit's `paragraph`.",
                   "items": object_schema({"number": _INT, "start": _INT, "end": _INT})},
    "passages": {"type": "array", "description": "The passages (possible hits) in text order.",
                 "items": object_schema({"passage_id": _INT, "paragraph": _INT, "start": _INT, "end": _INT,
                                   "heading": {"type": "string"}})},
    "outline": {"type": "array", "description": "Section headings: text, offset, first passage below it.",
                "items": object_schema({"text": {"type": "string"}, "offset": _INT, "passage_id": _INT})},
    "text_rebuilt": {"type": "boolean", "description": "True when the index keeps no source text (a Milvus index made "
                     "before Milvus indexes kept it) and "
                     "`text` was rebuilt from the passages (docs/milvus.md)."},
    "highlights": {**_SPANS, "description": "[start, end) spans of `text` matching `q` (empty without `q`)."},
}

PATHS: dict[str, Any] = {
    "/api/document": {
        "get": {
            "operationId": "document",
            "summary": "One indexed document, to read a hit where it stands",
            "parameters": [
                {"name": "id", "in": "query", "required": True, "description": "The document's id (a hit's doc_id).",
                 "schema": {"type": "string", "minLength": 1}},
                {"name": "q", "in": "query", "description": "A query whose words `highlights` marks in the text.",
                 "schema": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS,
                            "pattern": QUERY_PATTERN}},
            ],
            "responses": {
                "200": ok_response("The document.", "Document"),
                "400": error_response("id is missing, or q is empty or too long."),
                "404": error_response("The index holds no document with this id."),
                "503": error_response("The index is missing or unreadable."),
            },
        }
    },
    "/api/similar": {
        "get": {
            "operationId": "similar",
            "summary": "Passages nearest in meaning to one passage (its stored vector; the passage excluded)",
            "parameters": [
                {"name": "passage_id", "in": "query", "required": True, "description": "A hit's passage_id.",
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_PASSAGE_ID}},
                {"name": "k", "in": "query", "description": "Number of passages.",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DEPTH, "default": 10}},
                {"name": "same_document", "in": "query", "description": "0 (default): only passages of other "
                 "documents; 1: also those of the passage's own document.",
                 "schema": {"type": "integer", "enum": [0, 1], "default": 0}},
            ],
            "responses": {
                "200": ok_response("The passages, nearest first, as hits.", "Similar"),
                "400": error_response("passage_id is missing or not a whole number, or k is out of range."),
                "404": error_response("The index holds no passage with this id."),
                "503": error_response("The index is missing or unreadable."),
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {
    "Document": object_schema(DOCUMENT_PROPERTIES),
    "Similar": object_schema({
        "passage_id": _INT,
        "k": _INT,
        "same_document": {"type": "boolean"},
        "took_ms": {"type": "number", "description": "Time taken to answer, in milliseconds."},
        "count": {**_INT, "description": "Number of hits returned (at most k)."},
        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
    }),
}
