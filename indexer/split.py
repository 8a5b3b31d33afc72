"""Split a document into passages: the unit that search returns.

A passage is one paragraph, or a run of whole sentences of a long paragraph,
so that every hit reads as a complete thought.  Passages are short (about
``DEFAULT_PASSAGE_SIZE`` model tokens): a multilingual embedding of a long,
many-topic paragraph blurs the one sentence a question is about.  Measured on
the dev collections, dense retrieval ranks the answer higher with
``DEFAULT_PASSAGE_SIZE`` passages than with longer ones on every set, and
hybrid is better or within noise (docs/quality.md, "Passage size").  Size is
counted in *units* that approximate XLM-R tokens for both scripts: a CJK (or
other non-ASCII) character is one unit, an ASCII character a quarter, so an
English passage holds about as many words of meaning as a Chinese one.

Short title-like lines (and Markdown ``#`` headings) are not passages of their
own: they become the ``heading`` of the passages below them, which gives those
passages context without letting a bare heading outrank the paragraph that
answers the question.  A passage far below the size limit is joined to its
neighbour in the same section (see :func:`_merge_small`), so it may span two
paragraphs; ``paragraph`` is then the first.  Every passage keeps exact
character offsets into the source text, so a hit can always be traced back to
the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate

#: Default upper bound of a passage, in units (about model tokens; see above).
DEFAULT_PASSAGE_SIZE = 100
#: An ASCII character is worth this many units (XLM-R: ~4 English characters a token).
ASCII_UNIT = 0.25

#: A line this short with no sentence-final punctuation reads as a heading.
HEADING_MAX_CHARS = 40

# A sentence ends after a run of terminators and any closing quotes/brackets,
# or at an ASCII period followed by white space (English text).
_SENTENCE_END = re.compile(r"[。！？；!?;…]+[”’」』）)\]\"']*|\.(?=\s)")
# Where an over-long sentence may be cut when nothing better exists.
_CLAUSE_END = re.compile(r"[，、：,:]+")
_TERMINAL = tuple("。！？；.!?;:：…，,、")
_MD_HEADING = re.compile(r"^#{1,6}\s+")


@dataclass(frozen=True)
class Chunk:
    """A passage cut from a document, before it is stored."""

    paragraph: int  # 1-based number of the paragraph (non-empty line) it comes from
    start: int  # character offset of ``text`` in the document
    end: int
    text: str
    heading: str  # the nearest heading above it, or ""


def split_document(text: str, max_size: int = DEFAULT_PASSAGE_SIZE) -> list[Chunk]:
    """Split ``text`` into passages; see the module docstring for the rules."""
    if max_size < 20:
        raise ValueError("max_size must be at least 20")
    sizer = _Sizer(text)
    chunks: list[Chunk] = []
    heading = ""
    pending: Chunk | None = None  # a heading line not yet followed by a body
    for number, (start, end) in enumerate(paragraph_spans(text), start=1):
        line = text[start:end]
        marker = _MD_HEADING.match(line)
        if marker or _looks_like_heading(line):
            if pending is not None:  # two headings in a row: keep the first as text
                chunks.append(pending)
            hstart = start + (marker.end() if marker else 0)
            heading = text[hstart:end].strip()
            pending = Chunk(number, hstart, end, heading, "") if heading else None
            continue
        pending = None
        for cstart, cend in _pack(text, start, end, max_size, sizer):
            chunks.append(Chunk(number, cstart, cend, text[cstart:cend], heading))
    if pending is not None:
        chunks.append(pending)
    return _merge_small(text, chunks, max_size, sizer)


def _merge_small(text: str, chunks: list[Chunk], max_size: int, size: _Sizer) -> list[Chunk]:
    """Join a passage smaller than a third of ``max_size`` to its neighbour in
    the same section (the next one, else the previous one) when both fit.

    A one-sentence paragraph ("2007年，工作取得了新的进展。") on its own is a
    dense-retrieval hub: generic, short, and close to every question.  With
    its neighbour it becomes the context it was written as.
    """
    small = max_size / 3
    out: list[Chunk] = []
    for chunk in chunks:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.heading == chunk.heading
            and (size(prev.start, prev.end) < small or size(chunk.start, chunk.end) < small)
            and size(prev.start, chunk.end) <= max_size
        ):
            out[-1] = Chunk(prev.paragraph, prev.start, chunk.end, text[prev.start : chunk.end], prev.heading)
        else:
            out.append(chunk)
    return out


class _Sizer:
    """Size in units of any span of one text, in O(1) after a prefix sum."""

    def __init__(self, text: str) -> None:
        self._cum = [0.0, *accumulate(ASCII_UNIT if ch.isascii() else 1.0 for ch in text)]

    def __call__(self, start: int, end: int) -> float:
        return self._cum[end] - self._cum[start]

    def advance(self, start: int, end: int, size: float) -> int:
        """The furthest offset ``<= end`` whose span from ``start`` fits in ``size`` (at least ``start + 1``)."""
        low, high = start + 1, end
        while low < high:
            mid = (low + high + 1) // 2
            if self(start, mid) <= size:
                low = mid
            else:
                high = mid - 1
        return low


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of the non-empty lines of ``text``, stripped of white space."""
    spans = []
    for match in re.finditer(r"[^\r\n]+", text):
        line = match.group()
        left = len(line) - len(line.lstrip())
        right = len(line.rstrip())
        if right > left:
            spans.append((match.start() + left, match.start() + right))
    return spans


