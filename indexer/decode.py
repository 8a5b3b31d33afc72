"""Turn the bytes of a text file into ``str``, detecting the encoding.

Chinese reports arrive as UTF-8 (with or without a BOM), as UTF-16 with a BOM
(Windows "Unicode" text), or in the legacy GB18030/GBK code pages.  We try
those in a fixed, explainable order instead of guessing statistically: a BOM
is decisive; strict UTF-8 is tried next because random GBK text almost never
validates as UTF-8; GB18030 (a superset of GBK and GB2312) comes last.  Binary
data is refused before any of that, so an image renamed to ``.txt`` never ends
up as mojibake in the index.
"""

from __future__ import annotations

import codecs
import re

from .errors import DocumentError

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

#: Fraction of control characters above which decoded text is called binary.
_MAX_CONTROL_FRACTION = 0.01
_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f]")


def decode_bytes(data: bytes, name: str = "<bytes>") -> tuple[str, str]:
    """Decode ``data`` and return ``(text, encoding)``.

    Raises :class:`DocumentError` naming ``name`` when the bytes are binary or
    fit none of the supported encodings.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _strict(data, encoding, name), encoding
    if b"\x00" in data:
        raise DocumentError(
            f"{name}: looks binary (contains NUL bytes and no UTF-16 byte-order mark); not indexed"
        )
    for encoding in ("utf-8", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        _refuse_binary(text, name)
        return text, encoding
    raise DocumentError(
        f"{name}: not valid UTF-8, UTF-16 (with BOM) or GB18030/GBK text; "
        "convert it to UTF-8 and index it again"
    )


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
