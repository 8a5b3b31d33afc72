"""The one tokenizer of souyi, used alike at index time and at query time.

Lexical search and highlighting both need words.  For Chinese we combine two
views of the same text:

* jieba **search mode** words, which emit a long word *and* its parts
  (``安装简单`` gives ``安装``, ``简单``, ``安装简单``), so a query for a part
  still finds the whole;
* CJK **character bigrams** (prefixed ``BIGRAM_PREFIX`` so they are their own
  terms), which survive words missing from jieba's dictionary and segmentation
  that differs between a short query and a long passage.

Text is normalised character by character, so that offsets in the normalised
text are offsets in the original (highlighting needs that):

1. NFKC when it maps one character to one (full-width to half-width, CJK
   compatibility ideographs and Kangxi radicals to the unified ideographs,
   and the other CJK radicals through :data:`RADICALS`), then lower case;
2. **traditional to simplified Chinese**, with OpenCC's character table
   ``TSCharacters`` (read at import from the data file of the pure-Python
   package ``opencc-python-reimplemented``), keeping the first candidate of
   each entry: 軟體資訊 and 软体资讯 become the same text, so a query in one
   script finds passages in the other, lexically and in highlighting.  Only
   one-character-to-one-character mappings exist at this level, which is what
   keeps offsets exact; OpenCC's phrase tables (軟體 → 软件) would change
   lengths and are not used (the bigrams and the dense model cover much of
   that gap).

Punctuation and white space are dropped.  A **user dictionary** in jieba's
``load_userdict`` format (``word [freq] [tag]`` per line) can add domain terms;
it is loaded into the analyzer's own jieba tokenizer, never jieba's global one,
and its hash is part of :meth:`Analyzer.config`, which the index manifest
records, so that an index and its queries always tokenize alike.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import re
import threading
import unicodedata
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jieba

from .errors import DocumentError, IndexFormatError

logger = logging.getLogger(__name__)

#: Recorded in the manifest; bump when tokens change, so old indexes are refused.
#: 2: traditional Chinese folded to simplified; optional user dictionary.
ANALYZER_VERSION = 3
#: Versions whose indexes this code still reads (2: no grouped-number terms).
READABLE_VERSIONS = (2, 3)
#: "4,300" / "1,234,567.5": digits grouped by thousands separators, indexed also as one number.
_GROUPED_NUMBER = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])")
ANALYZER_NAME = "jieba-search+cjk-bigram"
BIGRAM_PREFIX = "2:"

#: The distribution whose data file provides the traditional → simplified table.
T2S_PACKAGE = "opencc-python-reimplemented"
_T2S_FILE = ("dictionary", "TSCharacters.txt")


def _load_t2s() -> tuple[dict[str, str], str]:
    """OpenCC's traditional → simplified character table, 1:1, and its SHA-256.

    Each line of ``TSCharacters.txt`` is ``traditional<TAB>candidate ...``; we
    keep the first candidate, drop identities and resolve the rare chain
    (薴 → 苧 → 苎) so that folding is idempotent.
    """
    spec = importlib.util.find_spec("opencc")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root).joinpath(*_T2S_FILE)
        if path.is_file():
            break
    else:
        raise ImportError(
            "souyi folds traditional to simplified Chinese with OpenCC's character table from the package "
            f"{T2S_PACKAGE}: pip install {T2S_PACKAGE}==0.1.7 (the C++ 'opencc' package has the same import "
            "name but not the table)"
        )
    raw = path.read_bytes()
    table: dict[str, str] = {}
    for line in raw.decode("utf-8").splitlines():
        source, _, targets = line.partition("\t")
        first = targets.split(" ")[0] if targets else ""
        if len(source) == 1 and len(first) == 1 and first != source:
            table[source] = first
    for source, target in table.items():
        while target in table:  # 薴 → 苧 → 苎
            target = table[target]
        table[source] = target
    digest = hashlib.sha256("".join(f"{s}{t}" for s, t in sorted(table.items())).encode("utf-8")).hexdigest()
    return table, digest


T2S, _T2S_SHA256 = _load_t2s()

# CJK radical supplement characters and the ideograph each one stands for (Kangxi radicals,
# U+2F00-U+2FD5, fold by NFKC; these do not).  PDFs set in Noto/Source Han fonts often map
# the shared glyph back to the radical (⻓ for 长, ⻔ for 门).  Read from Noto Serif CJK's cmap,
# where each pair shares one glyph; it agrees with Unicode's EquivalentUnifiedIdeograph.txt.
_RADICAL_PAIRS = (
    "⺂乛⺃乚⺅亻⺇𠘨⺉刂⺋㔾⺍𭕄⺎兀⺏尣⺐尢⺒巳⺓幺⺔彑⺕彐⺖忄⺘扌⺙攵⺛旡⺞歺⺟母⺠民⺡氵⺣灬⺤爫⺦丬⺨犭⺩𤣩⺫罒⺭礻"
    "⺮𥫗⺯糹⺰纟⺱罓⺲罒⺳㓁⺹耂⺺肀⺽𦥑⺾艹⺿艹⻁虎⻂衤⻃覀⻄西⻅见⻆角⻇𧢲⻈讠⻉贝⻊𧾷⻋车⻌辶⻍辶⻎辶⻐钅⻑長⻒镸"
    "⻓长⻔门⻕𨸏⻖阝⻘青⻙韦⻚页⻛风⻜飞⻝食⻞𩙿⻟飠⻠饣⻡𩠐⻢马⻣骨⻤鬼⻥鱼⻦鸟⻧卤⻨麦⻩黄⻪黾⻫斉⻬齐⻭歯⻮齿⻯竜⻰龙"
    "⻱龜⻲亀⻳龟"
)
RADICALS = {_RADICAL_PAIRS[i]: _RADICAL_PAIRS[i + 1] for i in range(0, len(_RADICAL_PAIRS), 2)}
#: ``str.translate`` table from every CJK radical (Kangxi and supplement) to its ideograph.
RADICAL_TABLE = {
    **{code: unicodedata.normalize("NFKC", chr(code)) for code in range(0x2F00, 0x2FD6)},
    **{ord(radical): ideograph for radical, ideograph in RADICALS.items()},
}


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2FA1F or 0xF900 <= code <= 0xFAFF
    )


#: Public name of the CJK test (benchmarks build other lexical fields with it).
is_cjk = _is_cjk


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or _is_cjk(ch)


class _FoldTable(dict):
    """``str.translate`` table filled on demand: code point → folded code point."""

    def __init__(self, traditional: bool) -> None:
        super().__init__()
        self._traditional = traditional

    def __missing__(self, code: int) -> int:
        self[code] = ord(_fold_char(chr(code), self._traditional))
        return self[code]


def _fold_char(ch: str, traditional: bool = True) -> str:
    """What :func:`normalize` turns one character into (always one character)."""
    folded = unicodedata.normalize("NFKC", ch).lower()
    out = folded if len(folded) == 1 else ch
    if traditional:
        out = RADICALS.get(out, out)
        out = T2S.get(out, out)
    return out


_FOLD = _FoldTable(traditional=True)
_FOLD_WIDTH_CASE = _FoldTable(traditional=False)


def normalize(text: str, *, fold_traditional: bool = True) -> str:
    """Fold width, case and traditional Chinese without changing the length of ``text``.

    ``fold_traditional=False`` gives the width and case folding alone (the
    analyzer before version 2; ``bench/experiments/fold_check.py`` measures against it).
    """
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD if fold_traditional else _FOLD_WIDTH_CASE)


#: Code points scanned for characters that fold into another: through CJK extension H, past which
#: nothing folds (no compatibility, radical or traditional form lives there).
_FOLDING_RANGE = 0x323B0


@lru_cache(maxsize=1)
def _fold_sources() -> dict[str, str]:
    """Folded character → every character :func:`normalize` turns into it (itself included), for the
    characters that some *other* character folds into; built once, on first use, by one pass over Unicode."""
    sources: dict[str, list[str]] = {}
    for code in range(_FOLDING_RANGE):
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        out = _fold_char(ch)
        if out != ch:
            sources.setdefault(out, [out]).append(ch)
    return {target: "".join(dict.fromkeys(chars)) for target, chars in sources.items()}


def fold_sources(ch: str) -> str:
    """Every character that :func:`normalize` folds into ``ch`` (a folded character): ``ch`` itself, its
    traditional forms, its full-width and upper-case forms, its radical forms.

    What lets a pattern written for folded text run on the raw text instead
    (``search.constraints``): folding is one character to one, so the raw text
    matches a class of these characters exactly where the folded text matches ``ch``.
    """
    return _fold_sources().get(ch, ch)


def fold_config() -> dict:
    """How :func:`normalize` folds scripts; part of :meth:`Analyzer.config`."""
    try:
        source = f"{T2S_PACKAGE} {version(T2S_PACKAGE)}"
    except PackageNotFoundError:  # the data file is there, the metadata not (e.g. vendored)
        source = T2S_PACKAGE
    return {
        "traditional_to_simplified": "OpenCC TSCharacters, first candidate, one character to one",
        "source": source,
        "pairs": len(T2S),
        "sha256": _T2S_SHA256,
    }


class UserDict:
    """A user dictionary file read once: its hash, entry count and normalised lines."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise DocumentError(f"{self.path}: user dictionary cannot be read ({exc.strerror or exc})") from exc
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{self.path}: a jieba user dictionary must be UTF-8 text") from exc
        self.sha256 = hashlib.sha256(data).hexdigest()
        # Entries are normalised like the text they must match (case, width,
        # traditional script); jieba's frequencies and (lower-case) tags are unaffected.
        self.lines = [normalize(line.strip()) for line in text.splitlines() if line.strip()]

    def config(self) -> dict:
        return {"sha256": self.sha256, "entries": len(self.lines)}


