"""souyi's indexer: load, decode, split, embed and tokenize documents into an index.

Public API::

    from indexer import build_index
    report = build_index(["reports/"], "my-index")
"""

from .build import BuildReport, build_from_documents, build_index
from .embedding import DEFAULT_MODEL, Embedder, load_embedder
from .errors import (
    BadQuery,
    DocumentError,
    IndexFormatError,
    IndexNotFound,
    ModelMismatch,
    ModelUnavailableError,
    SearchError,
)

__all__ = [
    "DEFAULT_MODEL",
    "BadQuery",
    "BuildReport",
    "DocumentError",
    "Embedder",
    "IndexFormatError",
    "IndexNotFound",
    "ModelMismatch",
    "ModelUnavailableError",
    "SearchError",
    "build_from_documents",
    "build_index",
    "load_embedder",
]
