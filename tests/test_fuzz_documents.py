"""Document fuzzing: a bad file is refused by name, the batch goes on, memory stays bounded.

Every extractor (text decoding, HTML, PDF, .docx) gets random bytes and
valid files cut short or with bytes flipped: it returns text or raises
``DocumentError`` naming the file, nothing else.  Then one batch mixes good
files with the whole zoo of bad ones (random bytes, truncated PDF, malformed
and zip-bomb .docx, mixed encodings, a name that is not UTF-8): the good ones
are indexed, each bad one is reported.  The long run (tests/long) adds the
gigabyte bomb and the 50 MB single-line file with peak RSS.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_formats import REPORT_PAGES, make_docx, make_pdf

from indexer import add_documents, build_index, list_documents
from indexer.decode import decode_bytes
from indexer.errors import DocumentError
from indexer.formats import EXTRACTORS
from search import Searcher

FUZZ = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GOOD_HTML = ("<html><head><title>报告</title><script>alert(1)</script></head><body><h1>发展</h1>"
             "<p>浙江省软件业<b>增长</b>迅速。</p><table><tr><td>a</td></tr></table></body></html>").encode()
VALID = {".pdf": make_pdf(REPORT_PAGES, title="报告"), ".docx": make_docx(), ".html": GOOD_HTML,
         ".txt": "浙江省软件与信息服务业。\n第二段。".encode("gb18030")}


def extract(suffix: str, data: bytes) -> str:
    """What the indexer does with one file's bytes: text, or DocumentError naming the file."""
    name = f"fuzzed{suffix}"
    try:
        if suffix in EXTRACTORS:
            return EXTRACTORS[suffix](data, name).text
        return decode_bytes(data, name)[0]
    except DocumentError as exc:
        assert name in str(exc), exc
        return ""


@FUZZ
@given(suffix=st.sampled_from(sorted(VALID)), data=st.binary(max_size=4096))
@example(suffix=".docx", data=b"PK\x03\x04" + bytes(100))
@example(suffix=".pdf", data=b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>")
def test_random_bytes_are_text_or_a_named_refusal(suffix, data):
    extract(suffix, data)


@FUZZ
@given(suffix=st.sampled_from(sorted(VALID)), cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1),
       st.integers(0, 255)), max_size=8))
def test_damaged_valid_files_are_text_or_a_named_refusal(suffix, cut, flips):
    data = bytearray(VALID[suffix])
    for where, value in flips:
        data[int(where * (len(data) - 1))] = value
    extract(suffix, bytes(data[: max(1, int(cut * len(data)))]))


def deflate_bomb(size: int) -> bytes:
    """A .docx whose document.xml inflates to ``size`` bytes of spaces (honestly declared)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b" " * (1 << 20)
            for _ in range(size >> 20):
                member.write(chunk)
    return buffer.getvalue()


def lying_bomb(real_size: int) -> bytes:
    """A .docx whose document.xml declares 12 bytes but inflates to ``real_size``."""
    data = bytearray(deflate_bomb(real_size))
    for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        at = data.index(signature, 30 if signature == b"PK\x03\x04" else 0)
        data[at + offset : at + offset + 4] = (12).to_bytes(4, "little")
    return bytes(data)


def write_zoo(folder: Path) -> dict[str, str]:
    """Good and bad files in ``folder``; returns {file name: what must happen} ("indexed" or "refused")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = __import__("random").Random(8)
    files = {
        "good.txt": ("浙江省港口货物吞吐量统计：宁波舟山港全年增长。".encode(), "indexed"),
        "good.html": (GOOD_HTML, "indexed"),
        "good.pdf": (VALID[".pdf"], "indexed"),
        "good.docx": (VALID[".docx"], "indexed"),
        "mixed-encodings.txt": ("前半是UTF-8。".encode() + "后半是GBK编码。".encode("gbk"), "either"),
        "random.txt": (bytes(rng.randrange(256) for _ in range(5000)), "refused"),
        "random.pdf": (os.urandom(3000), "refused"),
        "random.docx": (os.urandom(3000), "refused"),
        "random.html": (bytes(rng.randrange(256) for _ in range(3000)), "either"),
        "truncated.pdf": (VALID[".pdf"][: len(VALID[".pdf"]) // 3], "refused"),
        "truncated.docx": (VALID[".docx"][: len(VALID[".docx"]) // 2], "refused"),
        "malformed.docx": (_zip({"[Content_Types].xml": b"<Types", "word/document.xml": b"<w:document><<"}),
                           "refused"),
        "bomb.docx": (deflate_bomb(16 << 20), "refused"),
        "lying-bomb.docx": (lying_bomb(16 << 20), "refused"),
        "unclosed.html": (b"<html><body>" + b"<div><p>\xe6\xb5\x99\xe6\xb1\x9f" * 300, "indexed"),
        "empty.txt": (b"", "either"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    (folder / os.fsdecode(b"\xff\xfe-name.txt")).write_bytes("名字不是UTF-8".encode())
    expected = {name: fate for name, (_, fate) in files.items()}
    expected[os.fsdecode(b"\xff\xfe-name.txt")] = "refused"
    return expected


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def check_batch(expected: dict[str, str], index: Path, refused: tuple[str, ...]) -> None:
    """Good files indexed, every bad one refused with a message naming it, no file both."""
    indexed = {doc.name for doc in list_documents(index)}
    for name, fate in expected.items():
        named = [m for m in refused if name in m]
        assert not (named and name in indexed), name
        if fate == "indexed":
            assert name in indexed, (name, named)
        elif fate == "refused":
            assert named and name not in indexed, (name, refused)
        else:
            assert named or name in indexed or name == "empty.txt", name


def test_a_batch_of_bad_files_indexes_the_good_ones_and_names_the_bad(tmp_path, embedder):
    expected = write_zoo(tmp_path / "zoo")
    report = build_index([tmp_path / "zoo"], tmp_path / "index", embedder=embedder)
    check_batch(expected, tmp_path / "index", report.refused)
    assert Searcher.open(tmp_path / "index", embedder).search("港口吞吐量", k=1)[0].doc_id == "good.txt"


@pytest.mark.parametrize("bomb", [deflate_bomb, lying_bomb])
def test_docx_bombs_are_refused_without_inflating(bomb):
    data = bomb(16 << 20)
    assert len(data) < 100_000  # 16 MiB of spaces in well under 100 KB
    with pytest.raises(DocumentError, match="bomb.docx"):
        EXTRACTORS[".docx"](data, "bomb.docx")


def test_a_document_over_the_text_limit_is_refused_by_name_until_the_limit_is_raised(tmp_path, embedder):
    """One huge single-line file must not hold a batch for hours: refused with the limit and the flag to raise it."""
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    (docs / "small.txt").write_text("宁波舟山港货物吞吐量。" * 5, encoding="utf-8")
    (docs / "one-line.txt").write_text("浙江省港口货物吞吐量统计" * 25, encoding="utf-8")  # 300 characters, no break
    report = build_index([docs], index, embedder=embedder, max_chars=299)
    assert {doc.name for doc in list_documents(index)} == {"small.txt"}
    (message,) = report.refused
    assert "one-line.txt" in message and "300 characters" in message and "the 299" in message
    assert "--max-chars" in message  # the way to raise it
    report = add_documents([docs], index, embedder=embedder, max_chars=300)
    assert report.refused == () and {doc.name for doc in list_documents(index)} == {"small.txt", "one-line.txt"}
