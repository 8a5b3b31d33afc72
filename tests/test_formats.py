"""HTML, PDF and .docx extraction on real files made here (no model needed)."""

import io
import struct
import zipfile

import docx
import pytest

from indexer.errors import DocumentError
from indexer.formats import extract_docx, extract_html, extract_pdf, reflow, require

# --------------------------------------------------------------------------- HTML

PAGE = """<!DOCTYPE html>
<html><head><meta charset="gbk"><title>浙江省 软件&amp;信息服务业 报告</title>
<style>body { color: red } p::before { content: "样式" }</style>
<script>var secret = "脚本内容";</script></head>
<body><nav><ul><li>首页</li><li>新闻中心</li></ul></nav>
<div role="navigation">导航条</div>
<h1>二〇〇八年
发展报告</h1>
<div id="main"><p>浙江省软件与信息服务业
销售收入达到&nbsp;4300&nbsp;亿元&#xff0c;增长&lt;20%&gt;。</p>
<h2>主要任务</h2>
<p>Hello <b>world</b>, this is
English &amp; more.</p>
<table><tr><th>项目</th><th>金额</th></tr><tr><td>软件</td><td>100</td></tr></table>
<div hidden>隐藏的文字</div><p hidden>隐藏段落<p>可见段落<pre>第一行
第二行</pre><p>甲<br>乙<br/>丙</p></div>
<aside>相关链接</aside><footer>版权所有 2008</footer><noscript>请启用脚本</noscript>
<svg><text>图中文字</text></svg>
</body></html>"""


@pytest.fixture(scope="module")
def page():
    return extract_html(PAGE.encode("gbk"), "report.html")


def test_html_honours_meta_charset_and_takes_the_title(page):
    assert page.encoding == "gb18030"
    assert page.title == "浙江省 软件&信息服务业 报告"


def test_html_drops_scripts_styles_navigation_and_hidden_text(page):
    dropped = ("脚本内容", "样式", "color", "首页", "新闻中心", "导航条", "隐藏的文字", "相关链接", "版权所有")
    for noise in (*dropped, "请启用", "图中文字", "隐藏段落"):
        assert noise not in page.text


def test_html_blocks_become_lines_and_headings_are_marked(page):
    assert page.text.splitlines() == [
        "# 二〇〇八年发展报告",  # a line break between CJK characters is no space
        "浙江省软件与信息服务业销售收入达到 4300 亿元，增长<20%>。",  # entities decoded
        "## 主要任务",
        "Hello world, this is English & more.",
        "项目 金额",
        "软件 100",
        "可见段落",
        "第一行",
        "第二行",
        "甲",
        "乙",
        "丙",
    ]


def test_html_title_falls_back_to_first_h1_and_wrong_charset_label_to_detection():
    html = "<html><head><meta http-equiv='Content-Type' content='text/html; charset=utf-8'></head>"
    html += "<body><h1>年度 报告</h1><p>正文。</p></body></html>"
    found = extract_html(html.encode("gbk"), "mislabelled.htm")  # says utf-8, is GBK
    assert found.encoding == "gb18030"
    assert found.title == "年度 报告"
    assert found.text == "# 年度 报告\n正文。"


def test_html_bom_and_utf8_without_declaration():
    body = "<p>軟體資訊服務業</p>"
    assert extract_html(b"\xef\xbb\xbf" + body.encode("utf-8"), "a.html").text == "軟體資訊服務業"
    assert extract_html(body.encode("utf-16"), "a.html").text == "軟體資訊服務業"
    big5 = extract_html(("<html><body>" + body + "</body></html>").encode("big5"), "tw.html")
    assert (big5.text, big5.encoding, big5.title) == ("軟體資訊服務業", "cp950", None)


