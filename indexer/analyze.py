"""The one tokenizer of souyi, used alike at index time and at query time.

Lexical search and highlighting both need words.  For Chinese we combine two
views of the same text:

* jieba **search mode** words, which emit a long word *and* its parts
  (``安装简单`` gives ``安装``, ``简单``, ``安装简单``), so a query for a part
  still finds the whole;
* CJK **character bigrams** (prefixed ``BIGRAM_PREFIX`` so they are their own
  terms), which survive words missing from jieba's dictionary and segmentation
  that differs between a short query and a long passage.

Text is normalised character by character (NFKC when it maps one character to
one, i.e. full-width to half-width, then lower case) so that offsets in the
normalised text are offsets in the original: highlighting needs that.
Punctuation and white space are dropped.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from functools import lru_cache

import jieba

logger = logging.getLogger(__name__)

#: Recorded in the manifest; bump when tokens change, so old indexes are refused.
ANALYZER_VERSION = 1
BIGRAM_PREFIX = "2:"


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2FA1F
        or 0xF900 <= code <= 0xFAFF
    )


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or _is_cjk(ch)


@lru_cache(maxsize=65536)
def _normalize_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKC", ch).lower()
    return folded if len(folded) == 1 else ch


def normalize(text: str) -> str:
    """Fold width and case without changing the length of ``text``."""
    if text.isascii():
        return text.lower()
    return "".join(_normalize_char(ch) for ch in text)


class Analyzer:
    """Turns text into search terms; one instance per index configuration."""

    def __init__(self) -> None:
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._ready = False

    def config(self) -> dict:
        """What the manifest records, so index and queries tokenize alike."""
        return {"name": "jieba-search+cjk-bigram", "version": ANALYZER_VERSION, "jieba": jieba.__version__}

    def _tokenizer(self) -> jieba.Tokenizer:
        # jieba builds its prefix dictionary lazily and not thread-safely.
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._jieba.initialize()
                    self._ready = True
        return self._jieba

    def words(self, text: str) -> list[tuple[str, int, int]]:
        """``(word, start, end)`` for the jieba search-mode words of ``text``."""
        return self._words(normalize(text))

    def bigrams(self, text: str) -> list[tuple[str, int, int]]:
        """``(term, start, end)`` for each pair of adjacent CJK characters."""
        return _bigrams(normalize(text))

    def tokens(self, text: str) -> list[str]:
        """All search terms of ``text``: words, then bigrams."""
        norm = normalize(text)
        return [t for t, _, _ in self._words(norm)] + [t for t, _, _ in _bigrams(norm)]

    def _words(self, norm: str) -> list[tuple[str, int, int]]:
        return [
            (word, start, end)
            for word, start, end in self._tokenizer().tokenize(norm, mode="search")
            if any(_is_word_char(ch) for ch in word)
        ]


def _bigrams(norm: str) -> list[tuple[str, int, int]]:
    return [
        (BIGRAM_PREFIX + norm[i : i + 2], i, i + 2)
        for i in range(len(norm) - 1)
        if _is_cjk(norm[i]) and _is_cjk(norm[i + 1])
    ]


@lru_cache(maxsize=1)
def default_analyzer() -> Analyzer:
    """The shared analyzer (jieba's dictionary is loaded once per process)."""
    return Analyzer()
