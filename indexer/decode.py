"""Turn the bytes of a text file into ``str``, detecting the encoding.

Chinese reports arrive as UTF-8 (with or without a BOM), as UTF-16 (Windows
"Unicode" text, usually with a BOM), in the mainland's GB18030/GBK code pages,
or in Big5 (Taiwan, Hong Kong).  We decide in a fixed, explainable order
instead of asking a statistical detector (charset-normalizer misreads short
Chinese texts: docs/traditional_chinese.md, "Encodings", compares the two):

1. a **BOM** is decisive;
2. **NUL bytes** mean UTF-16 without a BOM or binary data: both byte orders
   are tried and the one that reads as plausible text wins (ASCII in UTF-16 is
   half NUL bytes; in the wrong byte order ``a`` becomes 愀, a rare character),
   else the file is refused as binary.  (UTF-16 of Chinese alone, without even
   a line break, has no NUL byte: it competes with the code pages of step 4.)
3. strict **UTF-8**: legacy Chinese text almost never validates as UTF-8;
4. the legacy code pages **GB18030** (a superset of GBK and GB2312) and
   **Big5** (``cp950``, then ``big5hkscs``).  Many byte strings decode under
   both into valid characters, one of them mojibake, so each decoding is
   scored by :func:`plausibility`: the share of its characters that are
   common -- ASCII, CJK punctuation, or one of the 3,755 level-1 characters of
   GB2312 (China's "commonly used" set, read from the codec itself) after
   folding traditional to simplified (:data:`indexer.analyze.T2S`).  Mojibake
   scatters into kana, box drawing, private-use and rare characters and scores
   far lower (tests/test_decode.py has short and long samples).  Big5 must
   score strictly higher to win: GB18030 is the more common encoding here.

Binary data is refused before any of that, so an image renamed to ``.txt``
never ends up as mojibake in the index.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache

from .analyze import T2S
from .errors import DocumentError

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

#: Legacy code pages tried after UTF-8, in order of preference on a tie.
LEGACY_ENCODINGS = ("gb18030", "cp950", "big5hkscs")
#: UTF-16 without a BOM is accepted only if at least this share of it is plausible.
_MIN_UTF16_PLAUSIBILITY = 0.6

#: Fraction of control characters above which decoded text is called binary.
_MAX_CONTROL_FRACTION = 0.01
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f]")


def decode_bytes(data: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)``.

    ``encoding`` is the Python codec that decoded it (``utf-8``, ``utf-8-sig``,
    ``utf-16``, ``utf-16-le``, ``utf-16-be``, ``utf-32``, ``gb18030``,
    ``cp950``, ``big5hkscs``).  Raises :class:`DocumentError` naming ``name``
    when the bytes are binary or fit none of the supported encodings.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _strict(data, encoding, name), encoding
    if b"\x00" in data:
        found = _utf16_without_bom(data)
        if found is None:
            raise DocumentError(f"{name}: looks binary (contains NUL bytes and is not UTF-16 text); not indexed")
        _refuse_binary(found[0], name)
        return found
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        _refuse_binary(text, name)
        return text, "utf-8"
    candidates = []
    for encoding in LEGACY_ENCODINGS:
        try:
            candidates.append((data.decode(encoding), encoding))
        except UnicodeDecodeError:
            continue
        if encoding == "cp950":
            break  # big5hkscs only when plain Big5 (cp950) fails: it is its superset
    utf16 = _utf16_without_bom(data)  # all-CJK UTF-16 has no NUL byte at all
    if utf16 is not None:
        candidates.append(utf16)
    if not candidates:
        raise DocumentError(
            f"{name}: not valid UTF-8, UTF-16, GB18030/GBK or Big5 text; convert it to UTF-8 and index it again"
        )
    # max() keeps the first of equals: GB18030 wins a tie.
    text, encoding = max(candidates, key=lambda c: plausibility(c[0]))
    _refuse_binary(text, name)
    return text, encoding


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """``(text, codec)`` if ``data`` reads as UTF-16 text in one byte order, else ``None``."""
    if len(data) % 2:
        return None
    best: tuple[float, str, str] | None = None
    for encoding in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:  # unpaired surrogates: not this byte order
            continue
        score = plausibility(text)
        if score >= _MIN_UTF16_PLAUSIBILITY and (best is None or score > best[0]):
            best = (score, text, encoding)
    return (best[1], best[2]) if best else None


@lru_cache(maxsize=1)
def _common_chars() -> frozenset[str]:
    """GB2312 level 1: the 3,755 commonly used simplified characters (rows 0xB0-0xD7)."""
    chars = set()
    for lead in range(0xB0, 0xD8):
        for trail in range(0xA1, 0xFF):
            try:
                chars.add(bytes((lead, trail)).decode("gb2312"))
            except UnicodeDecodeError:  # the end of row 0xD7 is empty
                continue
    return frozenset(chars)


def _is_common_symbol(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3000 <= code <= 0x303F  # CJK symbols and punctuation: 、。《》「」
        or 0xFF01 <= code <= 0xFF5E  # full-width ASCII: ，！（）：
        or 0x2010 <= code <= 0x2027  # dashes, quotes, ellipsis
        or ch in "·×÷°％"
    )


def plausibility(text: str, limit: int = 50_000) -> float:
    """Share of the non-space characters of ``text`` that are common in Chinese or English text.

    Only the first ``limit`` of them are looked at: enough to tell mojibake
    from text, and it bounds the work on a huge file.
    """
    common = _common_chars()
    good = total = 0
    for ch in text:
        if ch.isspace():
            continue
        total += 1
        if total > limit:
            total = limit
            break
        if (" " <= ch <= "~") or _is_common_symbol(ch) or T2S.get(ch, ch) in common:
            good += 1
    return good / total if total else 1.0


def _strict(data: bytes, encoding: str, name: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{name}: has a {encoding} byte-order mark but is not valid {encoding}") from exc
    _refuse_binary(text, name)
    return text


def _refuse_binary(text: str, name: str) -> None:
    controls = len(_CONTROL_RE.findall(text))
    if text and controls / len(text) > _MAX_CONTROL_FRACTION:
        raise DocumentError(f"{name}: looks binary (too many control characters); not indexed")
