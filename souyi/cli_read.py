"""``souyi show`` and ``souyi similar``: read a hit where it stands, and find passages that say the same.

Registered from :mod:`souyi.cli`, which opens the index and maps errors to
exit codes (an unknown document or passage id exits with 6).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from search import BadQuery, Document, Hit, Paragraph, Searcher

#: Paragraphs shown on each side of the passage by ``show --around`` (``--context``).
DEFAULT_CONTEXT = 2
#: Marks around the passage in the text printed by ``show --around``.
MARK_OPEN, MARK_CLOSE = "⟦", "⟧"


def add_parsers(sub: argparse._SubParsersAction, index_help: str) -> None:
    """Add the ``show`` and ``similar`` subcommands to the ``souyi`` parser."""
    p = sub.add_parser("show", help="print an indexed document, or the paragraphs around one passage",
                       description="Print a document of the index (its name as `souyi list` and search hits "
                       "show it): metadata, outline and paragraphs. With --around, only the paragraphs around "
                       "that passage, the passage marked ⟦like this⟧.")
    p.add_argument("doc", help="document name (Hit.doc_id)")
    p.add_argument("--around", type=int, default=None, metavar="PASSAGE_ID",
                   help="show only the paragraphs around this passage (a hit's passage_id)")
    p.add_argument("--context", type=int, default=DEFAULT_CONTEXT, metavar="N",
                   help="paragraphs on each side of the passage with --around (default: %(default)s)")
    _common(p, index_help)

    p = sub.add_parser("similar", help="passages nearest in meaning to one passage",
                       description="Print the passages whose meaning is nearest to a stored passage (its own "
                       "vector; nothing is embedded again), the passage itself excluded.")
    p.add_argument("passage_id", type=int, help="a hit's passage_id")
    p.add_argument("-k", type=int, default=10, help="number of passages (default: %(default)s)")
    p.add_argument("--other-documents", dest="same_document", action="store_false", default=False,
                   help="only passages of other documents (the default)")
    p.add_argument("--same-document-too", dest="same_document", action="store_true",
                   help="also passages of the passage's own document")
    _common(p, index_help)


def _common(p: argparse.ArgumentParser, index_help: str) -> None:
    p.add_argument("--index", type=Path, default=None, help=index_help)
    p.add_argument("--model", default=None, help="embedding model; must be the one that built the index")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def commands(open_searcher: Callable[[argparse.Namespace], Searcher]) -> dict[str, Callable[[argparse.Namespace],
                                                                                             int]]:
    """The subcommands by name; ``open_searcher`` opens the index the arguments name."""
    return {
        "show": lambda args: _show(args, open_searcher(args)),
        "similar": lambda args: _similar(args, open_searcher(args)),
    }


def _show(args: argparse.Namespace, searcher: Searcher) -> int:
    doc = searcher.document(args.doc)
    if args.around is None:
        print(json.dumps(doc.to_dict(), ensure_ascii=False, indent=2) if args.json else format_document(doc))
        return 0
    if args.context < 0:
        raise BadQuery(f"--context must be >= 0, got {args.context}")
    paragraphs = doc.around(args.around, args.context)
    passage = doc.passage(args.around)
    if args.json:
        payload = {"name": doc.name, "title": doc.title, "metadata": doc.metadata,
                   "passage": {"passage_id": passage.passage_id, "paragraph": passage.paragraph,
                               "start": passage.start, "end": passage.end, "heading": passage.heading},
                   "paragraphs": [{"number": p.number, "start": p.start, "end": p.end,
                                   "text": doc.text[p.start : p.end]} for p in paragraphs]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return 0
    print(_header(doc))
    for paragraph in paragraphs:
        print(_paragraph(doc, paragraph, (passage.start, passage.end)))
    return 0


def _similar(args: argparse.Namespace, searcher: Searcher) -> int:
    hits = searcher.similar(args.passage_id, k=args.k, same_document=args.same_document)
    if args.json:
        payload = {"passage_id": args.passage_id, "k": args.k, "same_document": args.same_document,
                   "hits": [hit.to_dict() for hit in hits]}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no similar passages")
    for hit in hits:
        print(_format_similar(hit))
    return 0


def format_document(doc: Document) -> str:
    """The whole document as text: header, outline, then every paragraph numbered."""
    lines = [_header(doc)]
    if doc.outline:
        lines.append("outline:")
        lines += [f"  ¶{doc.paragraphs[doc.paragraph_at(h.offset)].number:<5} {h.text}" for h in doc.outline]
        lines.append("")
    lines += [_paragraph(doc, p, None) for p in doc.paragraphs]
    return "\n".join(lines)


def _header(doc: Document) -> str:
    indexed = time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.indexed_at))
    head = [f"{doc.title}  ({doc.name}, {len(doc.paragraphs)} paragraphs, {len(doc.passages)} passages, "
            f"indexed {indexed})"]
    head += [f"  {key}: {value}" for key, value in sorted(doc.metadata.items())]
    if doc.text_rebuilt:
        head.append("  (text rebuilt from the passages: this store keeps no source text)")
    return "\n".join(head) + "\n"


def _paragraph(doc: Document, paragraph: Paragraph, mark: tuple[int, int] | None) -> str:
    """One paragraph, numbered; the part inside ``mark`` (document offsets) between ⟦ ⟧."""
    start, end = paragraph.start, paragraph.end
    text = doc.text[start:end]
    if mark is not None and mark[0] < end and mark[1] > start:
        left, right = max(mark[0], start) - start, min(mark[1], end) - start
        text = text[:left] + MARK_OPEN + text[left:right] + MARK_CLOSE + text[right:]
        return f"» ¶{paragraph.number:<4} {text}"
    return f"  ¶{paragraph.number:<4} {text}"


def _format_similar(hit: Hit) -> str:
    head = f"{hit.rank:>3}. [{hit.score:.4f}] {hit.doc_id} ¶{hit.paragraph} passage {hit.passage_id}"
    if hit.heading:
        head += f" · {hit.heading}"
    return f"{head}\n     " + hit.text.replace("\n", "\n     ") + "\n"
