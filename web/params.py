"""Request parameters checked at the boundary, with messages a person can act on.

Both the page and the JSON API read ``q``, ``mode``, ``k`` and ``offset``
(or ``page``) through these functions.  A bad value raises
:class:`~search.BadQuery`, which the app's one error handler turns into a 400;
the search API checks again, so nothing unchecked reaches it either way.
"""

from __future__ import annotations

import re

from search import MAX_DEPTH, MAX_QUERY_CHARS, MODES, BadQuery, parse_filters

#: The names the interface uses for the modes, accepted as well as the API's.
MODE_ALIASES = {"semantic": "dense", "keyword": "lexical"}

_WHOLE_NUMBER = re.compile(r"[0-9]{1,7}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class EmptyQuery(BadQuery):
    """The query has no words; the page answers it with a hint, not a technical error."""


def parse_query(raw: str | None) -> str:
    """The query as typed (the search API cleans it); missing, blank or too long is a BadQuery."""
    if raw is None or not raw.strip():
        raise EmptyQuery("the query is empty: give it in the q parameter, e.g. ?q=阿里巴巴在哪里上市")
    if len(raw) > MAX_QUERY_CHARS:
        raise BadQuery(f"the query is {len(raw)} characters long; the limit is {MAX_QUERY_CHARS}")
    return raw


def given(name: str, raw: str | None) -> str | None:
    """``raw`` unless it is present but empty (the JSON API's parameters are left out for their default).

    The page's forms may send empty fields; an API client sending ``k=`` has a
    bug worth hearing about, and the OpenAPI description says so.
    """
    if raw == "":
        raise BadQuery(f"{name} is empty; leave it out for its default")
    return raw


def parse_mode(raw: str | None, default: str = "hybrid") -> str:
    """One of :data:`search.MODES` (or its interface name, see :data:`MODE_ALIASES`)."""
    if raw is None or raw == "":
        return default
    mode = MODE_ALIASES.get(raw, raw)
    if mode not in MODES:
        choices = ", ".join([*MODES, *MODE_ALIASES])
        raise BadQuery(f"mode must be one of {choices}; got {raw!r}")
    return mode


def parse_int(name: str, raw: str | None, default: int | None, low: int, high: int) -> int | None:
    """A whole number in ``[low, high]``; ``default`` when absent; anything else is a BadQuery."""
    if raw is None or raw == "":
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise BadQuery(f"{name} must be a whole number from {low} to {high}; got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadQuery(f"{name} must be from {low} to {high}; got {value}")
    return value


def check_depth(k: int, offset: int) -> None:
    """Refuse paging past :data:`search.MAX_DEPTH`, the deepest result the engine serves."""
    if offset + k > MAX_DEPTH:
        raise BadQuery(f"offset + k must be at most {MAX_DEPTH}; got {offset + k}")


def parse_filter_args(items: list[str]) -> dict[str, object]:
    """``filter=KEY:VALUE`` parameters as the search API takes them; control characters are refused.

    A NUL in a field name reaches SQLite's JSON path syntax and fails there
    (a 500); no field name or value has a reason to hold control characters.
    """
    for item in items:
        if _CONTROL.search(item):
            raise BadQuery(f"a filter must not contain control characters; got {item[:80]!r}")
    return parse_filters(items, separator=":")


def parse_facets(raw: str | None) -> list[str]:
    """``facets=doc,year``: the fields to count results by (empty when absent); control characters are refused."""
    if not raw:
        return []
    if _CONTROL.search(raw):
        raise BadQuery(f"facets must not contain control characters; got {raw[:80]!r}")
    return [name.strip() for name in raw.split(",") if name.strip()]
