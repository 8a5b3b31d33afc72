"""Validation of what a caller asks for, at the boundary, with clear errors."""

from __future__ import annotations

import re
from collections.abc import Sequence

from indexer.errors import BadQuery

#: Longest query accepted, in characters.  Longer input is refused rather than
#: silently cut: a pasted page is almost always a mistake, and the model would
#: only read its first 512 tokens anyway.
MAX_QUERY_CHARS = 1000
#: Deepest result asked for (``offset + k``); bounds the work one query does.
MAX_DEPTH = 1000
MODES = ("hybrid", "dense", "lexical")

# Control characters, lone surrogates and non-characters carry no meaning for
# search and break some tokenizers; they become spaces.
_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean_query(query: object) -> str:
    """Return the query ready for retrieval, or raise :class:`BadQuery`."""
    if not isinstance(query, str):
        raise BadQuery("the query must be a string")
    if len(query) > MAX_QUERY_CHARS:
        raise BadQuery(f"the query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    text = " ".join(_JUNK.sub(" ", query).split())
    if not text:
        raise BadQuery("the query is empty; type some words to search for")
    return text


def check_paging(k: object, offset: object) -> tuple[int, int]:
    """Validate ``k`` and ``offset``; return them as ints."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BadQuery(f"k must be a positive whole number, got {k!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise BadQuery(f"offset must be a whole number >= 0, got {offset!r}")
    if k + offset > MAX_DEPTH:
        raise BadQuery(f"offset + k must be at most {MAX_DEPTH}, got {k + offset}")
    return k, offset


def check_mode(mode: object) -> str:
    """Validate the retrieval mode."""
    if mode not in MODES:
        raise BadQuery(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


#: Most filter conditions one search may carry.
MAX_FILTERS = 20


def parse_filters(items: Sequence[str], separator: str = "=") -> dict[str, object]:
    """``["k=v", "k=w", "x=y"]`` -> ``{"k": ["v", "w"], "x": "y"}`` (a repeated key means any of).

    The CLI writes ``KEY=VALUE``; URLs use ``KEY:VALUE``.  Raises :class:`BadQuery`.
    """
    if len(items) > MAX_FILTERS:
        raise BadQuery(f"at most {MAX_FILTERS} filters, got {len(items)}")
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition(separator)
        if not sep or not key.strip():
            raise BadQuery(f"a filter is KEY{separator}VALUE, got {item[:80]!r}")
        key = key.strip()
        previous = out.get(key)
        out[key] = value if previous is None else [*(previous if isinstance(previous, list) else [previous]), value]
    return out
