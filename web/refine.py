"""Links that narrow or widen the current search: removable constraint chips and facet values.

Every link is an ordinary URL of the search page (no JavaScript): a chip's is
the same search without that constraint, a facet value's the same search
with ``field:"value"`` added.  Values come from documents, so they reach the
template as text and are escaped there; a value holding a double quote cannot
be written as ``field:"value"`` and is shown without a link.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for

from search import ParsedQuery, Results


@dataclass(frozen=True)
class Chip:
    """One constraint in force: what was typed, and the search without it."""

    label: str
    remove_url: str


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet field, its count, and the search narrowed to it (None: not expressible)."""

    value: str
    count: int
    url: str | None
    active: bool


def chips(parsed: ParsedQuery | None, kept: dict[str, str]) -> list[Chip]:
    """The constraints of ``parsed``, each with the link that removes it (``kept``: the other URL parameters)."""
    if parsed is None:
        return []
    return [
        Chip(parsed.source[c.span[0] : c.span[1]], _search_url(parsed.without(c.span), kept))
        for c in parsed.constraints
    ]


def facet_values(results: Results, kept: dict[str, str]) -> dict[str, list[FacetValue]]:
    """Each facet field's values with counts, and the link that adds ``field:"value"`` to the query."""
    parsed = results.parsed
    source = parsed.source if parsed is not None else ""
    active = {(c.field, c.value) for c in parsed.fields} if parsed is not None else set()
    out = {}
    for name, pairs in results.facets.items():
        out[name] = [
            FacetValue(value, count, None if '"' in value or (name, value) in active
                       else _search_url(f'{source} {name}:"{value}"', kept), (name, value) in active)
            for value, count in pairs
        ]
    return out


def _search_url(query: str, kept: dict[str, str]) -> str:
    """The search page for ``query`` with the other kept parameters (first page)."""
    args = {key: value for key, value in kept.items() if key not in ("q", "page")}
    if query.strip():
        args["q"] = query.strip()
    return url_for("views.index", **args)
