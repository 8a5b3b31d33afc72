"""Text and title out of HTML, PDF and Word (.docx) files.

Every extractor takes the file's bytes and its name (for messages) and returns
an :class:`Extracted` whose ``text`` has **one paragraph per line**, the shape
:mod:`indexer.split` expects: block elements, PDF paragraphs and Word
paragraphs become lines, and headings become their own lines with a Markdown
marker (``## 发展目标``), so the splitter makes them section headings however
long they are.  ``title`` is ``None`` when the file names none; the caller
then falls back to the first line or the file name.

Libraries, each chosen for being maintained, pure Python (or a standard
binary wheel) and already what the Python world uses for the job:

* HTML: the standard library's ``html.parser`` -- tolerant of broken markup,
  decodes every entity, and needs no package at all;
* PDF: ``pypdf`` (pure Python, no dependencies) reads the text layer page by
  page; wrapped lines are joined back into paragraphs (:func:`reflow`), page
  numbers dropped, and CJK radicals that fonts put in the text layer instead
  of the ideograph (⼀ for 一, ⻓ for 长) replaced; scanned PDFs have no text
  layer and are refused with a message saying so;
* .docx: ``python-docx`` (pure Python over ``lxml``), after a size check of the
  zip archive so that a zip bomb is refused before anything is inflated.

``pypdf`` and ``python-docx`` are optional (``pip install 'souyi[formats]'``):
without one, reading such a file raises :class:`DocumentError` naming the file
and the package, and the rest of the batch is indexed as usual.
"""

from __future__ import annotations

import importlib
import io
import re
import zipfile
from collections.abc import Callable
from html.parser import HTMLParser
from types import ModuleType
from typing import NamedTuple

from .analyze import RADICAL_TABLE
from .decode import decode_bytes
from .errors import DocumentError

#: A .docx whose members add up to more than this when inflated is refused.
MAX_DOCX_UNCOMPRESSED = 256 * 1024 * 1024
#: ... and so is one with a member inflating more than this many times its stored size (zip bomb).
MAX_DOCX_RATIO = 200
#: Extraction stops with an error past this many characters of text (a bound on memory).
MAX_TEXT_CHARS = 50_000_000

_SPACE = re.compile(r"\s+")
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
# A line break between two CJK characters is no space (CSS Text: segment break transformation).
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f]*\n\s*(?=[{_CJK}])")
_BARE_MARKER = re.compile(r"#{1,6}")
_SENTENCE_END = re.compile(r"[。！？；.!?;…][”’」』）)\"']*$")


class Extracted(NamedTuple):
    """What an extractor found."""

    text: str  # one paragraph per line
    title: str | None  # None: the file names no title
    encoding: str  # how the text was obtained: a codec for HTML, "pdf" or "docx" otherwise


