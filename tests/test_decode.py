"""Encoding detection and refusal of binary data."""

import pytest

from indexer.decode import decode_bytes
from indexer.errors import DocumentError

TEXT = "浙江省2008年重点发展软件与信息服务业，销售收入4300亿元。"


@pytest.mark.parametrize(
    "encoded, encoding",
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),
        (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("gb18030"), "gb18030"),
    ],
)
def test_detects_encodings(encoded, encoding):
    text, found = decode_bytes(encoded, "report.txt")
    assert text == TEXT
    assert found == encoding


def test_binary_is_refused_with_the_file_name():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(DocumentError, match="image.txt"):
        decode_bytes(png, "image.txt")


def test_undecodable_is_refused_with_the_file_name():
    with pytest.raises(DocumentError, match="bad.txt"):
        decode_bytes(b"\x80\xff\xfe\x80abc" * 10, "bad.txt")


def test_control_character_soup_is_refused():
    with pytest.raises(DocumentError, match="binary"):
        decode_bytes(bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 20 + b"abc", "x.txt")


def test_plain_ascii_and_empty():
    assert decode_bytes(b"hello\n", "a.txt") == ("hello\n", "utf-8")
    assert decode_bytes(b"", "a.txt") == ("", "utf-8")
