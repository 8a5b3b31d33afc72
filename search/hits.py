"""The typed result of a search."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Hit:
    """One ranked passage.

    ``doc_id`` is the document's id, i.e. its name (the path relative to the
    folder indexed), as ``souyi list`` shows it and as the ``doc`` filter takes it.

    ``start``/``end`` are character offsets of ``text`` in the source
    document; ``highlights`` are ``(start, end)`` offsets into ``text`` of the
    parts that match the query.  ``dense_rank``/``lexical_rank`` are the
    1-based ranks the passage had in each retriever's own list (``None`` when
    that retriever did not rank it among its candidates).  ``meta`` holds the
    document's metadata fields.  ``answer`` is the ``(start, end)`` span in
    ``text`` of the sentence that best answers the query (``None`` when no
    sentence relates to it, e.g. a keyword search whose words are absent).
    ``translation_highlights`` are the spans of the query's translated words
    (an English query's Chinese translations in a Chinese passage), in the
    form of ``highlights``; empty when the query was not translated.
    """

    passage_id: int
    doc_id: str
    title: str
    paragraph: int
    start: int
    end: int
    text: str
    score: float
    rank: int
    dense_rank: int | None
    lexical_rank: int | None
    highlights: tuple[tuple[int, int], ...]
    heading: str = ""
    meta: dict = field(default_factory=dict)  # the document's user fields (--meta, sidecar JSON)
    answer: tuple[int, int] | None = None
    translation_highlights: tuple[tuple[int, int], ...] = ()  # spans of the query's translated words

    def to_dict(self) -> dict:
        """A JSON-ready dict with stable keys (documented in the README)."""
        data = asdict(self)
        data["highlights"] = [list(span) for span in self.highlights]
        data["answer"] = list(self.answer) if self.answer else None
        data["translation_highlights"] = [list(span) for span in self.translation_highlights]
        return data
