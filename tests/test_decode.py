"""Encoding detection and refusal of binary data, on Chinese text encoded here."""

import codecs

import pytest

from indexer.decode import decode_bytes, plausibility
from indexer.errors import DocumentError

TEXT = "浙江省2008年重点发展软件与信息服务业，销售收入4300亿元。"
SIMPLIFIED_SHORT = ["关于本报告", "软件信息服务业", "资料来源：国家统计局", "第一章　总则"]
SIMPLIFIED_LONG = (
    "杭州市政府今日发布工作报告，说明过去一年在交通、教育与医疗方面的进展，并提出明年的预算安排。\n"
    "第一章　总则\n第一条　为促进软件产业发展，制定本条例。\n第二条　本条例的主管部门为工业和信息化部。\n"
)
TRADITIONAL_SHORT = ["軟體資訊服務業", "臺灣的經濟發展", "關於本報告", "資料來源：經濟部統計處", "香港特別行政區政府"]
TRADITIONAL_LONG = (
    "香港的金融服務業在過去十年間持續擴張，銀行、保險與資產管理公司紛紛設立區域總部。\n"
    "臺北市政府今日發表施政報告，說明過去一年在交通、教育與醫療方面的進展，並提出明年度的預算規劃。\n"
    "第一章　總則\n第一條　為促進軟體產業之發展，特制定本條例。\n"
)


@pytest.mark.parametrize(
    "encoded, encoding",
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),
        (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),  # no BOM: told by which byte order reads as text
        (TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("gb18030"), "gb18030"),
    ],
)
def test_detects_encodings(encoded, encoding):
    text, found = decode_bytes(encoded, "report.txt")
    assert text == TEXT
    assert found == encoding


@pytest.mark.parametrize("text", SIMPLIFIED_SHORT + [SIMPLIFIED_LONG])
@pytest.mark.parametrize("codec", ["gbk", "gb18030"])
def test_simplified_in_gbk_is_not_read_as_big5(text, codec):
    assert decode_bytes(text.encode(codec), "a.txt") == (text, "gb18030")


@pytest.mark.parametrize("text", TRADITIONAL_SHORT + [TRADITIONAL_LONG])
def test_traditional_in_big5_is_not_read_as_gb18030(text):
    data = text.encode("big5")
    data.decode("gb18030")  # the trap: Big5 bytes are valid GB18030 too (as mojibake)
    assert decode_bytes(data, "a.txt") == (text, "cp950")


@pytest.mark.parametrize("text", TRADITIONAL_SHORT + [TRADITIONAL_LONG])
def test_traditional_in_gb18030_stays_gb18030(text):
    assert decode_bytes(text.encode("gb18030"), "a.txt") == (text, "gb18030")


def test_hong_kong_characters_fall_back_to_big5_hkscs():
    text = "佢哋喺度講嘢，嘅確係咁。"
    assert decode_bytes(text.encode("big5hkscs"), "hk.txt") == (text, "big5hkscs")


def test_mojibake_scores_lower_than_the_right_reading():
    for text in TRADITIONAL_SHORT:
        data = text.encode("big5")
        assert plausibility(data.decode("cp950")) > plausibility(data.decode("gb18030")) + 0.3
    for text in SIMPLIFIED_SHORT:
        data = text.encode("gbk")
        try:
            wrong = data.decode("cp950")
        except UnicodeDecodeError:
            continue
        assert plausibility(data.decode("gb18030")) > plausibility(wrong) + 0.3


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("text", [SIMPLIFIED_LONG, TRADITIONAL_LONG, "Annual report\r\n年度报告\r\n", "一一一\n一"])
def test_utf16_without_bom(codec, text):
    assert decode_bytes(text.encode(codec), "u.txt") == (text, codec)


def test_utf8_bom_is_dropped():
    assert decode_bytes(codecs.BOM_UTF8 + SIMPLIFIED_LONG.encode("utf-8"), "a.txt") == (SIMPLIFIED_LONG, "utf-8-sig")


def test_binary_is_refused_with_the_file_name():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(DocumentError, match="image.txt"):
        decode_bytes(png, "image.txt")


def test_binary_of_even_length_with_nul_bytes_is_not_taken_for_utf16():
    noise = bytes((i * 7919 + 13) % 256 for i in range(4096))  # deterministic, all byte values, many NULs
    with pytest.raises(DocumentError, match=r"blob\.txt: looks binary"):
        decode_bytes(noise, "blob.txt")


def test_undecodable_is_refused_with_the_file_name():
    with pytest.raises(DocumentError, match="bad.txt"):
        decode_bytes(b"\x80\xff\xfe\x80abc" * 10, "bad.txt")


def test_control_character_soup_is_refused():
    with pytest.raises(DocumentError, match="binary"):
        decode_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 20 + b"abc", "x.txt")


def test_plain_ascii_and_empty():
    assert decode_bytes(b"hello\n", "a.txt") == ("hello\n", "utf-8")
    assert decode_bytes(b"", "a.txt") == ("", "utf-8")
