"""The document page's body: a window of the text as paragraphs, built from spans.

A document can be millions of characters long, so the page shows one
*window* of it at a time (:func:`windows`): consecutive paragraphs up to a
character budget, a paragraph longer than the budget cut into parts.  The
window budget and the cap on marked matches per window keep every response
well under the 1 MB of HTML that docs/api.md promises (tests check the bound
on a worst-case document).

Markup is built as on the result page (:mod:`web.render`): the text is cut at
every span boundary (query matches, the hit passage, passage anchors) and each
piece is escaped on its own, so nothing of the document's own text can
become markup.  Matches are numbered across the whole document (``m-1``,
``m-2``, ...), so a match's anchor is the same in every window.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from search import Document

#: Characters of text in one window of the document page.
WINDOW_CHARS = 60_000
#: Matches marked (with an anchor) in one window; more are left as plain text.
MAX_MARKS = 2_000


@dataclass(frozen=True)
class Piece:
    """A run of one paragraph shown in a window (a long paragraph is shown in several pieces)."""

    paragraph: int  # the paragraph's number, as ``Hit.paragraph`` counts
    start: int
    end: int
    continued: bool  # not the paragraph's first piece


def windows(document: Document, budget: int = WINDOW_CHARS) -> list[tuple[Piece, ...]]:
    """The document cut into windows of at most ``budget`` characters of paragraph text, in order."""
    out: list[tuple[Piece, ...]] = []
    current: list[Piece] = []
    used = 0
    for para in document.paragraphs:
        start = para.start
        while start < para.end:
            if used >= budget:
                out.append(tuple(current))
                current, used = [], 0
            end = min(para.end, start + budget - used)
            current.append(Piece(para.number, start, end, start > para.start))
            used += end - start
            start = end
    if current or not out:
        out.append(tuple(current))
    return out


def window_starts(parts: list[tuple[Piece, ...]]) -> list[int]:
    """Where each window begins in the text, for :func:`window_of`."""
    return [w[0].start if w else 0 for w in parts]


def window_of(starts: list[int], offset: int) -> int:
    """Index of the window that holds text offset ``offset`` (the last one before it when between windows)."""
    return max(0, bisect.bisect_right(starts, offset) - 1)


@dataclass(frozen=True)
class Marked:
    """One window rendered: its paragraphs' HTML and how many matches it marked."""

    paragraphs: list[Markup]
    first_match: int | None  # number of the first match marked in the window (matches count from 1)
    last_match: int | None
    capped: bool  # the window holds more matches than :data:`MAX_MARKS`; the rest are not marked


def render_window(document: Document, window: tuple[Piece, ...], hit: tuple[int, int] | None,
                  match_href: Callable[[int], str]) -> Marked:
    """The window's paragraphs as HTML: passage anchors, the ``hit`` span, numbered matches.

    ``match_href(n)`` is the link of match ``n`` (its anchor, or the window
    holding it): each match links to the next one, so the matches can be
    stepped through without JavaScript.
    """
    if not window:
        return Marked([], None, None, False)
    low, high = window[0].start, window[-1].end
    spans = document.highlights  # sorted and merged by search (Document.highlights)
    first = bisect.bisect_left([e for _, e in spans], low + 1)
    last = min(bisect.bisect_left([s for s, _ in spans], high), first + MAX_MARKS)
    numbered = {spans[i][0]: i + 1 for i in range(first, last)}
    marked = spans[first:last]
    anchors = {p.start: p.passage_id for p in document.passages if low <= p.start < high}
    found = _Found(marked, [e for _, e in marked], numbered, anchors, sorted(anchors))
    out = []
    for piece in window:
        inner = _piece_markup(document.text, piece, found, hit, match_href)
        ident = "" if piece.continued else Markup(' id="p-%d"') % piece.paragraph
        out.append(Markup('<p class="para"%s data-n="%d">%s</p>') % (ident, piece.paragraph, inner))
    capped = bisect.bisect_left([s for s, _ in spans], high) > last
    return Marked(out, first + 1 if last > first else None, last if last > first else None, capped)


@dataclass(frozen=True)
class _Found:
    """What a window marks, sorted so that each piece finds its own part by bisection."""

    spans: list[tuple[int, int]]
    ends: list[int]
    numbered: dict[int, int]  # span start -> match number
    anchors: dict[int, int]  # passage start -> passage id
    anchor_starts: list[int]


def _piece_markup(text: str, piece: Piece, found: _Found, hit: tuple[int, int] | None,
                  match_href: Callable[[int], str]) -> Markup:
    """One piece of a paragraph cut at every boundary inside it, each bit escaped on its own."""
    lo, hi = piece.start, piece.end
    cuts = {lo, hi}
    inside = []
    for s, e in found.spans[bisect.bisect_right(found.ends, lo):]:
        if s >= hi:
            break
        inside.append((max(s, lo), min(e, hi)))
        cuts.update(inside[-1])
    if hit is not None:
        cuts.update(x for x in hit if lo < x < hi)
    starts = found.anchor_starts
    cuts.update(starts[bisect.bisect_left(starts, lo) : bisect.bisect_left(starts, hi)])
    bounds = sorted(cuts)
    span_starts = {s: e for s, e in inside}
    parts: list[Markup] = []
    in_match_until = -1
    for a, b in zip(bounds, bounds[1:], strict=False):
        if a in found.anchors:
            parts.append(Markup('<span class="passage-anchor" id="passage-%d"></span>') % found.anchors[a])
        bit = escape(text[a:b])
        if a in span_starts:
            in_match_until = span_starts[a]
        if a < in_match_until:
            number = found.numbered.get(a)
            if number is not None:
                bit = Markup('<mark id="m-%d"><a href="%s">%s</a></mark>') % (number, match_href(number + 1), bit)
            else:
                bit = Markup("<mark>%s</mark>") % bit
        if hit is not None and hit[0] <= a < hit[1]:
            bit = Markup('<span class="hit-passage">%s</span>') % bit
        parts.append(bit)
    return Markup("").join(parts)