# --------------------------------------------------------------------------- PDF


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal, valid PDF whose text layer holds ``pages`` (lists of lines), as real CJK PDFs do.

    The font is a Type0 font with ``Identity-H`` encoding (each character shown
    as its 2-byte code point) and a ``ToUnicode`` CMap mapping codes back to
    text: that map is what a text extractor reads.  No glyphs are embedded;
    extraction does not need them.
    """
    chars = sorted({ch for page in pages for line in page for ch in line})
    blocks = [chars[i : i + 100] for i in range(0, len(chars), 100)]
    bfchar = "".join(
        f"{len(block)} beginbfchar\n" + "".join(f"<{ord(c):04X}> <{ord(c):04X}>\n" for c in block) + "endbfchar\n"
        for block in blocks
    )
    cmap = (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + bfchar
        + "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode("ascii")
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type0 /BaseFont /SongTi /Encoding /Identity-H "
        b"/DescendantFonts [4 0 R] /ToUnicode 5 0 R >>",
        4: b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SongTi "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 >>",
        5: b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream",
    }
    kids, next_id = [], 6
    for page in pages:
        ops = ["BT", "/F1 10 Tf", "12 TL", "50 800 Td"]
        ops += ["<" + "".join(f"{ord(c):04X}" for c in line) + "> Tj T*" for line in page]
        content = "\n".join([*ops, "ET"]).encode("ascii")
        objects[next_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (next_id + 1)
        )
        objects[next_id + 1] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
        kids.append(next_id)
        next_id += 2
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (" ".join(f"{k} 0 R" for k in kids).encode(), len(kids))
    info = b""
    if title is not None:
        objects[next_id] = b"<< /Title <FEFF" + title.encode("utf-16-be").hex().upper().encode() + b"> >>"
        info = b" /Info %d 0 R" % next_id
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    size, xref = max(objects) + 1, len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (size, info, xref)
    return bytes(out)


REPORT_PAGES = [
    [
        "第一章 总则",
        "浙江省软件与信息服务业在二〇〇八年保持快速增长，全年销售收",
        "入达到四千三百亿元，比上年增长百分之二十，其中软件业务收",
        "入为一千亿元。",
        "第二段很短。",
        "- 1 -",
    ],
    ["Chapter two is in English and its text wraps across", "two lines of the page.", "第 2 页"],
]


def test_pdf_text_layer_with_chinese_is_reflowed_into_paragraphs():
    found = extract_pdf(make_pdf(REPORT_PAGES, title="浙江软件报告"), "report.pdf")
    assert found.title == "浙江软件报告"
    assert found.encoding == "pdf"
    assert found.text.splitlines() == [
        "第一章 总则",
        "浙江省软件与信息服务业在二〇〇八年保持快速增长，全年销售收入达到四千三百亿元，比上年增长百分之二十，"
        "其中软件业务收入为一千亿元。",
        "第二段很短。",
        "Chapter two is in English and its text wraps across two lines of the page.",
    ]  # page numbers dropped


def test_pdf_without_title_metadata_has_none_and_ascii_pdf_works():
    found = extract_pdf(make_pdf([["Annual Report", "Revenue grew by 20 percent."]]), "plain.pdf")
    assert found.title is None
    assert found.text == "Annual Report\nRevenue grew by 20 percent."


def test_pdf_radicals_in_the_text_layer_become_ideographs():
    # Noto/Source Han fonts share a glyph between 一 and the Kangxi radical ⼀ (长 and ⻓), and
    # PDF producers often write the radical into the text layer.
    found = extract_pdf(make_pdf([["⼆〇〇⼋年增⻓百分之⼆⼗，收⼊⽐上年⾼。"]]), "noto.pdf")
    assert found.text == "二〇〇八年增长百分之二十，收入比上年高。"


def test_pdf_of_many_pages():
    pages = [[f"第{n}页的标题", f"这是第{n}页的正文内容。"] for n in range(1, 301)]
    found = extract_pdf(make_pdf(pages), "long.pdf")
    lines = found.text.splitlines()
    assert len(lines) == 600 and lines[-1] == "这是第300页的正文内容。"


def test_pdf_without_text_layer_or_damaged_is_refused_by_name():
    with pytest.raises(DocumentError, match=r"scan\.pdf: the PDF has no text layer"):
        extract_pdf(make_pdf([[]]), "scan.pdf")
    with pytest.raises(DocumentError, match=r"broken\.pdf: not a readable PDF"):
        extract_pdf(b"%PDF-1.4\nthis is not really a PDF", "broken.pdf")


def test_reflow_keeps_short_lines_and_sentence_ends_as_paragraph_ends():
    full = "一二三四五六七八九十一二三四五六七八九十"
    end = full[:-1] + "。"
    lines = [full, end, "标题", full, end, "第四章"]
    assert reflow(lines)[0] == [full + end, "标题", full + end, "第四章"]
    assert reflow(["long line of english text that is wrapped by the layout and contin-", "ues here."])[0] == [
        "long line of english text that is wrapped by the layout and continues here."
    ]
    # a page of two lines measures against the previous page's column
    assert reflow(["前一页的最后一段。", "第五章"], column_hint=20.0)[0] == ["前一页的最后一段。", "第五章"]
    assert reflow([full[:10], full[:9]], column_hint=10.0)[0] == [full[:10] + full[:9]]


# --------------------------------------------------------------------------- DOCX


def make_docx(title: str | None = "浙江省软件产业报告") -> bytes:
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_heading("发展概况", level=1)
    document.add_paragraph("二〇〇八年，浙江省软件与信息服务业销售收入达到四千三百亿元。")
    document.add_heading("Key figures", level=2)
    document.add_paragraph("Revenue grew by 20% to 430 billion yuan.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("项目", "金额"), ("软件", "100亿元")], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_paragraph("软件外包：杭州、宁波。")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_text_headings_tables_and_title():
    found = extract_docx(make_docx(), "report.docx")
    assert found.title == "浙江省软件产业报告"
    assert found.encoding == "docx"
    assert found.text.splitlines() == [
        "# 发展概况",
        "二〇〇八年，浙江省软件与信息服务业销售收入达到四千三百亿元。",
        "## Key figures",
        "Revenue grew by 20% to 430 billion yuan.",
        "项目 金额",
        "软件 100亿元",
        "软件外包：杭州、宁波。",
    ]


def test_docx_title_falls_back_to_first_heading():
    assert extract_docx(make_docx(title=None), "report.docx").title == "发展概况"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_docx_zip_bomb_is_refused_before_parsing():
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b" " * (8 * 1024 * 1024)})
    with pytest.raises(DocumentError, match=r"bomb\.docx: word/document\.xml inflates .* times"):
        extract_docx(bomb, "bomb.docx")


def test_docx_with_forged_huge_sizes_is_refused():
    data = bytearray(_zip({"word/document.xml": b"<w:document/>"}))
    central = data.rindex(b"PK\x01\x02")  # the central directory entry: uncompressed size at offset 24
    data[central + 24 : central + 28] = struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(DocumentError, match=r"forged\.docx: would inflate to 4,096 MiB"):
        extract_docx(bytes(data), "forged.docx")


def test_not_a_docx_is_refused_by_name():
    with pytest.raises(DocumentError, match=r"old\.docx: not a \.docx file"):
        extract_docx(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "old.docx")  # an OLE2 .doc
    with pytest.raises(DocumentError, match=r"empty\.docx: not a readable \.docx"):
        extract_docx(_zip({"hello.txt": b"hi"}), "empty.docx")


# --------------------------------------------------------------------------- optional packages


def test_missing_optional_package_gives_a_clear_message():
    with pytest.raises(DocumentError) as caught:
        require("souyi_no_such_module", "souyi-no-such-package", "x.pdf", "PDF")
    assert str(caught.value) == (
        "x.pdf: reading PDF needs the package souyi-no-such-package: pip install souyi-no-such-package"
    )
    assert require("pypdf", "pypdf", "x.pdf", "PDF").__name__ == "pypdf"
