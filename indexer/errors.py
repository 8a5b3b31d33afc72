"""The one exception tree of souyi.

Every error a user can cause or meet derives from :class:`SearchError`, so the
CLI and the web app map errors to exit codes and HTTP statuses in one place
each, and callers can catch the whole family with one ``except``.  It lives in
``indexer`` because the index format and the indexer raise most of these; the
``search`` package re-exports all of them.
"""

from __future__ import annotations


class SearchError(Exception):
    """Base class of every error souyi raises on purpose."""

    #: HTTP status the web layer answers with; the CLI maps it to an exit code.
    status = 500


class BadQuery(SearchError, ValueError):
    """The query or one of its parameters is unusable (empty, too long, bad k)."""

    status = 400


class IndexNotFound(SearchError, FileNotFoundError):
    """No index at the given directory."""

    status = 503


class IndexFormatError(SearchError):
    """The directory holds something that is not a readable souyi index."""

    status = 503


class ModelMismatch(SearchError):
    """The index was built with another embedding model than the one asked for."""

    status = 409


class DocumentError(SearchError):
    """A source document cannot be read or decoded; the message names the file."""

    status = 422


class ModelUnavailableError(SearchError):
    """The embedding model cannot be loaded on this machine."""

    status = 503


class IndexBusy(SearchError):
    """Another process is writing the index; only one writer at a time."""

    status = 409


class NotInIndex(SearchError, LookupError):
    """A document or passage id that the open index does not hold (ids come only from the index)."""

    status = 404


class DocumentNotFound(NotInIndex):
    """No document of that name in the index's committed state."""


class PassageNotFound(NotInIndex):
    """No passage of that id in the index's committed state."""