class Analyzer:
    """Turns text into search terms; one instance per index configuration.

    ``userdict`` is a jieba user dictionary (``load_userdict`` format, UTF-8)
    loaded into this analyzer's own tokenizer.
    """

    def __init__(self, userdict: str | Path | None = None, version: int = ANALYZER_VERSION) -> None:
        self.version = version
        self._userdict = UserDict(userdict) if userdict is not None else None
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._ready = False

    def config(self) -> dict:
        """What the manifest records, so index and queries tokenize alike."""
        return {
            "name": ANALYZER_NAME,
            "version": self.version,
            "jieba": jieba.__version__,
            "fold": fold_config(),
            "userdict": self._userdict.config() if self._userdict else None,
        }

    @classmethod
    def from_config(cls, config: dict, userdict: str | Path | None = None) -> Analyzer:
        """The analyzer that tokenizes like the one that wrote ``config`` (an index manifest's).

        ``userdict`` must be the same user dictionary the index was built with
        (byte for byte), or ``None`` if it had none.  Raises
        :class:`IndexFormatError` with what to do otherwise.
        """
        name, version = config.get("name"), config.get("version")
        if name != ANALYZER_NAME or version not in READABLE_VERSIONS:
            raise IndexFormatError(
                f"the index was built with analyzer {name!r} version {version!r}, this souyi tokenizes with "
                f"{ANALYZER_NAME!r} version {ANALYZER_VERSION}; rebuild the index with 'souyi index'"
            )
        if userdict is None and version == ANALYZER_VERSION:
            analyzer = default_analyzer()
        else:
            analyzer = cls(userdict, version)
        mine = analyzer.config()
        fold = config.get("fold") or {}
        if fold.get("sha256") != mine["fold"]["sha256"]:
            raise IndexFormatError(
                f"the index was built with another traditional/simplified table ({fold.get('source')!r}, "
                f"{fold.get('pairs')!r} pairs) than the installed one ({mine['fold']['source']!r}, "
                f"{mine['fold']['pairs']} pairs); install the version the index records or rebuild the index"
            )
        theirs, ours = config.get("userdict"), mine["userdict"]
        if theirs != ours:
            if theirs is None:
                problem = "was built without a user dictionary, but one was given"
            elif ours is None:
                problem = f"was built with a user dictionary ({theirs.get('entries')} entries), but none was given"
            else:
                problem = (
                    f"was built with another user dictionary (sha256 {str(theirs.get('sha256'))[:12]}…, "
                    f"{theirs.get('entries')} entries) than {userdict} (sha256 {ours['sha256'][:12]}…)"
                )
            raise IndexFormatError(f"the index {problem}; use the index's own dictionary or rebuild the index")
        if config.get("jieba") != jieba.__version__:
            logger.warning(
                "index built with jieba %s, running jieba %s: segmentation may differ slightly",
                config.get("jieba"),
                jieba.__version__,
            )
        return analyzer

    def _tokenizer(self) -> jieba.Tokenizer:
        # jieba builds its prefix dictionary lazily and not thread-safely.
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self._jieba.initialize()
                    if self._userdict is not None:
                        self._jieba.load_userdict(io.StringIO("\n".join(self._userdict.lines)))
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
        return self.terms(normalize(text))

    def terms(self, norm: str) -> list[str]:
        """All search terms of text already passed through :func:`normalize`."""
        return [t for t, _, _ in self._words(norm)] + [t for t, _, _ in _bigrams(norm)]

    def normalized_words(self, norm: str) -> list[tuple[str, int, int]]:
        """:meth:`words` of text already passed through :func:`normalize` (not normalized twice)."""
        return self._words(norm)

    def _words(self, norm: str) -> list[tuple[str, int, int]]:
        words = [
            (word, start, end)
            for word, start, end in self._tokenizer().tokenize(norm, mode="search")
            if any(_is_word_char(ch) for ch in word)
        ]
        if self.version >= 3:  # "4,300 亿" must meet "4300亿元": the grouped number is a term of its own too
            words += [(m.group().replace(",", ""), m.start(), m.end()) for m in _GROUPED_NUMBER.finditer(norm)]
        return words


def _bigrams(norm: str) -> list[tuple[str, int, int]]:
    return [
        (BIGRAM_PREFIX + norm[i : i + 2], i, i + 2)
        for i in range(len(norm) - 1)
        if _is_cjk(norm[i]) and _is_cjk(norm[i + 1])
    ]


@lru_cache(maxsize=1)
def default_analyzer() -> Analyzer:
    """The shared analyzer without a user dictionary (jieba's dictionary is loaded once per process)."""
    return Analyzer()