def require(module: str, package: str, name: str, what: str) -> ModuleType:
    """Import an optional extractor library or raise a :class:`DocumentError` saying which package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DocumentError(f"{name}: reading {what} needs the package {package}: pip install {package}") from exc


def _clean_lines(lines: list[str], name: str) -> str:
    """Collapse white space inside each line, drop empty lines (and bare heading markers)."""
    out = []
    for line in lines:
        line = _SPACE.sub(" ", line).strip()
        if line and not _BARE_MARKER.fullmatch(line):
            out.append(line)
    text = "\n".join(out)
    if len(text) > MAX_TEXT_CHARS:
        raise DocumentError(f"{name}: more than {MAX_TEXT_CHARS:,} characters of text; split the file")
    return text


# --------------------------------------------------------------------------- HTML

_BLOCK_TAGS = frozenset(
    "address article blockquote body caption center dd details dialog div dl dt fieldset figcaption figure "
    "h1 h2 h3 h4 h5 h6 header hr li main ol p pre section summary table tbody thead tfoot tr ul br".split()
)
_CELL_TAGS = frozenset({"td", "th"})
# Content that is not the document's text: code, styling, navigation, forms' widgets.
_SKIP_TAGS = frozenset(
    "script style noscript template svg math iframe object canvas nav aside footer select button".split()
)
_SKIP_ROLES = frozenset({"navigation", "menu", "menubar", "contentinfo", "search"})
# Elements that a start tag of the same name closes (HTML's optional end tags).
_UNNESTED_TAGS = frozenset("p li dt dd tr td th option".split())
_VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Labels that pages declare but mean a superset of (the WHATWG encoding standard does the same).
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip: list[str] = []  # open elements whose content is dropped
        self.pre = 0
        self.heading = 0
        self.in_title = False
        self.title: list[str] = []
        self.first_h1: list[str] | None = None
        self.h1: list[str] | None = None

    def _break(self) -> None:
        if self.current:
            self.lines.append(_CJK_BREAK.sub("", "".join(self.current)))
            self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip == [tag] and tag in _UNNESTED_TAGS:
            self.skip.pop()  # <p hidden>a<p>b: the second <p> closes the hidden one
        if self.skip:
            if tag == self.skip[-1] or (tag in _SKIP_TAGS and tag not in _VOID_TAGS):
                self.skip.append(tag)
            return
        attributes = dict(attrs)
        hidden = "hidden" in attributes or attributes.get("aria-hidden") == "true"
        if tag in _SKIP_TAGS or hidden or (attributes.get("role") or "") in _SKIP_ROLES:
            if tag not in _VOID_TAGS:
                self.skip.append(tag)
            return
        if tag == "title":
            self.in_title = True
        elif tag in _CELL_TAGS:
            self.current.append(" ")
        elif tag in _BLOCK_TAGS:
            self._break()
            if tag in _HEADINGS:
                self.heading = _HEADINGS[tag]
                self.current.append("#" * self.heading + " ")
                if tag == "h1" and self.first_h1 is None:
                    self.h1 = []
            elif tag == "pre":
                self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag in self.skip:
                while self.skip.pop() != tag:
                    pass
            return
        if tag == "title":
            self.in_title = False
        elif tag in _BLOCK_TAGS:
            if tag in _HEADINGS:
                self.heading = 0
                if self.h1 is not None and self.first_h1 is None:
                    self.first_h1, self.h1 = self.h1, None
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._break()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.in_title:
            self.title.append(data)
            return
        if self.h1 is not None:
            self.h1.append(data)
        if self.pre:
            first, *rest = data.split("\n")
            self.current.append(first)
            for line in rest:
                self._break()
                self.current.append(line)
        else:
            self.current.append(data)


def _html_bytes(data: bytes, name: str) -> tuple[str, str]:
    """Decode an HTML file: a BOM, else a ``<meta charset>`` that fits the bytes, else detection."""
    if not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        match = _META_CHARSET.search(data[:4096])
        if match:
            label = match.group(1).decode("ascii").lower()
            encoding = _CHARSET_ALIASES.get(label, label)
            if not encoding.startswith("utf-16"):  # a page readable as ASCII is not UTF-16, whatever it says
                try:
                    return data.decode(encoding), encoding
                except (LookupError, UnicodeDecodeError):
                    pass  # unknown or wrong label (GBK pages labelled utf-8 are common): detect instead
    return decode_bytes(data, name)


def extract_html(data: bytes, name: str) -> Extracted:
    """Visible text of an HTML page without scripts, styles and navigation; ``<title>`` or the first h1."""
    markup, encoding = _html_bytes(data, name)
    parser = _HTMLText()
    parser.feed(markup)
    parser.close()
    parser._break()
    text = _clean_lines(parser.lines, name)
    title = _SPACE.sub(" ", "".join(parser.title)).strip()
    if not title and parser.first_h1 is not None:
        title = _SPACE.sub(" ", "".join(parser.first_h1)).strip()
    return Extracted(text, title or None, encoding)


# --------------------------------------------------------------------------- PDF


def _units(line: str) -> float:
    """Printed width: a CJK character is one unit, an ASCII one half."""
    return sum(0.5 if ch.isascii() else 1.0 for ch in line)


def _join(left: str, right: str) -> str:
    """Join a wrapped line to the next: no space between CJK, none after a hyphenated word."""
    if left.endswith("-") and right[:1].islower():
        return left[:-1] + right
    if re.match(rf"[{_CJK}]", left[-1:]) or re.match(rf"[{_CJK}]", right[:1]):
        return left + right
    return left + " " + right


def reflow(page_lines: list[str], column_hint: float = 0.0) -> tuple[list[str], float]:
    """Join the wrapped lines of one page into paragraphs; also return the page's column width.

    A line as wide as the text column (within 15%) continues on the next line,
    unless it ends a sentence; a shorter line, such as a heading or the last
    line of a paragraph, ends its paragraph.  The column is the 90th percentile
    of the page's line widths (robust to one overlong line); a page of few
    lines uses ``column_hint`` (the previous page's) if that is wider.
    """
    lines = [_SPACE.sub(" ", line).strip() for line in page_lines]
    lines = [line for line in lines if line and not _PAGE_NUMBER.fullmatch(line)]
    if not lines:
        return [], column_hint
    widths = sorted(_units(line) for line in lines)
    column = widths[round(0.9 * (len(widths) - 1))]
    if len(lines) < 5:
        column = max(column, column_hint)
    paragraphs: list[str] = []
    current = ""
    for line in lines:
        current = _join(current, line) if current else line
        if _units(line) < 0.85 * column or _SENTENCE_END.search(line):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs, column


# "3", "- 3 -", "第 3 页", "Page 3 of 10", "3 / 10": page furniture, not text.
_PAGE_NUMBER = re.compile(
    r"[-—–\s]*(第\s*)?\d{1,5}\s*(页|頁)?(\s*(/|of|共)\s*\d{1,5}\s*(页|頁)?)?[-—–\s]*"
    r"|(?i:page)\s*\d{1,5}(\s*(/|of)\s*\d{1,5})?"
)
_JUNK_PDF_TITLE = re.compile(r"^(untitled|microsoft (word|powerpoint) - .*|.*\.(docx?|wps|pdf|txt))$", re.IGNORECASE)


def extract_pdf(data: bytes, name: str) -> Extracted:
    """The text layer of a PDF, page by page, reflowed into paragraphs; title from metadata or first line."""
    pypdf = require("pypdf", "pypdf", name, "PDF")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{name}: the PDF is password-protected; not indexed")
        paragraphs: list[str] = []
        size, column = 0, 0.0
        for page in reader.pages:  # one page at a time; only its text is kept
            page_text = (page.extract_text() or "").translate(RADICAL_TABLE)  # ⼀ ⻓ → 一 长
            found, column = reflow(page_text.split("\n"), column)
            for paragraph in found:
                paragraphs.append(paragraph)
                size += len(paragraph) + 1
            if size > MAX_TEXT_CHARS:
                raise DocumentError(f"{name}: more than {MAX_TEXT_CHARS:,} characters of text; split the file")
        metadata = reader.metadata
        title = (metadata.title if metadata else None) or ""
    except DocumentError:
        raise
    except Exception as exc:  # a damaged PDF fails in many ways; each is this file's problem, not the batch's
        if type(exc).__name__ == "DependencyError":  # an AES-encrypted PDF needs the cryptography package
            raise DocumentError(f"{name}: {exc}") from exc
        raise DocumentError(f"{name}: not a readable PDF ({type(exc).__name__}: {exc})") from exc
    text = _clean_lines(paragraphs, name)
    if not text:
        raise DocumentError(f"{name}: the PDF has no text layer (scanned pages?); run OCR on it first; not indexed")
    title = _SPACE.sub(" ", str(title)).strip()
    if _JUNK_PDF_TITLE.match(title):
        title = ""
    return Extracted(text, title or None, "pdf")


# --------------------------------------------------------------------------- DOCX


def _check_zip(data: bytes, name: str) -> None:
    """Refuse what is not a zip archive, or one that would inflate to something huge."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DocumentError(
            f"{name}: not a .docx file (not a zip archive; an old binary .doc must be saved as .docx first)"
        ) from exc
    total = sum(m.file_size for m in members)
    if total > MAX_DOCX_UNCOMPRESSED:
        raise DocumentError(
            f"{name}: would inflate to {total / 2**20:,.0f} MiB (limit {MAX_DOCX_UNCOMPRESSED / 2**20:,.0f} MiB); "
            "not indexed"
        )
    for member in members:
        if member.file_size > 1024 * 1024 and member.file_size > MAX_DOCX_RATIO * max(member.compress_size, 1):
            raise DocumentError(
                f"{name}: {member.filename} inflates {member.file_size // max(member.compress_size, 1):,} times "
                "(a zip bomb?); not indexed"
            )


