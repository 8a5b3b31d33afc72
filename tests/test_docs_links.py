"""The README and docs/ stay navigable and their copied figures stay true.

Every relative link in README.md and docs/*.md must name a file of the repository, and a
``#fragment`` must name a heading of that file (GitHub's anchor rules): a page renamed or a
heading reworded breaks the link here instead of in a reader's browser.  The README's quality
table is the one figure it copies from a generated page; it must equal docs/quality.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """Markdown without code blocks and code spans, where a ``[x](y)`` is not a link."""
    return _CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``, a repeated heading numbered as GitHub numbers it."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = repeats.get(base, 0)
        repeats[base] = count + 1
        found.add(f"{base}-{count}" if count else base)
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` that name no file, or no heading of the file they name."""
    broken = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no such heading in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Where the time goes (MRR@10)\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#where-the-time-goes-mrr10) [ok](other.md#twice-1) [web](https://example.org/x)\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere) `[code](missing-too.md)`\n"
        "```\n[fenced](missing-three.md)\n```\n"
    )
    assert broken_links(page) == ["missing.md: no such file", "other.md#nowhere: no such heading in other.md"]


def test_every_docs_page_is_in_the_docs_index() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    linked = set(_LINK.findall(_prose(index)))
    missing = [p.name for p in PAGES if p.parent.name == "docs" and p.name != "README.md" and p.name not in linked]
    assert missing == []


def _table_rows(markdown: str, section: str) -> list[list[str]]:
    """Cells of the table rows (header and rule excluded) in the ``## section`` of ``markdown``."""
    body = re.split(rf"^## {re.escape(section)}\s*$", markdown, flags=re.MULTILINE)[1]
    body = re.split(r"^## ", body, flags=re.MULTILINE)[0]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    return [[cell.strip(" *") for cell in line.strip().strip("|").split("|")] for line in lines[2:]]


def test_readme_quality_table_equals_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quality = (ROOT / "docs" / "quality.md").read_text(encoding="utf-8")
    readme_rows = _table_rows(readme, "Quality")
    assert readme_rows, "the README's quality table is gone"
    for collection, *mrr in readme_rows:
        name = collection.split()[0]
        generated = {row[0]: row[3] for row in _table_rows(quality, name)}  # mode -> MRR@10
        assert mrr == [generated["hybrid (default)"], generated["dense"], generated["lexical"]], name
