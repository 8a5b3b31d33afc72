"""Finding and reading a folder of reports in several formats and encodings (no model needed)."""

import pytest
from test_formats import make_docx, make_pdf

from indexer.documents import SUPPORTED_SUFFIXES, find_sources, read_document
from indexer.errors import DocumentError


@pytest.fixture()
def reports(tmp_path):
    folder = tmp_path / "reports"
    (folder / "tw").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / "plan.txt").write_bytes("浙江省软件产业发展规划\n发展软件与信息服务业。\n".encode("gbk"))
    (folder / "tw" / "報告.txt").write_bytes("軟體資訊服務業年報\n臺灣軟體產業持續成長。\n".encode("big5"))
    (folder / "notes.md").write_bytes(b"\xef\xbb\xbf# Notes\n\nSoftware outsourcing in Hangzhou.\n")
    (folder / "unicode.txt").write_bytes("Unicode 文本\n测试。\n".encode("utf-16-le"))
    (folder / "page.htm").write_bytes("<title>网页标题</title><p>网页正文。</p>".encode())
    (folder / "report.docx").write_bytes(make_docx())
    (folder / "~$report.docx").write_bytes(b"\x0bjdoe" + bytes(150))  # Word's lock file
    (folder / "slides.pdf").write_bytes(make_pdf([["年度报告", "收入增长百分之二十。"]], title="年度报告"))
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (folder / ".git" / "HEAD.txt").write_text("ref: refs/heads/main\n")
    return folder


def test_find_sources_takes_every_supported_format_and_skips_the_rest(reports):
    names = [s.name for s in find_sources([reports])]
    assert names == [
        "image.txt",
        "notes.md",
        "page.htm",
        "plan.txt",
        "report.docx",
        "slides.pdf",
        "tw/報告.txt",
        "unicode.txt",
    ]
    assert set(SUPPORTED_SUFFIXES) == {".txt", ".md", ".html", ".htm", ".pdf", ".docx"}


def test_a_batch_reads_what_it_can_and_names_what_it_cannot(reports):
    read, refused = {}, []
    for source in find_sources([reports]):
        try:
            read[source.name] = read_document(source)
        except DocumentError as exc:
            refused.append(str(exc))
    assert len(refused) == 1 and "image.txt" in refused[0] and "binary" in refused[0]
    assert {name: (doc.encoding, doc.title) for name, doc in read.items()} == {
        "notes.md": ("utf-8-sig", "Notes"),
        "page.htm": ("utf-8", "网页标题"),
        "plan.txt": ("gb18030", "浙江省软件产业发展规划"),
        "report.docx": ("docx", "浙江省软件产业报告"),
        "slides.pdf": ("pdf", "年度报告"),
        "tw/報告.txt": ("cp950", "軟體資訊服務業年報"),
        "unicode.txt": ("utf-16-le", "Unicode 文本"),
    }
    assert read["tw/報告.txt"].text == "軟體資訊服務業年報\n臺灣軟體產業持續成長。\n"
    assert "浙江省软件与信息服务业销售收入达到四千三百亿元" in read["report.docx"].text
    assert read["page.htm"].text == "网页正文。"
    assert all(len(doc.sha256) == 64 for doc in read.values())


def test_explicit_unsupported_or_missing_files_are_refused_by_name(reports):
    with pytest.raises(DocumentError, match=r"photo\.jpg: unsupported file type \.jpg"):
        find_sources([reports / "photo.jpg"])
    with pytest.raises(DocumentError, match="missing.txt: no such file"):
        find_sources([reports / "missing.txt"])


def test_title_falls_back_to_first_heading_then_file_name(tmp_path):
    (tmp_path / "untitled.html").write_text("<body><h2>第二级标题</h2><p>正文内容很长很长，以句号结束。</p></body>")
    (tmp_path / "body.html").write_text("<body><p>只有一段正文，以句号结束。</p></body>")
    docs = {s.name: read_document(s) for s in find_sources([tmp_path])}
    assert docs["untitled.html"].title == "第二级标题"
    assert docs["body.html"].title == "body"
