"""souyi's indexer: load, decode, split, embed and tokenize documents into an index.

Public API::

    from indexer import add_documents, build_index, remove_documents
    report = build_index(["reports/"], "my-index")        # fresh index
    add_documents(["new-reports/"], "my-index")          # one atomic batch
    remove_documents(["old.txt"], "my-index")
    list_documents("my-index"); check_index("my-index")   # whichever store holds it
    optimize_index("my-index", max_segments=1)           # merge an embedded index's segments
    add_uploads([Upload("notes/a.md", data=raw_bytes)], "my-index")   # documents held in memory
"""

from .build import BuildReport, add_documents, build_from_documents, build_index, remove_documents
from .embedding import DEFAULT_MODEL, Embedder, load_embedder
from .errors import (
    BadQuery,
    DocumentError,
    IndexBusy,
    IndexFormatError,
    IndexNotFound,
    ModelMismatch,
    ModelUnavailableError,
    SearchError,
)
from .stores import check_index, list_documents, optimize_index
from .uploads import Outcome, Upload, UploadReport, add_uploads, remove_named

__all__ = [
    "DEFAULT_MODEL",
    "BadQuery",
    "BuildReport",
    "IndexBusy",
    "DocumentError",
    "Embedder",
    "IndexFormatError",
    "IndexNotFound",
    "ModelMismatch",
    "ModelUnavailableError",
    "SearchError",
    "Outcome",
    "Upload",
    "UploadReport",
    "add_uploads",
    "remove_named",
    "add_documents",
    "build_from_documents",
    "check_index",
    "list_documents",
    "optimize_index",
    "remove_documents",
    "build_index",
    "load_embedder",
]
