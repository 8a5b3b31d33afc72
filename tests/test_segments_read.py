"""Reading over segments: any layout of the same live passages answers exactly like one index of them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from indexer import ann
from indexer.analyze import default_analyzer
from indexer.bm25 import BM25Index
from indexer.bm25_segments import BM25Segment, average_length, segment_arrays
from search.segments import LiveSegment, Segment, Segments

TEXTS = [
    "宁波舟山港货物吞吐量连续多年位居全球第一。", "义乌小商品市场闻名世界，出口商品种类很多。",
    "杭州软件和信息服务业收入快速增长。", "西湖龙井茶产量稳定，茶文化旅游带动乡村振兴。",
    "港口集装箱航线覆盖全球主要港口。", "软件服务外包基地在杭州。", "The port handles the most cargo.",
    "Software revenue grew fast in Hangzhou.", "茶叶出口到全球。", "信息产业是浙江的支柱产业。",
    "龙井茶的港口运输。", "杭州的电子商务企业集聚。",
]
DIM = 16


def vectors(n: int) -> np.ndarray:
    x = np.random.default_rng(5).standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def segment(name: str, ids: list[int], tokens: list[list[str]], x: np.ndarray, kind: str = "flat") -> Segment:
    """A segment of passages ``ids`` (token lists and vectors indexed by id), as a writer would save it."""
    index = BM25Index.build([tokens[i] for i in ids], ids)
    arrays = segment_arrays(index, average_length(int(index.doc_len.sum()), len(ids)))
    return Segment(name, ann.build(x[ids], np.array(ids, dtype=np.int64), DIM, kind), BM25Segment.from_arrays(arrays))


def live(seg: Segment, deleted: list[int], tokens: list[list[str]]) -> LiveSegment:
    """``seg`` with the passages ``deleted`` that it holds deleted, and their deletion summary."""
    gone = [i for i in sorted(deleted) if seg.first_id <= i <= seg.last_id]
    terms = Counter(term for i in gone for term in set(tokens[i]))
    return seg.live(np.array(gone, dtype=np.int64), terms, sum(len(tokens[i]) for i in gone))


def layouts(deleted: list[int]) -> tuple[Segments, Segments]:
    """The same live passages as three segments with deletions, and as one segment of the live ones."""
    tokens, x = [default_analyzer().tokens(text) for text in TEXTS], vectors(len(TEXTS))
    ranges = [list(range(0, 5)), list(range(5, 9)), list(range(9, len(TEXTS)))]
    split = Segments([live(segment(f"s{i}", ids, tokens, x), deleted, tokens) for i, ids in enumerate(ranges)])
    kept = [i for i in range(len(TEXTS)) if i not in deleted]
    return split, Segments([live(segment("one", kept, tokens, x), [], tokens)])


@pytest.mark.parametrize("deleted", [[], [1, 6, 10], [5, 6, 7, 8]])
def test_every_lookup_over_segments_equals_one_index_of_the_live_passages(deleted):
    split, whole = layouts(deleted)
    assert split.size == whole.size == len(TEXTS) - len(deleted)
    assert np.array_equal(split.ids, whole.ids)
    for n in (1, 3, 20):
        assert np.array_equal(split.first(n), whole.first(n))
    for query in vectors(len(TEXTS) + 4)[-4:]:
        for n in (1, 5, 20):
            (ids_a, scores_a), (ids_b, scores_b) = split.dense(query, n, None), whole.dense(query, n, None)
            assert np.array_equal(ids_a, ids_b) and np.allclose(scores_a, scores_b)
        allowed = ann.Allowed(np.array([i for i in (0, 3, 6, 9, 11) if i not in deleted], dtype=np.int64))
        assert np.array_equal(split.dense(query, 3, allowed)[0], whole.dense(query, 3, allowed)[0])
    analyzer = default_analyzer()
    for words in (["港口"], ["杭州", "软件"], ["茶"], ["port"], []):
        terms = [t for w in words for t in analyzer.tokens(w)]
        assert np.array_equal(split.holding(terms), whole.holding(terms)), words
        for n in (1, 4, 20):
            (ids_a, scores_a), (ids_b, scores_b) = split.bm25.top(terms, n), whole.bm25.top(terms, n)
            assert np.array_equal(ids_a, ids_b) and np.array_equal(scores_a, scores_b), words
        restricted = np.array([i for i in (0, 3, 6, 9, 11) if i not in deleted], dtype=np.int64)
        ids_a, _ = split.bm25.top(terms, 5, split.row_masks(restricted))
        ids_b, _ = whole.bm25.top(terms, 5, whole.row_masks(restricted))
        assert np.array_equal(ids_a, ids_b) and set(ids_a) <= set(restricted.tolist()), words
    for char in "港茶杭龙":
        assert np.array_equal(split.holding_character(char), whole.holding_character(char)), char
    assert not set(split.holding([])) & set(deleted)


def test_vectors_are_found_in_the_segment_holding_the_id_and_deleted_ones_are_not_live():
    split, _ = layouts([6])
    x = vectors(len(TEXTS))
    wanted = np.array([11, 0, 7], dtype=np.int64)
    assert np.allclose(split.vectors_of(wanted), x[wanted])
    assert split.live_among(np.array([0, 6, 7, 99], dtype=np.int64)).tolist() == [True, False, True, False]


def test_deleted_passages_leave_ivf_segments_too():
    many = 400
    x = vectors(many)
    tokens = [default_analyzer().tokens(TEXTS[i % len(TEXTS)]) for i in range(many)]
    ivf = segment("ivf", list(range(many)), tokens, x, kind="ivf")
    nearest = np.argsort(-(x @ x[7]))[:5]
    gone = sorted(nearest[:3].tolist())
    segments = Segments([live(ivf, gone, tokens)])
    found, _ = segments.dense(x[7], 10, None)
    assert len(found) == 10 and not set(found) & set(gone)
    assert segments.size == many - 3
    assert not set(segments.bm25.top(tokens[gone[0]], many)[0].tolist()) & set(gone)


def test_row_masks_restrict_each_segment_to_the_passages_given():
    split, _ = layouts([6])
    ids = np.array([1, 5, 7, 11], dtype=np.int64)
    masks = split.row_masks(ids)
    held = np.concatenate([s.row_ids[m] for s, m in zip(split.live, masks, strict=True)])
    assert held.tolist() == [1, 5, 7, 11]
    fewer = split.without(masks, np.array([5, 11], dtype=np.int64))
    assert np.concatenate([s.row_ids[m] for s, m in zip(split.live, fewer, strict=True)]).tolist() == [1, 7]
    assert split.in_masks(masks, np.array([0, 1, 7, 8], dtype=np.int64)).tolist() == [False, True, True, False]
    assert not split.in_masks(split.live_masks, np.array([6], dtype=np.int64)).any()  # deleted


@pytest.mark.parametrize("deleted", [[], [3, 200, 201, 390]])
def test_ivf_segments_trained_alike_answer_as_one_index_trained_that_way(deleted):
    """Segments sharing one training are probed by one assignment (ann.search_alike); they must find what one
    IVF index of their live passages, trained the same way, finds: same ids, same scores."""
    many = 600
    x = vectors(many)
    tokens = [default_analyzer().tokens(TEXTS[i % len(TEXTS)]) for i in range(many)]
    trained = ann.build(x, np.arange(many), DIM, "ivf")
    assert trained.nprobe < trained.nlist  # so that which lists are probed matters

    def alike(name: str, ids: list[int]) -> Segment:
        index = BM25Index.build([tokens[i] for i in ids], ids)
        arrays = segment_arrays(index, average_length(int(index.doc_len.sum()), len(ids)))
        vectors_of = ann.build(x[ids], np.array(ids, dtype=np.int64), DIM, "ivf", trained=trained)
        return Segment(name, vectors_of, BM25Segment.from_arrays(arrays))

    ranges = [list(range(0, 150)), list(range(150, 420)), list(range(420, many))]
    split = Segments([live(alike(f"s{i}", ids), deleted, tokens) for i, ids in enumerate(ranges)])
    whole = Segments([live(alike("one", [i for i in range(many) if i not in deleted]), [], tokens)])
    assert len({s.segment.training for s in split.live}) == 1
    for query in vectors(many + 6)[-6:]:
        for n in (1, 10, 50):
            (ids_a, scores_a), (ids_b, scores_b) = split.dense(query, n, None), whole.dense(query, n, None)
            assert np.array_equal(ids_a, ids_b) and np.allclose(scores_a, scores_b)
            assert not set(ids_a.tolist()) & set(deleted)
