"""Find and read source documents.

Directories are walked recursively for supported files; each document gets a
stable, human-readable name (its path relative to the folder given, or its
file name) that users see in results and use to refer to it.  Plain text and
Markdown are decoded here (:mod:`indexer.decode`); HTML, PDF and Word files go
through their extractor in :mod:`indexer.formats`.  Inside folders, hidden
files and folders (``.git``) and Office's lock files (``~$report.docx``) are
passed over.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .decode import decode_bytes
from .errors import DocumentError
from .formats import EXTRACTORS
from .records import DocumentRecord

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
#: A larger file is refused unread (a bound on memory: the file is read whole).
MAX_FILE_BYTES = 512 * 1024 * 1024
#: A document with more text than this is refused (``--max-chars`` raises it): about 20,000 passages, a
#: thousand-page book, already many minutes of embedding; one huge file must not hold a batch for hours.
MAX_DOCUMENT_CHARS = 2_000_000
_MD_TITLE = re.compile(r"^\s*#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SourceFile:
    """A file to index and the name it will carry in the index."""

    path: Path
    name: str


def find_sources(paths: Iterable[str | Path]) -> list[SourceFile]:
    """Expand files and folders into the supported files below them.

    A file named explicitly must have a supported suffix; inside folders,
    other files are passed over silently (a folder of reports often holds
    images and spreadsheets too).
    """
    found: dict[Path, SourceFile] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if _passed_over(relative):
                    continue
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    name = relative.as_posix()
                    found.setdefault(child.resolve(), SourceFile(child, name))
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise DocumentError(
                    f"{path}: unsupported file type {path.suffix or '(none)'}; "
                    f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
                )
            found.setdefault(path.resolve(), SourceFile(path, path.name))
        else:
            raise DocumentError(f"{path}: no such file or folder")
    sources = list(found.values())
    names = [s.name for s in sources]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise DocumentError(
            f"several files would be named {sorted(duplicates)[0]!r}; index their common folder instead"
        )
    return sources


def _passed_over(relative: Path) -> bool:
    """Hidden files and folders, and Office lock files, inside a folder being indexed."""
    return any(part.startswith(".") for part in relative.parts) or relative.name.startswith("~$")


def read_document(source: SourceFile, max_chars: int = MAX_DOCUMENT_CHARS) -> DocumentRecord:
    """Read, decode or extract, and title one source file.

    Raises :class:`DocumentError` naming the file if it cannot be read, is
    binary or undecodable, damaged, holds more than ``max_chars`` characters
    of text, or needs an optional package that is missing.
    """
    if _undecodable(source.name):
        raise DocumentError(f"{source.path}: the file name is not valid UTF-8 text; rename the file; not indexed")
    try:
        size = source.path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(
                f"{source.path}: {size / 2**20:,.0f} MiB is more than the {MAX_FILE_BYTES / 2**20:,.0f} MiB "
                "a document may have; not indexed"
            )
        data = source.path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{source.path}: cannot be read ({exc.strerror or exc})") from exc
    return document_from_bytes(data, source.name, source.path, str(source.path.resolve()), max_chars)


def document_from_bytes(data: bytes, name: str, label: str | Path, source: str,
                        max_chars: int = MAX_DOCUMENT_CHARS) -> DocumentRecord:
    """Decode or extract a document held in memory (a file's bytes, an upload) named ``name``.

    ``label`` names it in error messages and its suffix chooses the format
    (it is never opened); ``source`` is recorded as where it came from
    (:mod:`indexer.identity`).  Raises :class:`DocumentError` like :func:`read_document`.
    """
    label = Path(label)
    suffix = label.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{label}: unsupported file type {suffix or '(none)'}; "
                            f"supported: {', '.join(SUPPORTED_SUFFIXES)}")
    extractor = EXTRACTORS.get(suffix)
    if extractor is not None:
        text, title, encoding = extractor(data, str(label))
    else:
        text, encoding = decode_bytes(data, str(label))
        title = None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > max_chars:
        raise DocumentError(
            f"{label}: {len(text):,} characters of text is more than the {max_chars:,} a document may have; "
            "split the file, or raise the limit with --max-chars; not indexed"
        )
    return DocumentRecord(
        name=name,
        title=title or _title(text, label),
        source=source,
        encoding=encoding,
        sha256=hashlib.sha256(data).hexdigest(),
        text=text,
    )


def _undecodable(name: str) -> bool:
    """A name with bytes the file system encoding could not decode (lone surrogates): SQLite cannot store it."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _title(text: str, path: Path) -> str:
    """A Markdown ``# title``, else a short first line, else the file name.

    Extracted formats mark headings the Markdown way too, so an HTML page
    without ``<title>`` or a PDF without metadata gets its first heading.
    """
    if path.suffix.lower() != ".txt":
        match = _MD_TITLE.search(text)
        if match:
            return match.group(1)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = re.sub(r"^#{1,6}\s+", "", first)
    if first and len(first) <= 60 and not first.endswith(("。", ".", "！", "？", "!", "?")):
        return first
    return path.stem
