"""Constraints are exact and global: checked against a brute-force scan of every passage of a real index.

Two corpora: the bundled sample report, and a small one built here with
metadata (numbers, ISO dates, text), traditional characters, full-width
letters and English.  For each query the scan finds the passages that satisfy
its constraints with its own simple code (substring search on folded text, not
the engine's regexes); every hit must be among them, and when they are at
most :data:`search.MAX_DEPTH` (they always are here) none may be missing.
"""

from __future__ import annotations

import gc
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest

from indexer import postings_file, segment_files
from indexer.analyze import is_cjk, normalize
from indexer.build import build_index
from indexer.segment_files import ON_DEMAND
from indexer.store import IndexReader
from search import MAX_DEPTH, BadQuery, Searcher, parse

DOCS = {
    "port-2008.txt": ("港口年报\n\n宁波舟山港的集装箱吞吐量连续增长，港口物流带动了周边的仓储服务。"
                      "The port handles container traffic; container-ship calls rose. 软件园区也在扩建。"),
    "port-2010.txt": ("港口年報\n\n寧波舟山港的集裝箱吞吐量創新高，軟件園的企業提供港口調度系統。"
                      "ＧＤＰ增長帶動了航運服務，電子商務平台上線。"),
    "soft-2009.txt": ("软件产业\n\n杭州的软件企业以电子商务和金融软件见长，软件园为初创企业提供办公场地。"
                      "Digital economy is growing; the digital-economy plan names e-commerce first."),
    "tea-2011.txt": ("龙井茶\n\n西湖龙井的采摘在清明前后最为繁忙，茶农合作社统一收购鲜叶，电子 商务渠道销售。"
                     "Tea farmers sell online through the digital economy."),
    "rail.md": ("# High-speed rail\n\nThe new high-speed railway cuts the trip to forty minutes. "
                "高速铁路让两座城市之间的通勤只需四十分钟，沿线的软件园也受益。"),
}
META = {
    "port-2008.txt": {"year": 2008, "date": "2008-03-15", "kind": "report"},
    "port-2010.txt": {"year": 2010, "date": "2010-07-01", "kind": "report"},
    "soft-2009.txt": {"year": 2009, "date": "2009-11-30", "kind": "plan"},
    "tea-2011.txt": {"year": "2011", "date": "2011-04-02T08:00:00", "kind": "news"},
}
FIELDS = ("year", "date", "kind")

QUERIES = [
    '"软件园"', '"軟件園"', '"ｇｄｐ"', '"gdp增长"', '"digital economy"', '"economy"', '"电子 商务"', '"电子商务"',
    '"container"', '"港口" -"软件园"', "软件 -电子商务", '-"high-speed" 铁路', "year:2008..2010 港口",
    "year>=2010", "year<2010 软件", "date<2010-07-01", "date>=2010-07-01 -港口", 'kind:report "集装箱"',
    "kind:report kind:news", 'year:2009.. "digital"', '“龍井” 茶', "「舟山港」", 'doc:rail.md "railway"',
    "year:..2008.5", "date:2009-01-01..2010-12-31", '"的"', '"園"', '"e"', '"commerce"',
]


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory, embedder) -> Path:
    folder = tmp_path_factory.mktemp("exact") / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
        if name in META:
            (folder / f"{name}.meta.json").write_text(json.dumps(META[name]), encoding="utf-8")
    target = folder.parent / "index"
    build_index([folder], target, embedder=embedder)
    return target


def _contains(text: str, phrase: str) -> bool:
    """Brute force: the folded phrase's words occur in order in the folded text, one run of space between them
    (optional between two CJK characters, as in the phrase "电子 商务"), whole words at ASCII letters and digits."""
    haystack = normalize(text)
    words = normalize(phrase).split()
    for start in range(len(haystack)):
        position = _match_words(haystack, start, words)
        if position is not None and _edge_ok(haystack, start - 1, words[0][0]) and _edge_ok(
                haystack, position, words[-1][-1]):
            return True
    return False


def _match_words(haystack: str, position: int, words: list[str]) -> int | None:
    """End of ``words`` matched from ``position`` (None: no match there)."""
    for i, word in enumerate(words):
        if i:
            gap = position
            while gap < len(haystack) and haystack[gap].isspace():
                gap += 1
            if gap == position and not (is_cjk(words[i - 1][-1]) and is_cjk(word[0])):
                return None
            position = gap
        if not haystack.startswith(word, position):
            return None
        position += len(word)
    return position


def _edge_ok(haystack: str, index: int, edge: str) -> bool:
    """No ASCII letter or digit glued to a phrase edge that is one."""
    if not (edge.isascii() and edge.isalnum()) or not 0 <= index < len(haystack):
        return True
    return not (haystack[index].isascii() and haystack[index].isalnum())


