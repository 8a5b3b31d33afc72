"""The query language: phrases, exclusions and field constraints inside the query text.

The one parser of souyi: :class:`~search.searcher.Searcher`, the CLI, the JSON
API and the search box all hand it the text the user typed, so a query means
the same everywhere (docs/query-syntax.md is the user's reference).

It is *fault tolerant* because people type into it: anything that is not
well-formed syntax is free text, an unbalanced quote included.  ``field:`` is
syntax only for ``doc``, ``title`` and the metadata keys the index actually
holds (``fields``), so URLs, ratios such as ``3:1`` and Chinese text with
colons stay text.  It raises :class:`~indexer.errors.BadQuery` in two cases
only, because guessing would silently return wrong results: a range operand
of a known field that is neither a number nor an ISO date (``year:abc..``),
and more than :data:`~search.query.MAX_FILTERS` constraints.

Every constraint keeps its ``span`` in the query, so the search page can
offer the same search without it (:meth:`ParsedQuery.without`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from indexer.errors import BadQuery

from .query import MAX_FILTERS

#: Fields every index has, besides its documents' metadata keys.
BUILTIN_FIELDS = ("doc", "title")
#: Opening quote -> closing quote: ASCII, and what Chinese keyboards type.
QUOTES = {'"': '"', "“": "”", "「": "」", "『": "』"}

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_FIELD = re.compile(r"([^\s:<>=\"“「『-][^\s:<>=\"“「『]*?)(:|>=|<=|>|<)")
_SPACE = re.compile(r"\s+")

Span = tuple[int, int]


@dataclass(frozen=True)
class Phrase:
    """An exact phrase the hits must contain (or, as an exclusion, must not)."""

    text: str
    span: Span


@dataclass(frozen=True)
class FieldConstraint:
    """``field`` equals ``value``, or (``value`` None) lies between ``low`` and ``high``."""

    field: str
    span: Span
    value: str | None = None
    low: str | None = None
    high: str | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    @property
    def is_range(self) -> bool:
        return self.value is None

    def matches(self, stored: object) -> bool:
        """True when a document whose field holds ``stored`` satisfies this constraint.

        Equality compares text (``year:2009`` matches the number 2009); a
        range compares numbers when its operands are numbers and dates when
        they are ISO dates; a value of the other kind never matches.
        """
        text = str(stored)
        if not self.is_range:
            return text == self.value
        key = _order_key(self.low or self.high or "")
        value = _ordered(text, key)
        if value is None:
            return False
        if self.low is not None:
            low = key(self.low)
            if value < low or (value == low and not self.low_inclusive):
                return False
        if self.high is not None:
            high = key(self.high)
            if value > high or (value == high and not self.high_inclusive):
                return False
        return True


@dataclass(frozen=True)
class ParsedQuery:
    """What a query asks for: free text to rank by, and the constraints every hit must satisfy."""

    source: str  # the query as typed
    text: str  # the free text, constraints removed
    phrases: tuple[Phrase, ...] = ()
    exclusions: tuple[Phrase, ...] = ()  # a word excluded is a one-word phrase
    fields: tuple[FieldConstraint, ...] = ()

    @property
    def constraints(self) -> tuple[Phrase | FieldConstraint, ...]:
        """Every constraint, in the order typed."""
        return tuple(sorted((*self.phrases, *self.exclusions, *self.fields), key=lambda c: c.span))

    @property
    def constrained(self) -> bool:
        return bool(self.phrases or self.exclusions or self.fields)

    def ranking_text(self) -> str:
        """The text ranked by meaning and keywords: the free text and the phrases' words."""
        return " ".join([self.text, *(p.text for p in self.phrases)]).strip()

    def without(self, span: Span) -> str:
        """The query as typed minus the constraint at ``span`` (a removable chip's link)."""
        return " ".join((self.source[: span[0]] + " " + self.source[span[1] :]).split())


