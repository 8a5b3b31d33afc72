"""Find and read source documents.

Directories are walked recursively for supported files; each document gets a
stable, human-readable name (its path relative to the folder given, or its
file name) that users see in results and use to refer to it.
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
from .store import DocumentRecord

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md")
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
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    name = child.relative_to(path).as_posix()
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


def read_document(source: SourceFile) -> DocumentRecord:
    """Read, decode and title one source file."""
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{source.path}: cannot be read ({exc.strerror or exc})") from exc
    text, encoding = decode_bytes(data, str(source.path))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return DocumentRecord(
        name=source.name,
        title=_title(text, source.path),
        source=str(source.path.resolve()),
        encoding=encoding,
        sha256=hashlib.sha256(data).hexdigest(),
        text=text,
    )


def _title(text: str, path: Path) -> str:
    """A Markdown ``# title``, else a short first line, else the file name."""
    if path.suffix.lower() == ".md":
        match = _MD_TITLE.search(text)
        if match:
            return match.group(1)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first and len(first) <= 60 and not first.endswith(("。", ".", "！", "？", "!", "?")):
        return first
    return path.stem