def _value_ok(field: str, stored: object, constraint) -> bool:
    """Brute force of one field constraint (numbers and dates parsed here, independently of the parser)."""
    text = str(stored)
    if constraint.value is not None:
        return text == constraint.value
    bounds = [b for b in (constraint.low, constraint.high) if b]
    if all(re.fullmatch(r"-?\d+(\.\d+)?", b) for b in bounds):
        try:
            value = float(text)
        except ValueError:
            return False
        convert = float
    else:
        try:
            value = date.fromisoformat(text[:10])
        except ValueError:
            return False
        convert = date.fromisoformat
    if constraint.low and not (value > convert(constraint.low) or (constraint.low_inclusive
                                                                    and value == convert(constraint.low))):
        return False
    return not (constraint.high and not (value < convert(constraint.high) or (
        constraint.high_inclusive and value == convert(constraint.high))))


def _satisfying(index: Path, query: str, fields) -> set[int]:
    parsed = parse(query, fields)
    reader = IndexReader.open(index)
    found = set()
    for rec in reader.all_passages():
        values = {"doc": rec.doc_name, "title": rec.title, **rec.meta}
        by_field: dict[str, bool] = {}
        for c in parsed.fields:
            by_field[c.field] = by_field.get(c.field, False) or (
                c.field in values and _value_ok(c.field, values[c.field], c))
        if (all(by_field.values()) and all(_contains(rec.text, p.text) for p in parsed.phrases)
                and not any(_contains(rec.text, p.text) for p in parsed.exclusions)):
            found.add(rec.passage_id)
    reader.close()
    return found


def _check(searcher: Searcher, index: Path, query: str, fields) -> None:
    wanted = _satisfying(index, query, fields)
    assert len(wanted) <= MAX_DEPTH
    parsed = parse(query, fields)
    for mode in ("hybrid", "dense", "lexical"):
        results = searcher.query(query, k=MAX_DEPTH, mode=mode)
        got = {h.passage_id for h in results.hits}
        assert got <= wanted, (query, mode, got - wanted)
        assert results.total == len(results.hits)
        if mode != "lexical" or not parsed.text:  # keyword mode lists only passages holding a keyword
            assert got == wanted, (query, mode, wanted - got)


@pytest.mark.parametrize("postings", ["map", "read", "release"])
@pytest.mark.parametrize("query", QUERIES)
def test_built_corpus_against_a_brute_force_scan(corpus_index, embedder, query, postings, monkeypatch):
    # "read": every posting list is read from its file on demand (SOUYI_POSTINGS=read, whatever its size);
    # "release": mapped, and the pages a search touched are unmapped after each search
    monkeypatch.setenv(segment_files.POSTINGS_ENV, postings)
    monkeypatch.setattr(segment_files, "ON_DEMAND_FROM", 0)
    searcher = Searcher.open(corpus_index, embedder)
    _check(searcher, corpus_index, query, FIELDS)
    searcher.close()


def _mapped_kb(files: list[Path]) -> dict[str, int]:
    """This process's mappings of ``files`` (by address range) and the kB each holds resident (/proc/self/smaps)."""
    names = {str(file) for file in files}
    found: dict[str, int] = {}
    mapping = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
            mapping = line.split()[0] if line.rsplit(" ", 1)[-1] in names else None
        elif mapping and line.startswith("Rss:"):
            found[mapping] = int(line.split()[1])
    return found


@pytest.mark.parametrize(("postings", "budget", "released"),
                         [("map", 0, False), ("release", 0, True), ("release", 1 << 40, False), (None, 0, True)])
def test_released_postings_leave_resident_memory_after_a_search(corpus_index, embedder, monkeypatch,
                                                                postings, budget, released):
    # "release" (the default on Linux: None) unmaps the postings' pages once the process's mapped files have
    # grown by the budget
    if postings is None:
        monkeypatch.delenv(segment_files.POSTINGS_ENV, raising=False)
    else:
        monkeypatch.setenv(segment_files.POSTINGS_ENV, postings)
    monkeypatch.setattr(postings_file, "RELEASE_AFTER_BYTES", budget)
    # as after a release in a process that since let go of an older generation's maps: the budget counts from now
    monkeypatch.setattr(postings_file._RELEASER, "_released_at", 1 << 50)
    files = [file for name in sorted(ON_DEMAND) for file in corpus_index.glob(f"segments/*/lexical/{name}.npy")]
    assert files
    gc.collect()  # other tests' searchers of this index map the same files: only this searcher's maps count
    before = set(_mapped_kb(files))
    searcher = Searcher.open(corpus_index, embedder)
    for query, mode in (("软件园", "lexical"), ("container traffic", "hybrid"), ('"电子商务" -茶', "lexical")):
        assert searcher.query(query, k=5, mode=mode).hits
        mine = {mapping: kb for mapping, kb in _mapped_kb(files).items() if mapping not in before}
        assert mine and (sum(mine.values()) == 0) == released, (query, mode, mine)
    searcher.close()