def _heading_level(paragraph) -> int:
    """1-6 for Word's "Heading N" styles (and 1 for "Title"), else 0."""
    style = paragraph.style
    style_name = (style.name if style is not None else "") or ""
    match = re.fullmatch(r"(?i)heading\s*([1-9])", style_name.strip())
    if match:
        return min(int(match.group(1)), 6)
    return 1 if style_name.strip().lower() == "title" else 0


def extract_docx(data: bytes, name: str) -> Extracted:
    """Paragraphs and table rows of a Word document; title from its properties, else its first heading."""
    docx = require("docx", "python-docx", name, "Word .docx files")
    _check_zip(data, name)
    from docx.table import Table  # imported here: python-docx is optional

    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        first_heading = None
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                lines.extend(_table_rows(block))
                continue
            text = block.text
            level = _heading_level(block)
            if level and text.strip():
                heading = _SPACE.sub(" ", text).strip()
                first_heading = first_heading or heading
                lines.append("#" * level + " " + heading)
            else:
                lines.extend(text.split("\n"))  # a manual line break inside a paragraph
        title = document.core_properties.title or ""
    except Exception as exc:  # a damaged document fails in many ways; each is this file's problem
        raise DocumentError(f"{name}: not a readable .docx file ({type(exc).__name__}: {exc})") from exc
    text = _clean_lines(lines, name)
    title = _SPACE.sub(" ", title).strip() or first_heading
    return Extracted(text, title or None, "docx")


def _table_rows(table) -> list[str]:
    """One line per table row, its cells separated by spaces (merged cells once)."""
    rows = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(_SPACE.sub(" ", cell.text).strip())
        rows.append(" ".join(c for c in cells if c))
    return rows


#: Extractor per lower-case file suffix; other suffixes are read as plain text.
EXTRACTORS: dict[str, Callable[[bytes, str], Extracted]] = {
    ".html": extract_html,
    ".htm": extract_html,
    ".pdf": extract_pdf,
    ".docx": extract_docx,
}
