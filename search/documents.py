"""A whole indexed document, for reading a hit where it stands.

A hit is one short passage; :meth:`search.Searcher.document` returns the
document it was cut from: the decoded text, its paragraphs numbered as
``Hit.paragraph`` numbers them, its passages with their offsets, and the
headings as an outline.  Offsets everywhere are character offsets into
:attr:`Document.text`, the same that ``Hit.start``/``Hit.end`` use.

Both stores keep each document's decoded text; a Milvus index made before
its texts collection existed keeps only the passages, so its text is rebuilt
from them (:func:`rebuild_text`):
every passage stands at its own offsets, the gaps between passages become
white space, and a section's heading is put back on the line above its first
passage.  What no passage holds (blank lines, Markdown ``#`` markers, lines
the splitter dropped) is not recovered; docs/milvus.md says so.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from indexer.errors import DocumentNotFound, PassageNotFound
from indexer.records import PassageRecord, StoredDocument
from indexer.split import paragraph_spans

from .highlight import highlight_spans, query_terms
from .query import clean_query
from .store import Snapshot


@dataclass(frozen=True)
class Paragraph:
    """A non-empty line of the text; ``number`` counts from 1 as ``Hit.paragraph`` does."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """Where one passage (one possible hit) stands in the text."""

    passage_id: int
    paragraph: int
    start: int
    end: int
    heading: str


@dataclass(frozen=True)
class Heading:
    """One entry of the outline: a heading, where it stands, and the first passage below it."""

    text: str
    offset: int
    passage_id: int


@dataclass(frozen=True)
class Document:
    """An indexed document as the index holds it (``name`` is ``Hit.doc_id``)."""

    name: str
    title: str
    metadata: dict
    indexed_at: float  # Unix time of the batch that indexed it
    text: str
    paragraphs: tuple[Paragraph, ...]
    passages: tuple[Passage, ...]  # in text order
    outline: tuple[Heading, ...]
    text_rebuilt: bool = False  # True when the store keeps no text and it was rebuilt from the passages
    highlights: tuple[tuple[int, int], ...] = ()  # spans of ``text`` matching the query given (none without one)

    def passage(self, passage_id: int) -> Passage:
        """The passage ``passage_id`` of this document; :class:`~indexer.errors.PassageNotFound` if not one of it."""
        for passage in self.passages:
            if passage.passage_id == passage_id:
                return passage
        raise PassageNotFound(f"passage {passage_id} is not part of document {self.name!r}")

    def paragraph_at(self, offset: int) -> int:
        """Index in :attr:`paragraphs` of the paragraph holding ``offset`` (or the nearest before it)."""
        starts = [p.start for p in self.paragraphs]
        return max(0, bisect.bisect_right(starts, offset) - 1)

    def around(self, passage_id: int, context: int) -> tuple[Paragraph, ...]:
        """The paragraphs of passage ``passage_id`` with ``context`` paragraphs on each side."""
        passage = self.passage(passage_id)
        first, last = self.paragraph_at(passage.start), self.paragraph_at(max(passage.start, passage.end - 1))
        return self.paragraphs[max(0, first - context) : last + context + 1]

    def to_dict(self) -> dict:
        """A JSON-ready dict with stable keys (docs/api.md, ``/api/document``)."""
        data = asdict(self)
        for name in ("paragraphs", "passages", "outline"):
            data[name] = list(data[name])
        data["highlights"] = [list(span) for span in self.highlights]
        return data


def build_document(stored: StoredDocument, text: str | None, passages: Sequence[PassageRecord]) -> Document:
    """The :class:`Document` of a store's record; ``text`` None means rebuild it from ``passages``."""
    ordered = sorted(passages, key=lambda p: (p.start, p.passage_id))
    rebuilt = text is None
    if text is None:
        text = rebuild_text(ordered)
    paragraphs = tuple(Paragraph(n, s, e) for n, (s, e) in enumerate(paragraph_spans(text), start=1))
    return Document(
        name=stored.name,
        title=stored.title,
        metadata=dict(stored.meta),
        indexed_at=float(stored.indexed_at),
        text=text,
        paragraphs=paragraphs,
        passages=tuple(Passage(p.passage_id, p.paragraph, p.start, p.end, p.heading) for p in ordered),
        outline=_outline(text, ordered),
        text_rebuilt=rebuilt,
    )


def _outline(text: str, passages: Sequence[PassageRecord]) -> tuple[Heading, ...]:
    """One entry per section: where its heading stands (searched for above its first passage)."""
    outline: list[Heading] = []
    current = ""
    for passage in passages:
        if passage.heading and passage.heading != current:
            found = text.rfind(passage.heading, 0, passage.start)
            outline.append(Heading(passage.heading, found if found >= 0 else passage.start, passage.passage_id))
        current = passage.heading
    return tuple(outline)


def rebuild_text(passages: Sequence[PassageRecord]) -> str:
    """A text in which every passage (sorted by ``start``) stands at its offsets.

    A gap inside one paragraph becomes spaces, a gap between paragraphs
    newlines, so that the paragraphs are numbered as the splitter numbered
    them; a new section's heading goes on the line just above its first passage.
    """
    pieces: list[str] = []
    at = 0
    previous: PassageRecord | None = None
    for passage in passages:
        gap = passage.start - at
        if gap > 0:
            same_paragraph = previous is not None and previous.paragraph == passage.paragraph
            heading = passage.heading if previous is None or previous.heading != passage.heading else ""
            if same_paragraph:
                pieces.append(" " * gap)
            elif heading and len(heading) + 1 <= gap:
                pieces.append("\n" * (gap - len(heading) - 1) + heading + "\n")
            else:
                pieces.append("\n" * gap)
        if passage.end > at:
            pieces.append(passage.text[max(0, at - passage.start) :])
            at = passage.end
        previous = passage
    return "".join(pieces)


#: Longest document name looked up; no stored name is longer (the stores cap names well below it).
MAX_NAME_CHARS = 4096


def find_document(snapshot: Snapshot, name: object, query: str | None = None) -> Document:
    """The document ``name`` of ``snapshot``; :class:`~indexer.errors.DocumentNotFound` for any other name.

    With ``query``, :attr:`Document.highlights` marks the query's words
    throughout the text, found as search highlights them in a hit.

    A name that no store could hold (not a string, over-long, with a NUL or a
    lone surrogate) is refused as unknown before it reaches the store.
    """
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS or not _storable(name):
        raise DocumentNotFound(f"no document named {_shown(name)} in this index")
    stored = snapshot.document(name)
    if stored is None:
        raise DocumentNotFound(f"no document named {_shown(name)} in this index")
    document = build_document(stored.document, stored.text, stored.passages)
    if query is None:
        return document
    terms = query_terms(clean_query(query), snapshot.analyzer)
    return dataclasses.replace(document, highlights=highlight_spans(terms, document.text))


def _storable(name: str) -> bool:
    return "\x00" not in name and not any("\ud800" <= ch <= "\udfff" for ch in name)


def _shown(name: object) -> str:
    """``name`` for an error message: quoted, escaped and cut short."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."
