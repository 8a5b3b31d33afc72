"""What :meth:`~search.searcher.Searcher.query` returns: a page of hits, the total and facet counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from indexer.records import PassageRecord

from .hits import Hit
from .store import field_text
from .syntax import ParsedQuery

#: Values listed per facet field, most frequent first.
FACET_VALUES = 20

Facets = dict[str, list[tuple[str, int]]]


@dataclass(frozen=True)
class Results:
    """One page of a search, with what the whole result list holds.

    ``total`` is the length of the result list the page was cut from (at most
    :data:`~search.query.MAX_DEPTH`: paging never goes deeper); ``facets``
    maps each field asked for to ``(value, count)`` pairs over that whole list,
    most frequent first (ties by value), at most :data:`FACET_VALUES` each;
    ``also_searched`` the query's dictionary translations searched too
    (:mod:`search.translate`; empty when the bridge did not cross languages).
    """

    hits: tuple[Hit, ...]
    total: int
    facets: Facets = field(default_factory=dict)
    parsed: ParsedQuery | None = None
    also_searched: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The JSON-ready form: hits as :meth:`Hit.to_dict`, facets as ``[value, count]`` pairs."""
        return {
            "hits": [hit.to_dict() for hit in self.hits],
            "total": self.total,
            "facets": {name: [[value, count] for value, count in pairs] for name, pairs in self.facets.items()},
        }


def facet_value(record: PassageRecord, name: str) -> str | None:
    """The value of field ``name`` of a passage's document, as filters take it (None: absent or a list)."""
    if name == "doc":
        return record.doc_name
    if name == "title":
        return record.title
    value = record.meta.get(name)
    return None if value is None or isinstance(value, (list, dict)) else field_text(value)


def count_facets(records: Iterable[PassageRecord], names: Sequence[str]) -> Facets:
    """For each field in ``names``, its most frequent values over ``records`` with their counts."""
    counters = {name: Counter() for name in names}
    for record in records:
        for name, counter in counters.items():
            value = facet_value(record, name)
            if value is not None:
                counter[value] += 1
    return {
        name: sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:FACET_VALUES]
        for name, counter in counters.items()
    }
