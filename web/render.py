"""Highlight markup built from spans, never from the document's own markup.

The search API says *where* a passage matches (``Hit.highlights``, character
spans into ``Hit.text``); this module turns that into HTML.  The text is cut
at the span boundaries first and every piece is escaped on its own, so a
document that contains ``<script>`` or ``"><img onerror=...>`` is shown as
text whatever the spans are, and a better highlighter in ``search`` needs no
change here.
"""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup, escape


def clean_spans(spans: Iterable[Iterable[int]], length: int) -> list[tuple[int, int]]:
    """Sorted, clipped, non-overlapping, non-empty spans (overlaps are merged)."""
    merged: list[list[int]] = []
    for span in sorted((max(0, int(s)), min(length, int(e))) for s, e in spans):
        start, end = span
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def segments(text: str, spans: Iterable[Iterable[int]]) -> list[tuple[str, bool]]:
    """``text`` cut into ``(piece, highlighted)`` pairs, in order, covering all of it."""
    out: list[tuple[str, bool]] = []
    position = 0
    for start, end in clean_spans(spans, len(text)):
        if start > position:
            out.append((text[position:start], False))
        out.append((text[start:end], True))
        position = end
    if position < len(text) or not out:
        out.append((text[position:], False))
    return out


def highlight(
    text: str, spans: Iterable[Iterable[int]], answer: Iterable[int] | None = None,
    translated: Iterable[Iterable[int]] = (),
) -> Markup:
    """``text`` escaped, each span wrapped in ``<mark>``, the answer sentence in ``<span class="answer">``.

    ``translated`` spans (``Hit.translation_highlights``: the query's translated
    words) are wrapped in ``<mark class="translated">`` where no ``spans`` mark
    them already.
    """
    spans = list(spans)
    translated = _outside(clean_spans(translated, len(text)), clean_spans(spans, len(text)))
    if not answer:
        return _marked(text, spans, 0, translated)
    clipped = clean_spans([answer], len(text))
    if not clipped:
        return _marked(text, spans, 0, translated)
    start, end = clipped[0]
    return Markup("").join([
        _marked(text[:start], spans, 0, translated),
        Markup('<span class="answer">'), _marked(text[start:end], spans, start, translated), Markup("</span>"),
        _marked(text[end:], spans, end, translated),
    ])


def _outside(spans: list[tuple[int, int]], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``spans`` that no ``taken`` span covers (both clean, as :func:`clean_spans` makes them)."""
    out = []
    for start, end in spans:
        for taken_start, taken_end in taken:
            if taken_start > start:
                out.append((start, min(end, taken_start)))
            start = max(start, taken_end)
        if start < end:
            out.append((start, end))
    return [(s, e) for s, e in out if s < e]


def _marked(piece: str, spans: list, offset: int, translated: list[tuple[int, int]] = ()) -> Markup:
    """``piece`` (which starts at ``offset`` of the full text) escaped, with the spans inside it marked."""
    local = [(int(s) - offset, int(e) - offset) for s, e in spans]
    if not translated:
        parts = [Markup("<mark>%s</mark>") % bit if marked else escape(bit) for bit, marked in segments(piece, local)]
        return Markup("").join(parts)
    labelled = sorted([(s, e, Markup("<mark>%s</mark>")) for s, e in clean_spans(local, len(piece))]
                      + [(s, e, Markup('<mark class="translated">%s</mark>'))
                         for s, e in clean_spans([(s - offset, e - offset) for s, e in translated], len(piece))])
    parts, position = [], 0
    for start, end, markup in labelled:  # own and translated spans never overlap (see highlight)
        parts += [escape(piece[position:start]), markup % piece[start:end]]
        position = end
    parts.append(escape(piece[position:]))
    return Markup("").join(parts)