def test_concurrent_searches_find_the_same_while_their_pages_are_released(corpus_index, embedder, monkeypatch):
    # every search releases the pages (budget 0) while the others are reading them: a reader faults them in again
    monkeypatch.setenv(segment_files.POSTINGS_ENV, "release")
    monkeypatch.setattr(postings_file, "RELEASE_AFTER_BYTES", 0)
    searcher = Searcher.open(corpus_index, embedder)

    def found(query: str) -> list[tuple[int, float]]:
        return [(h.passage_id, h.score) for h in searcher.query(query, k=10, mode="lexical").hits]

    queries = QUERIES[:12]
    alone = {query: found(query) for query in queries}
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(found, queries * 8))
    searcher.close()
    assert together == [alone[query] for query in queries * 8]


def test_sample_report_against_a_brute_force_scan(sample_index, searcher):
    """Phrases cut from the report's own text (some in 繁體 or full width), alone, together and excluded."""
    reader = IndexReader.open(sample_index)
    texts = [rec.text for rec in reader.all_passages()]
    reader.close()
    rng = random.Random(16)
    for _ in range(12):
        text = rng.choice(texts)
        start = rng.randrange(max(1, len(text) - 6))
        phrase = text[start : start + rng.randint(2, 5)].strip()
        if not phrase or '"' in phrase:
            continue
        other = rng.choice(texts)[:2]
        for query in (f'"{phrase}"', f'"{phrase}" -"{other}"', f"信息 -{phrase}"):
            _check(searcher, sample_index, query, ())


def test_traditional_and_full_width_inside_phrases(corpus_index, embedder):
    searcher = Searcher.open(corpus_index, embedder)
    simplified = {h.doc_id for h in searcher.query('"软件园"', k=50).hits}
    assert simplified == {h.doc_id for h in searcher.query('"軟件園"', k=50).hits}
    assert simplified == {"port-2008.txt", "port-2010.txt", "soft-2009.txt", "rail.md"}
    assert {h.doc_id for h in searcher.query('"GDP增长"', k=50).hits} == {"port-2010.txt"}  # ＧＤＰ增長 in the text
    searcher.close()


def test_a_phrase_is_one_highlighted_span(corpus_index, embedder):
    searcher = Searcher.open(corpus_index, embedder)
    hit = searcher.query('"digital economy"', k=1).hits[0]
    assert any(hit.text[s:e].lower() == "digital economy" for s, e in hit.highlights)
    hit = searcher.query('"集装箱吞吐量" 增长', k=1).hits[0]
    assert any(normalize(hit.text[s:e]).startswith("集装箱吞吐量") for s, e in hit.highlights)
    searcher.close()


def test_english_phrases_match_whole_words(corpus_index, embedder):
    searcher = Searcher.open(corpus_index, embedder)
    assert {h.doc_id for h in searcher.query('"rail"', k=50).hits} == set()  # only "railway", "High-speed rail" is
    # the heading, not passage text
    assert {h.doc_id for h in searcher.query('"container"', k=50).hits} == {"port-2008.txt"}
    searcher.close()


def test_a_range_over_text_is_a_bad_query_naming_the_field(corpus_index, embedder):
    searcher = Searcher.open(corpus_index, embedder)
    with pytest.raises(BadQuery, match="'year'"):
        searcher.query("year:abc.. 港口")
    assert searcher.query("colour:abc.. 港口").parsed.text == "colour:abc.. 港口"  # not a field: text
    searcher.close()


def test_filters_and_query_fields_together(corpus_index, embedder):
    searcher = Searcher.open(corpus_index, embedder)
    both = searcher.query("kind:report 港口", k=50, filters={"year": ["2008", "2009"]})
    assert {h.doc_id for h in both.hits} == {"port-2008.txt"}
    with pytest.raises(BadQuery, match="20"):
        searcher.query("港口 " + " ".join(f"-w{i}" for i in range(15)), filters={"kind": [str(i) for i in range(6)]})
    searcher.close()


def test_quotes_around_nothing_are_an_empty_query(searcher):
    for query in ('""', '“”', '"  " 「」'):
        with pytest.raises(BadQuery, match="empty"):
            searcher.search(query)
