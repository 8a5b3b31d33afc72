"""souyi's search API.

    from search import Searcher
    s = Searcher.open("my-index")
    for hit in s.search("阿里巴巴在哪里上市", k=10):
        print(hit.rank, hit.doc_id, hit.paragraph, hit.score, hit.text)
"""

from indexer.errors import (
    BadQuery,
    DocumentNotFound,
    IndexFormatError,
    IndexNotFound,
    ModelMismatch,
    ModelUnavailableError,
    NotInIndex,
    PassageNotFound,
    SearchError,
)

from .documents import Document, Heading, Paragraph, Passage
from .hits import Hit
from .query import MAX_DEPTH, MAX_FILTERS, MAX_QUERY_CHARS, MODES, parse_filters
from .results import FACET_VALUES, Results
from .searcher import Searcher
from .syntax import FieldConstraint, ParsedQuery, Phrase, parse

__all__ = [
    "FACET_VALUES",
    "MAX_DEPTH",
    "MAX_FILTERS",
    "MAX_QUERY_CHARS",
    "MODES",
    "BadQuery",
    "Document",
    "DocumentNotFound",
    "Heading",
    "Hit",
    "IndexFormatError",
    "IndexNotFound",
    "ModelMismatch",
    "FieldConstraint",
    "ModelUnavailableError",
    "ParsedQuery",
    "Phrase",
    "Results",
    "NotInIndex",
    "Paragraph",
    "Passage",
    "PassageNotFound",
    "SearchError",
    "Searcher",
    "parse",
    "parse_filters",
]