def parse(query: str, fields: Collection[str] = ()) -> ParsedQuery:
    """Parse ``query`` for an index whose documents have the metadata keys ``fields``."""
    known = set(BUILTIN_FIELDS) | set(fields)
    words: list[str] = []
    phrases: list[Phrase] = []
    exclusions: list[Phrase] = []
    constraints: list[FieldConstraint] = []
    position = 0
    while position < len(query):
        if query[position].isspace():
            position += 1
            continue
        start = position
        negated = query[position] == "-" and position + 1 < len(query) and not query[position + 1].isspace()
        negated = negated and query[position + 1] != "-"
        body = position + 1 if negated else position
        quoted = _quoted(query, body)
        if quoted is not None:
            text, position = quoted
            target = exclusions if negated else phrases
            if text.strip():
                target.append(Phrase(" ".join(text.split()), (start, position)))
            continue
        end = _word_end(query, position)
        field = None if negated else _field(query, start, end, known)
        if field is not None:
            constraint, position = field
            constraints.append(constraint)
            continue
        position = end
        word = query[body:end]
        if negated and word[0] not in QUOTES:  # -"unbalanced is text
            exclusions.append(Phrase(word, (start, end)))
        else:
            words.append(query[start:end])
    count = len(phrases) + len(exclusions) + len(constraints)
    if count > MAX_FILTERS:
        raise BadQuery(f"at most {MAX_FILTERS} constraints (phrases, exclusions, field filters), got {count}")
    return ParsedQuery(query, " ".join(words), tuple(phrases), tuple(exclusions), tuple(constraints))


def _word_end(query: str, position: int) -> int:
    """End of the whitespace-delimited word at ``position``; a quote opened inside it runs to its close."""
    while position < len(query) and not query[position].isspace():
        quoted = _quoted(query, position)
        position = quoted[1] if quoted is not None else position + 1
    return position


def _quoted(query: str, position: int) -> tuple[str, int] | None:
    """``(inside, end)`` of a balanced quote opening at ``position`` (None: not one)."""
    if position >= len(query):
        return None
    close = QUOTES.get(query[position])
    if close is None:
        return None
    end = query.find(close, position + 1)
    return None if end < 0 else (query[position + 1 : end], end + 1)


def _field(query: str, start: int, end: int, known: set[str]) -> tuple[FieldConstraint, int] | None:
    """The field constraint written in ``query[start:end]``, if that word is one."""
    match = _FIELD.match(query, start, end)
    if match is None or match.group(1) not in known:
        return None
    name, operator = match.groups()
    value_start = match.end()
    quoted = _quoted(query, value_start)
    if quoted is not None and quoted[1] == end:
        value, is_quoted = quoted[0], True
    else:
        value, is_quoted = query[value_start:end], False
    if not value or (not is_quoted and value[0] in QUOTES):  # an unbalanced quote is text
        return None
    span = (start, end)
    metadata = name not in BUILTIN_FIELDS
    if operator == ":":
        low, dots, high = value.partition("..")
        if is_quoted or not metadata or not dots:
            return FieldConstraint(name, span, value=value), end
        if not (low or high):
            return None
        _check_operands(name, low, high)
        return FieldConstraint(name, span, low=low or None, high=high or None), end
    if not metadata:
        return None
    _check_operands(name, value)
    inclusive = operator.endswith("=")
    if operator.startswith(">"):
        return FieldConstraint(name, span, low=value, low_inclusive=inclusive), end
    return FieldConstraint(name, span, high=value, high_inclusive=inclusive), end


def _check_operands(field: str, *operands: str) -> None:
    """Raise :class:`BadQuery` unless the range operands are all numbers or all ISO dates."""
    given = [o for o in operands if o]
    kinds = {_kind(o) for o in given}
    if None in kinds or len(kinds) > 1:
        raise BadQuery(
            f"field {field!r}: a range compares numbers (year:2008..2010) or dates (date>=2010-07-01), "
            f"got {' .. '.join(given)[:80]!r}"
        )


def _kind(operand: str) -> str | None:
    if _NUMBER.fullmatch(operand):
        return "number"
    if _ISO_DATE.fullmatch(operand) and _date(operand) is not None:
        return "date"
    return None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if _ISO_DATE.match(text) else None
    except ValueError:
        return None


def _order_key(operand: str):
    """How values compare for a range whose operands look like ``operand``."""
    return float if _kind(operand) == "number" else _date


def _ordered(text: str, key) -> object | None:
    """``text`` as a comparable value of the range's kind (None: not of that kind)."""
    if key is float:
        return float(text) if _NUMBER.fullmatch(text.strip()) else None
    return _date(text.strip())
