"""The OpenAPI 3.1 description served at ``/api/openapi.json``.

Written as data next to the code it describes; the limits come from the
search API's own constants, and a test checks that the documented hit fields
are exactly those of ``search.Hit`` and that every documented path exists.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from search import MAX_DEPTH, MAX_FILTERS, MAX_QUERY_CHARS, MODES

from . import openapi_reading, openapi_writing
from .openapi_reading import BLANK, CONTROL, QUERY_PATTERN
from .params import MODE_ALIASES

_INT = {"type": "integer"}
#: ``KEY:VALUE``: a key with a visible character and no colon, then anything; no control characters.
FILTER_PATTERN = f"^[^:{CONTROL}]*[^:{BLANK}][^:{CONTROL}]*:[^{CONTROL}]*$"
#: Facet field names, comma-separated; no control characters.
FACETS_PATTERN = f"^[^{CONTROL}]*$"
_NULLABLE_INT = {"type": ["integer", "null"]}

HIT_PROPERTIES: dict[str, dict[str, Any]] = {
    "passage_id": {**_INT, "description": "Id of the passage in this index."},
    "doc_id": {"type": "string", "description": "The document's file name."},
    "title": {"type": "string", "description": "The document's title (its first line)."},
    "paragraph": {**_INT, "description": "1-based paragraph number of the passage in its document."},
    "start": {**_INT, "description": "Character offset of the passage in the document."},
    "end": {**_INT, "description": "Character offset just past the passage in the document."},
    "text": {"type": "string", "description": "The passage, as plain text (escape it before showing it as HTML)."},
    "score": {"type": "number", "description": "Relevance score in this mode; higher is better."},
    "rank": {**_INT, "description": "1-based rank in the whole result list (offset + position)."},
    "dense_rank": {**_NULLABLE_INT, "description": "Rank given by the semantic retriever, or null."},
    "lexical_rank": {**_NULLABLE_INT, "description": "Rank given by the keyword (BM25) retriever, or null."},
    "highlights": {
        "type": "array",
        "description": "[start, end) character spans of `text` that match the query.",
        "items": {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2},
    },
    "heading": {"type": "string", "description": "The section heading above the passage, or an empty string."},
    "meta": {"type": "object", "description": "The document's metadata fields (souyi add --meta, sidecar JSON)."},
    "answer": {
        "type": ["array", "null"],
        "description": "[start, end) span of `text`: the sentence that best answers the query, or null.",
        "items": _INT, "minItems": 2, "maxItems": 2,
    },
    "translation_highlights": {
        "type": "array",
        "description": "[start, end) character spans of `text` that match the query's translated words.",
        "items": {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2},
    },
}


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@lru_cache(maxsize=4)
def openapi_spec(max_upload_files: int | None = None, private: bool = False) -> dict[str, Any]:
    """The API description as a JSON-ready dict (what this server answers): with the write routes when it
    takes uploads (of at most ``max_upload_files`` documents a request), and the read token's security when
    ``private``."""
    spec = _read_spec()
    writes = max_upload_files is not None
    if writes:
        spec["paths"]["/api/documents"].update(openapi_writing.write_paths(max_upload_files))
        spec["paths"]["/api/jobs/{id}"] = openapi_writing.JOB_PATH
        spec["info"]["description"] += (" The write routes (POST and DELETE /api/documents, /api/jobs) need the "
                                        "write token as a Bearer token.")
    if writes or private:
        schemes = openapi_writing.SECURITY_SCHEMES
        spec["components"]["securitySchemes"] = {
            name: schemes[name] for name in (["writeToken"] if writes else []) + (
                ["readToken", "readPassword"] if private else [])}
    if private:
        spec["security"] = [{"readToken": []}, {"readPassword": []}]
        spec["paths"]["/api/health"]["get"]["security"] = [{}]
        spec["components"]["schemas"]["Health"]["required"] = ["status"]
        spec["info"]["description"] += (" A read token protects every route but /api/health, which then answers "
                                        "only {status: ok}.")
    return spec


def _read_spec() -> dict[str, Any]:
    modes = [*MODES, *MODE_ALIASES]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "souyi (搜义) search API",
            "version": "1",
            "description": "Semantic + full-text passage search over Chinese and English documents. "
            "Errors are JSON objects with status, error and message; a token is never accepted in the URL (400).",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Search the index",
                    "parameters": [
                        {"name": "q", "in": "query", "required": True, "description":
                         f"The query, Chinese or English, at most {MAX_QUERY_CHARS} characters. It may hold "
                         '"exact phrases" (also “…” 「…」), -word and -"phrase" exclusions, doc:NAME, title:VALUE, '
                         "FIELD:VALUE for a metadata field of the index, and ranges FIELD:A..B, FIELD>=X, FIELD<X "
                         "over numbers or ISO dates; a field the index does not hold is text "
                         "(docs/query-syntax.md). Refused with 400 besides what the schema says: a query of nothing "
                         'but empty phrases (""), more than ' f"{MAX_FILTERS} constraints and filter values "
                         "together, and a range over a metadata field whose bound is neither a number nor an ISO "
                         "date.",
                         "schema": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS,
                                    "pattern": QUERY_PATTERN}},
                        {"name": "k", "in": "query", "description": "Number of hits. The result list ends at "
                         f"position {MAX_DEPTH}: k is cut to {MAX_DEPTH} - offset when it asks for more (the answer's "
                         "k says how many were asked for after that).",
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DEPTH, "default": 10}},
                        {"name": "offset", "in": "query", "description": "Hits to skip first (paging).",
                         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_DEPTH - 1, "default": 0}},
                        {"name": "mode", "in": "query", "description":
                         "hybrid (default), dense (alias semantic) or lexical (alias keyword).",
                         "schema": {"type": "string", "enum": modes, "default": "hybrid"}},
                        {"name": "filter", "in": "query", "description":
                         "KEY:VALUE, repeatable: only documents whose name (doc), title or metadata field KEY "
                         f"equals VALUE; a repeated key means any of its values, different keys must all match "
                         f"(at most {MAX_FILTERS}).",
                         "schema": {"type": "array", "maxItems": MAX_FILTERS,
                                    "items": {"type": "string", "pattern": FILTER_PATTERN}}, "explode": True},
                        {"name": "facets", "in": "query", "description":
                         "Comma-separated field names (doc, title or metadata fields): the answer adds total and "
                         f"facets, counted over the whole result list (at most {MAX_DEPTH} passages).",
                         "schema": {"type": "string", "pattern": FACETS_PATTERN}, "example": "doc,year"},
                    ],
                    "responses": {
                        "200": {"description": "The hits, best first.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Results"}}}},
                        "400": _error("A parameter is missing, empty, too long or not a valid value."),
                        "409": _error("The configured model is not the one that built the index."),
                        "413": _error("The request has a body larger than the limit."),
                        "503": _error("The index is missing or unreadable (build it with `souyi index`)."),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "health",
                    "summary": "What is being served",
                    "responses": {
                        "200": {"description": "The index is open.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
                        "503": _error("The index is missing or unreadable."),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This description",
                    "responses": {"200": {"description": "OpenAPI 3.1 document.",
                                          "content": {"application/json": {}}}},
                }
            },
            **openapi_reading.PATHS,
            "/api/documents": dict(openapi_writing.DOCUMENT_LIST_PATH),
        },
        "components": {
            "schemas": {
                "Hit": {"type": "object", "properties": HIT_PROPERTIES, "required": list(HIT_PROPERTIES)},
                "Results": {
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "The query as received."},
                        "mode": {"type": "string", "enum": list(MODES), "description": "The mode used."},
                        "k": _INT,
                        "offset": _INT,
                        "filters": {"type": "object", "description": "The filters applied, by key."},
                        "took_ms": {"type": "number", "description": "Time taken to answer, in milliseconds."},
                        "count": {**_INT, "description": "Number of hits returned (at most k)."},
                        "next_offset": {**_NULLABLE_INT,
                                        "description": "offset of the next page, or null when there is none."},
                        "hits": {"type": "array", "items": {"$ref": "#/components/schemas/Hit"}},
                        "total": {**_INT, "description": f"With facets: the length of the result list (at most "
                                  f"{MAX_DEPTH})."},
                        "facets": {"type": "object", "description": "With facets: per field asked, [value, count] "
                                   "pairs over the result list, most frequent first.",
                                   "additionalProperties": {"type": "array", "items": {
                                       "type": "array", "prefixItems": [{"type": "string"}, _INT]}}},
                        "also_searched": {"type": "array", "items": {"type": "string"},
                                          "description": "The query's dictionary translations, searched too "
                                          "(empty when the query and the passages share a language)."},
                    },
                    "required": ["query", "mode", "k", "offset", "filters", "took_ms", "count", "next_offset",
                                 "hits", "also_searched"],
                },
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "const": "ok"},
                        "passages": _INT,
                        "documents": _INT,
                        "model": {"type": "string", "description": "Embedding model that built the index."},
                        "dim": _INT,
                        "format_version": _INT,
                        "generation": {**_INT, "description": "Committed batch being searched."},
                        "segments": {**_INT, "description": "Segments of the searched generation (embedded "
                                     "store only; `souyi optimize` merges them)."},
                        "analyzer": {"type": "object", "description": "Tokenizer settings of the index."},
                        "translation": {"type": ["object", "null"],
                                        "description": "The translation dictionary recorded when the index was "
                                        "built (name, package, version), or null for an older index."},
                        "backend": {"type": "string", "description": "Storage engine: `embedded` (FAISS + SQLite) "
                                    "or `milvus`."},
                    },
                    "required": ["status", "passages", "documents", "model", "dim", "format_version", "backend"],
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "status": {**_INT, "description": "The HTTP status, repeated."},
                        "error": {"type": "string", "description": "The status's reason phrase."},
                        "message": {"type": "string", "description": "What went wrong and what to do."},
                    },
                    "required": ["status", "error", "message"],
                },
                **openapi_reading.SCHEMAS,
                **openapi_writing.SCHEMAS,
            }
        },
    }