def _looks_like_heading(line: str) -> bool:
    return len(line) <= HEADING_MAX_CHARS and not line.endswith(_TERMINAL)


def _pack(text: str, start: int, end: int, max_size: int, size: _Sizer) -> list[tuple[int, int]]:
    """Pack whole sentences of ``text[start:end]`` into spans of similar size.

    Cuts are chosen like lines in minimum-raggedness word wrap: the sum of
    squared slack (``max_size`` minus span size) is minimised over all ways
    to cut at sentence ends.  Greedy filling would leave a stub of a few words
    at the end of a paragraph; such stubs match everything and nothing well,
    and short passages crowd the top of dense results ("hubs").
    """
    pieces = _pieces(text, start, end, max_size, size)
    best = [0.0] + [float("inf")] * len(pieces)
    cut = [0] * (len(pieces) + 1)  # cut[j]: first piece of the span that ends with piece j-1
    for j in range(1, len(pieces) + 1):
        for i in range(j - 1, -1, -1):
            span = size(pieces[i][0], pieces[j - 1][1])
            if span > max_size and i < j - 1:
                break
            cost = best[i] + (max_size - span) ** 2
            if cost < best[j]:
                best[j], cut[j] = cost, i
    spans, j = [], len(pieces)
    while j > 0:
        spans.append((pieces[cut[j]][0], pieces[j - 1][1]))
        j = cut[j]
    stripped = (_strip(text, s, e) for s, e in reversed(spans))
    return [(s, e) for s, e in stripped if e > s]


def _pieces(text: str, start: int, end: int, max_size: int, size: _Sizer) -> list[tuple[int, int]]:
    """Sentences of the span; a sentence larger than ``max_size`` is cut at
    clause marks, and as the last resort wherever the size runs out."""
    out = []
    for sstart, send in _cut(text, start, end, _SENTENCE_END):
        if size(sstart, send) <= max_size:
            out.append((sstart, send))
            continue
        for cstart, cend in _cut(text, sstart, send, _CLAUSE_END):
            while cstart < cend:
                stop = size.advance(cstart, cend, max_size)
                out.append((cstart, stop))
                cstart = stop
    return out


def _cut(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    spans, last = [], start
    for match in pattern.finditer(text, start, end):
        if match.end() > last:
            spans.append((last, match.end()))
            last = match.end()
    if last < end:
        spans.append((last, end))
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (whitespace trimmed, empty ones dropped).

    Used to find the sentence of a passage that answers a query; the spans
    index ``text`` itself so they can be highlighted as they are.
    """
    spans = (_strip(text, s, e) for s, e in _cut(text, 0, len(text), _SENTENCE_END))
    return [(s, e) for s, e in spans if e > s]
