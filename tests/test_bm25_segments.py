"""A segmented BM25 (segments + deletions, global statistics) scores exactly like a fresh build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer import bm25, bm25_segments, postings_file, segment_files
from indexer.bm25 import BM25Index
from indexer.bm25_segments import BM25Segment, SegmentedBM25, average_length, segment_arrays
from indexer.errors import SearchError
from indexer.postings_file import PostingArray
from indexer.segment_files import ON_DEMAND, read_lexical_folder
from indexer.vocabulary import Vocabulary, hash_terms

#: Where the segments of a test live: ``None`` in memory, else a folder their files are written to and read from
#: as a search process reads them (small arrays memory-mapped, postings read on demand).
_FILES: dict[str, Path | None] = {"folder": None}


def _corpus(n_docs: int, seed: int) -> list[list[str]]:
    """Zipf-distributed words: a few very common terms (long lists), many rare ones."""
    rng = np.random.default_rng(seed)
    words = np.minimum(rng.zipf(1.3, size=(n_docs, 24)), 3000)
    return [[f"w{w}" for w in row[: rng.integers(0, 24)]] for row in words]


def _segment(tokens: list[list[str]], ids: list[int], avgdl_ref: float) -> BM25Segment:
    arrays = segment_arrays(BM25Index.build(tokens, ids), avgdl_ref)
    if _FILES["folder"] is None:
        return BM25Segment.from_arrays(arrays)
    folder = _FILES["folder"] / str(len(list(_FILES["folder"].iterdir())))
    folder.mkdir()
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return BM25Segment.from_arrays(read_lexical_folder(folder))


@pytest.fixture(params=["memory", "map", "read", "release"])
def stored(request, tmp_path, monkeypatch):
    """Run a test with its segments in memory, then written to files and read back as a searcher reads them:
    memory-mapped, with the postings read on demand (``SOUYI_POSTINGS=read``) or mapped to be released."""
    monkeypatch.setitem(_FILES, "folder", None if request.param == "memory" else tmp_path)
    monkeypatch.setenv(segment_files.POSTINGS_ENV, "map" if request.param == "memory" else request.param)
    monkeypatch.setattr(segment_files, "ON_DEMAND_FROM", 0)  # the test's segments are small: read them on demand
    return request.param


def _deleting(segment: BM25Segment, tokens: dict[int, list[str]], ids: np.ndarray) -> BM25Segment:
    """``segment`` without passages ``ids``, with the deletion summary a writer records."""
    counts: dict[str, int] = {}
    for pid in ids:
        for term in set(tokens[int(pid)]):
            counts[term] = counts.get(term, 0) + 1
    return segment.with_deletions(np.sort(ids), counts, sum(len(tokens[int(p)]) for p in ids))


def _fresh(tokens: dict[int, list[str]], live: list[int]) -> SegmentedBM25:
    """A one-segment build of the ``live`` passages, written at their own average length."""
    ref = average_length(sum(len(tokens[p]) for p in live), len(live))
    return SegmentedBM25([_segment([tokens[p] for p in live], live, ref)])


def _split(rng: np.random.Generator, n_docs: int, tokens: dict[int, list[str]]) -> list[BM25Segment]:
    """1–8 segments over adjacent id ranges (sometimes an empty one too), each with its own
    ``avgdl_ref`` and random deletions."""
    cuts = np.sort(rng.integers(0, n_docs + 1, size=rng.integers(0, 8)))
    segments = []
    for lo, hi in zip([0, *cuts], [*cuts, n_docs], strict=True):
        ids = list(range(lo, hi))
        segment = _segment([tokens[p] for p in ids], ids, float(rng.uniform(2, 30)))
        if ids and rng.random() < 0.7:
            share = 1.0 if rng.random() < 0.1 else rng.uniform(0, 0.4)  # sometimes every row of the segment
            segment = _deleting(segment, tokens, rng.choice(ids, size=int(len(ids) * share), replace=False))
        segments.append(segment)
    if rng.random() < 0.3:
        segments.insert(int(rng.integers(len(segments) + 1)), _segment([], [], 1.0))
    return segments


def _live_ids(segments: list[BM25Segment]) -> list[int]:
    return [int(p) for s in segments for p in s.row_ids if p not in set(s.deleted.tolist())]


def _query(rng: np.random.Generator) -> list[str]:
    common = [f"w{w}" for w in rng.integers(1, 5, size=rng.integers(0, 3))]
    rare = [f"w{w}" for w in rng.integers(5, 3000, size=rng.integers(0, 5))]
    return common + rare + (["unseen"] if rng.random() < 0.1 else [])


def _ranked(index: SegmentedBM25, live: list[int], query: list[str], n: int, allowed: set[int] | None):
    """The top n by scoring every live passage (the definition the fast paths must meet)."""
    ids = np.array([p for p in live if allowed is None or p in allowed], dtype=np.int64)
    scores = index.scores_of(query, ids)
    keep = scores > 0
    ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:n]
    return ids[order], scores[order]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("scan_always", [bm25.SCAN_ALWAYS, 300, 0])
@pytest.mark.parametrize("small_rows", [bm25_segments.SMALL_ROWS, 0])
def test_segments_with_deletions_and_filters_rank_like_a_fresh_build(monkeypatch, stored, seed, scan_always,
                                                                     small_rows):
    # 0: every segment takes the approximate path; 300: the smallest are scanned together, the others pruned
    # with the n-th best score found so far as their floor; small_rows 0: no tail of small segments joined
    monkeypatch.setattr(bm25, "SCAN_ALWAYS", scan_always)
    monkeypatch.setattr(bm25_segments, "SMALL_ROWS", small_rows)
    rng = np.random.default_rng(seed)
    n_docs = int(rng.integers(50, 1500))
    tokens = dict(enumerate(_corpus(n_docs, seed)))
    segments = _split(rng, n_docs, tokens)
    live = _live_ids(segments)
    index, fresh = SegmentedBM25(segments), _fresh(tokens, live)
    assert (index.n_live, index.avgdl) == (fresh.n_live, fresh.avgdl)
    for _ in range(25):
        query = _query(rng)
        assert index.term_idf(query) == fresh.term_idf(query)
        chosen = {int(p) for p in rng.choice(n_docs, size=n_docs // 3)} if rng.random() < 0.3 else None
        masks = None if chosen is None else [np.isin(s.row_ids, list(chosen)) for s in segments]
        fresh_mask = None if chosen is None else [np.isin(fresh.segments[0].row_ids, list(chosen))]
        for n in (1, 10, 3 * n_docs):
            want = _ranked(fresh, live, query, n, chosen)
            for got in (index.top(query, n, masks), fresh.top(query, n, fresh_mask)):
                assert np.array_equal(got[0], want[0]), query
                assert np.array_equal(got[1], want[1]), query  # bit for bit
        every = np.arange(-2, n_docs + 2)
        assert np.array_equal(index.scores_of(query, every), fresh.scores_of(query, every))
        if len(live):
            pid = live[int(rng.integers(len(live)))]
            assert index.matched_terms(query, pid) == fresh.matched_terms(query, pid) == set(query) & set(tokens[pid])


def test_a_fresh_segment_ranks_like_bm25index(monkeypatch, stored):
    monkeypatch.setattr(bm25, "SCAN_ALWAYS", 0)
    tokens = _corpus(3000, seed=11)
    index = BM25Index.build(tokens)
    segmented = _fresh(dict(enumerate(tokens)), list(range(len(tokens))))
    rng = np.random.default_rng(12)
    for _ in range(60):
        query = _query(rng)
        for n in (1, 10, 100):
            rows, scores = index.top(query, n)
            ids, exact = segmented.top(query, n)
            assert np.array_equal(index.row_ids[rows], ids), query
            np.testing.assert_allclose(exact, scores, rtol=1e-6)


@pytest.mark.parametrize("avgdl_ref", [0.05, 500.0])
def test_rescoring_doubles_the_candidates_when_the_reference_length_is_far_off(monkeypatch, stored, avgdl_ref):
    """Written at a very different average length, a segment's approximate order ignores (or exaggerates)
    passage length, so its first candidates cannot be proven best: m must double until they are."""
    monkeypatch.setattr(bm25, "SCAN_ALWAYS", 0)
    lengths = np.random.default_rng(5).integers(1, 40, size=400)
    tokens = {p: ["x", *["filler"] * int(k)] for p, k in enumerate(lengths)}
    ids = list(tokens)
    index = SegmentedBM25([_segment([tokens[p] for p in ids], ids, avgdl_ref)])
    best = index.segment_top(index.segments[0], ["x"], 5)
    assert best.rounds > 1
    fresh = _fresh(tokens, ids)
    assert np.array_equal(index.segments[0].row_ids[best.rows], _ranked(fresh, ids, ["x"], 5, None)[0])
    assert np.array_equal(best.scores, fresh.top(["x"], 5)[1])


@pytest.mark.parametrize("mode", ["map", "read", "release"])
def test_segment_files_are_searched_in_place(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(bm25, "SCAN_ALWAYS", 0)
    monkeypatch.setattr(segment_files, "ON_DEMAND_FROM", 0)
    monkeypatch.setenv(segment_files.POSTINGS_ENV, mode)
    tokens = dict(enumerate(_corpus(600, seed=7)))
    ids = list(tokens)
    for name, array in segment_arrays(BM25Index.build(list(tokens.values()), ids), 9.5).items():
        np.save(tmp_path / f"{name}.npy", array)
    loaded = read_lexical_folder(tmp_path)
    segment = _deleting(BM25Segment.from_arrays(loaded), tokens, np.arange(0, 600, 7))
    for name in ("offsets", "rows", "tfs", "doc_len", "row_ids", "weights", "max_weight"):
        assert getattr(segment, name) is loaded[name]  # not copied
        assert isinstance(loaded[name], PostingArray) == (mode == "read" and name in ON_DEMAND)
    index = SegmentedBM25([segment])
    live = _live_ids([segment])
    fresh = _fresh(tokens, live)
    for query in (["w1", "w2"], ["w3", "w40", "w2"], ["w1", "unseen"]):
        got, want = index.top(query, 20), _ranked(fresh, live, query, 20, None)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    mapped = Path("/proc/self/maps").read_text()
    assert str(tmp_path / "offsets.npy") in mapped  # the per-term arrays are mapped in either mode...
    for name in ON_DEMAND:  # ...the postings unless "read": read, their pages do not count in the process's memory
        assert (str(tmp_path / f"{name}.npy") in mapped) == (mode != "read")
    with pytest.raises(ValueError, match="read-only"):
        segment.rows[0:5][0] = 1  # a map is read-only, and a kept span is shared by later reads


def test_only_large_posting_files_are_read_on_demand_and_the_mode_is_checked(tmp_path, monkeypatch):
    # a small batch's segment is read whole once (one read, no open file); a large one's postings on demand
    monkeypatch.setenv(segment_files.POSTINGS_ENV, "read")
    large = segment_files.ON_DEMAND_FROM // 4 + 1
    np.save(tmp_path / "rows.npy", np.arange(large, dtype=np.int32))
    np.save(tmp_path / "tfs.npy", np.ones(10, dtype=np.float32))
    np.save(tmp_path / "offsets.npy", np.array([0, large], dtype=np.int64))
    loaded = read_lexical_folder(tmp_path)
    assert isinstance(loaded["rows"], PostingArray) and np.array_equal(loaded["rows"][5:9], [5, 6, 7, 8])
    assert type(loaded["tfs"]) is np.ndarray and not loaded["tfs"].flags.writeable
    assert str(tmp_path / "tfs.npy") not in Path("/proc/self/maps").read_text()  # read, not mapped
    monkeypatch.setenv(segment_files.POSTINGS_ENV, "mmap")
    with pytest.raises(SearchError, match="SOUYI_POSTINGS must be one of map, read, release"):
        read_lexical_folder(tmp_path)


def test_postings_are_released_by_default_where_the_platform_can_and_mapped_where_it_cannot(tmp_path, monkeypatch):
    # unset (or empty), the mode is release on Linux; where a process cannot read how much of its mapped files
    # is resident (no /proc: macOS), release would unmap after every search, so the default is map there
    np.save(tmp_path / "rows.npy", np.arange(10, dtype=np.int32))
    monkeypatch.delenv(segment_files.POSTINGS_ENV, raising=False)
    assert segment_files.postings_mode() == "release"
    assert isinstance(read_lexical_folder(tmp_path)["rows"].base, memoryview)  # mapped_array's map: releasable
    monkeypatch.setenv(segment_files.POSTINGS_ENV, "")
    assert segment_files.postings_mode() == "release"
    monkeypatch.setattr(postings_file, "_file_resident", lambda: None)
    assert segment_files.postings_mode() == "map"
    assert not isinstance(read_lexical_folder(tmp_path)["rows"].base, memoryview)


def test_bad_deletions_and_masks_are_refused():
    segment = _segment([["a"], ["b"]], [4, 9], 1.0)
    with pytest.raises(ValueError, match="passages of this segment"):
        segment.with_deletions(np.array([5]), {}, 0)
    with pytest.raises(ValueError, match="sorted"):
        segment.with_deletions(np.array([9, 4]), {"a": 1, "b": 1}, 2)
    with pytest.raises(ValueError, match="one row mask"):
        SegmentedBM25([segment]).top(["a"], 1, [None, None])
    with pytest.raises(ValueError, match="k1 and b"):
        SegmentedBM25([segment], k1=2.0)


def test_an_index_of_nothing_finds_nothing():
    for segments in ([], [BM25Segment.from_arrays(segment_arrays(BM25Index.empty(), 1.0))]):
        index = SegmentedBM25(segments)
        ids, scores = index.top(["a"], 10)
        assert len(ids) == len(scores) == 0
        assert index.term_idf(["a"]) == {"a": index.max_idf()}
        assert index.scores_of(["a"], np.array([0, 3])).tolist() == [0.0, 0.0]
        assert index.segment_of(np.array([0])).tolist() == [-1]



def _stored_vocab(words: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8)


def test_a_vocabulary_finds_exactly_the_terms_a_dict_of_them_finds():
    rng = np.random.default_rng(5)
    alphabet = list("软件信息服务业浙江省abcXYZ0123") + ["\u00e9", "\U0001f600"]
    words = sorted({"".join(rng.choice(alphabet, size=int(rng.integers(1, 40)))) for _ in range(3000)})
    words = [words[i] for i in rng.permutation(len(words))]  # stored order is not sorted order
    numbers = {w: i for i, w in enumerate(words)}
    vocab = Vocabulary(_stored_vocab(words))
    assert len(vocab) == len(words) and vocab.words() == words and vocab.word(17) == words[17]
    asked = list(dict.fromkeys([*rng.choice(words, 200).tolist(), "absent", "软", "", words[0] + "x", words[-1][:-1]]))
    want = {w: numbers[w] for w in asked if w in numbers}
    assert vocab.find(asked) == want and list(vocab.find(asked)) == [w for w in asked if w in want]
    assert vocab.find(asked, hash_terms(asked)) == want
    assert Vocabulary(np.zeros(0, np.uint8)).find(["a"]) == {} and Vocabulary(np.zeros(0, np.uint8)).words() == []


def test_a_vocabulary_tells_terms_apart_by_their_bytes_when_hashes_collide():
    words = ["港口", "软件", "港", "口岸", "software"]
    vocab = Vocabulary(_stored_vocab(words))
    vocab._hashes[:] = 7  # every term now shares one hash: only the stored bytes can tell them apart
    asked = ["软件", "口岸", "港口口", "software", "港"]
    assert vocab.find(asked, np.full(len(asked), 7, dtype=np.uint64)) == {"软件": 1, "口岸": 3, "software": 4, "港": 2}


def test_a_generation_keeps_the_term_lookups_of_its_last_queries_only():
    tokens = dict(enumerate(_corpus(300, seed=9)))
    index = SegmentedBM25(_split(np.random.default_rng(9), 300, tokens))
    first = index.held(["w1", "w2"])
    assert index.held(["w1", "w2"]) is first  # a search's later steps look its terms up again: kept
    for i in range(2 * bm25_segments.HELD_QUERIES):
        index.top([f"w{i}", "w3"], 5)
    assert len(index._held) == bm25_segments.HELD_QUERIES
    assert index.held(["w1", "w2"]) is not first and index.held(["w1", "w2"]) == first


def test_the_old_term_dict_still_answers_with_a_deprecation_warning():
    segment = _segment([["港口", "a"], ["b", "a"]], [3, 8], 1.5)
    with pytest.warns(DeprecationWarning, match="BM25Segment.terms"):
        terms = segment.terms
    assert terms == {word: number for word, number in segment.held(sorted(terms)).items()}
    assert sorted(terms) == ["a", "b", "港口"] and sorted(terms.values()) == [0, 1, 2]
