"""The format-3 writer (issue 18): one segment per batch, deletion files, merges, optimize, repair, file retirement.

These tests write through :class:`indexer.store.IndexWriter` with random
vectors and chosen terms (no model: what they check is the files), and read
back through the reader's segment API, as a searcher does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer import ann, merge_policy
from indexer.bm25 import BM25Index
from indexer.bm25_segments import BM25Segment, SegmentedBM25, average_length, segment_arrays
from indexer.records import DocumentRecord, NewPassage
from indexer.segment_merge import merge_postings
from indexer.store import KEEP_GENERATIONS, IndexReader, IndexWriter
from souyi.cli import main as cli_main

DIM = 8
BM25 = {"k1": 1.2, "b": 0.75}
CREATE = {"ann": {"requested": "auto"}, "model": {"id": "test", "dim": DIM}, "analyzer": {}, "bm25": BM25,
          "split": {}}
WORDS = [f"w{i}" for i in range(40)]


class Corpus:
    """Documents staged into a writer, and the terms each live passage holds, to compare with a fresh build."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def stage(self, writer: IndexWriter, name: str, passages: int) -> None:
        terms = [list(self.rng.choice(WORDS, size=int(self.rng.integers(0, 9)))) for _ in range(passages)]
        doc = DocumentRecord(name, name, name, "utf-8", "0", "x" * passages)
        rows = [NewPassage(0, i, i + 1, "", " ".join(t)) for i, t in enumerate(terms)]
        writer.add(doc, rows, self.rng.random((passages, DIM), dtype=np.float32), terms)


def new_writer(path: Path, merge: bool = True) -> IndexWriter:
    return IndexWriter(path, create=CREATE, merge=merge)


def commit(writer: IndexWriter, corpus: Corpus, *changes: tuple[str, int]) -> None:
    """One batch: each ``(name, passages)`` adds (or replaces) a document, ``(name, 0)`` removes it."""
    for name, passages in changes:
        if passages:
            corpus.stage(writer, name, passages)
        else:
            writer.remove(name)
    writer.commit()


def one_document_per_batch(writer: IndexWriter, corpus: Corpus, batches: int, passages: int) -> None:
    """``batches`` batches, each adding document ``d<i>`` of ``passages`` passages."""
    for i in range(batches):
        commit(writer, corpus, (f"d{i}", passages))


def bm25_of(reader: IndexReader) -> SegmentedBM25:
    """The lexical side of a generation as a searcher builds it from :meth:`IndexReader.segments`."""
    segments = [
        BM25Segment.from_arrays(s.lexical).with_deletions(s.deleted_ids, s.deleted_terms, s.deleted_length)
        for s in reader.segments()
    ]
    return SegmentedBM25(segments, **BM25)


def fresh_bm25(reader: IndexReader) -> SegmentedBM25:
    """One segment of the live passages built from scratch: what a rebuild of the same documents ranks by."""
    lexical = reader.load_lexical()  # format 3: built from the terms SQLite keeps
    ref = average_length(int(lexical.doc_len.sum(dtype=np.float64)), lexical.n_rows)
    return SegmentedBM25([BM25Segment.from_arrays(segment_arrays(lexical, ref))], **BM25)


def assert_ranks_like_a_fresh_build(path: Path) -> None:
    reader = IndexReader.open(path)
    assert reader.check() == []
    segmented, fresh = bm25_of(reader), fresh_bm25(reader)
    for query in (["w1"], ["w0", "w3"], ["w5", "w7", "w11", "w30"], WORDS[::3]):
        ids, scores = segmented.top(query, 10)
        fresh_ids, fresh_scores = fresh.top(query, 10)
        np.testing.assert_array_equal(ids, fresh_ids)
        np.testing.assert_array_equal(scores, fresh_scores)
    reader.close()


def files_of(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {str(f.relative_to(folder)): (f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes())
            for f in sorted(folder.rglob("*")) if f.is_file()}


def test_a_small_batch_writes_its_own_segment_and_leaves_the_big_one_untouched(tmp_path):
    corpus, path = Corpus(1), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        corpus.stage(writer, "big", 400)
        writer.commit()
        [big] = writer.segments
        before = files_of(path / "segments" / big["name"])
        corpus.stage(writer, "small", 2)
        writer.commit()
        assert [e["name"] for e in writer.segments] == [big["name"], f"s{writer.generation:06d}"]
        assert writer.segments[1]["passages"] == 2
    assert files_of(path / "segments" / big["name"]) == before  # same inodes, mtimes and bytes
    assert sorted(p.name for p in (path / "segments").iterdir()) == [big["name"], f"s{2:06d}"]
    assert_ranks_like_a_fresh_build(path)


def test_a_smaller_ivf_segment_shares_the_training_of_the_largest_whose_lists_suit_the_index(tmp_path):
    """A new IVF segment takes the largest suitable segment's training (searched together: one assignment);
    a segment of half the index or more, or one no segment's lists suit, trains its own."""
    corpus, path = Corpus(3), tmp_path / "index"
    with IndexWriter(path, create=dict(CREATE, ann={"requested": "ivf"}), merge=False) as writer:
        for name, passages in (("a", 400), ("b", 100), ("c", 600), ("d", 50)):
            commit(writer, corpus, (name, passages))
        nlists = [e["ann"]["nlist"] for e in writer.segments]
    reader = IndexReader.open(path)
    keys = [ann.training_key(s.vectors) for s in reader.segments()]
    reader.close()
    assert keys[1] == keys[0]  # 100 of 500: a's 32 lists suit 500 passages
    assert keys[2] not in (keys[0], keys[1]) and nlists[2] > nlists[0]  # 600 of 1,100: half or more
    assert keys[3] == keys[2] and nlists[3] == nlists[2]  # a's lists are too few for 1,150 passages, c's suit
    assert_ranks_like_a_fresh_build(path)


def test_deletions_are_cumulative_files_beside_the_segment(tmp_path):
    corpus, path = Corpus(2), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        for name in "abcd":
            corpus.stage(writer, name, 5)
        writer.commit()
        [entry] = writer.segments
        before = files_of(path / "segments" / entry["name"])
        commit(writer, corpus, ("b", 0))
        commit(writer, corpus, ("c", 3))  # a replaced document: its old passages are deleted too
        entry = writer.segments[0]
    assert entry["deleted"] == f"{entry['name']}/deleted-{3:06d}.npz" and entry["deleted_passages"] == 10
    reader = IndexReader.open(path)
    first = reader.load_segment(entry)
    live = {r.passage_id for r in reader.all_passages()}
    held = set(first.lexical["row_ids"].tolist())
    assert set(first.deleted_ids.tolist()) == held - live and len(first.deleted_ids) == 10
    assert first.deleted_length == sum(first.lexical["doc_len"][np.isin(first.lexical["row_ids"], first.deleted_ids)])
    assert reader.load_deletions(entry).ids.tolist() == first.deleted_ids.tolist()
    after = files_of(path / "segments" / entry["name"])
    assert {k: v for k, v in after.items() if k in before} == before  # the segment's own files never change
    assert_ranks_like_a_fresh_build(path)


def test_a_segment_whose_passages_are_all_deleted_leaves_the_manifest(tmp_path):
    corpus, path = Corpus(3), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        commit(writer, corpus, ("a", 3))
        commit(writer, corpus, ("b", 3))
        commit(writer, corpus, ("a", 0))
        assert [e["name"] for e in writer.segments] == [f"s{2:06d}"]
    assert_ranks_like_a_fresh_build(path)


def test_random_adds_replaces_and_deletes_with_merges_rank_like_a_fresh_build(tmp_path):
    corpus, path = Corpus(4), tmp_path / "index"
    names = [f"d{i}" for i in range(30)]
    with new_writer(path) as writer:
        for _ in range(60):
            for name in corpus.rng.choice(names, size=int(corpus.rng.integers(1, 4)), replace=False):
                if corpus.rng.random() < 0.25:
                    writer.remove(str(name))
                else:
                    corpus.stage(writer, str(name), int(corpus.rng.integers(1, 12)))
            writer.commit()
    assert_ranks_like_a_fresh_build(path)


def test_merges_keep_the_segment_count_bounded(tmp_path):
    corpus, path = Corpus(5), tmp_path / "index"
    batches = 3 * merge_policy.SEGMENTS_PER_TIER + 5
    with new_writer(path) as writer:
        for i in range(batches):
            commit(writer, corpus, (f"d{i}", 4))
            tiers = [merge_policy.tier(e) for e in writer.segments]
            assert all(tiers.count(t) <= merge_policy.SEGMENTS_PER_TIER for t in set(tiers))
        entries = writer.segments
    assert len(entries) < batches // 2
    bounds = [bound for e in entries for bound in (e["first_id"], e["last_id"])]
    assert bounds == sorted(bounds) and len(set(bounds[1::2]) & set(bounds[2::2])) == 0  # disjoint, increasing
    assert_ranks_like_a_fresh_build(path)


def test_without_merges_every_batch_stays_a_segment(tmp_path):
    corpus, path = Corpus(6), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        one_document_per_batch(writer, corpus, merge_policy.SEGMENTS_PER_TIER + 3, 2)
        assert len(writer.segments) == merge_policy.SEGMENTS_PER_TIER + 3
        assert writer.merge_by_policy() == 1 and len(writer.segments) == 4
    assert_ranks_like_a_fresh_build(path)


def test_optimize_merges_down_to_the_asked_count_and_drops_deleted_passages(tmp_path):
    corpus, path = Corpus(7), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        one_document_per_batch(writer, corpus, 8, 3)
        commit(writer, corpus, ("d0", 0))
        seen: list[tuple[int, int]] = []
        writer.optimize(3, progress=lambda done, total: seen.append((done, total)))
        assert len(writer.segments) == 3 and seen[-1][0] == seen[-1][1]
        assert_ranks_like_a_fresh_build(path)
        generation = writer.optimize(1)
        [entry] = writer.segments
        assert generation == writer.generation and entry["deleted"] is None
        assert entry["passages"] == writer.manifest["counts"]["passages"] == 21
        assert writer.optimize(1) == generation  # nothing left to merge: no new generation
        commit(writer, corpus, ("d1", 0))
        writer.optimize(1)  # one segment holding deleted passages: rewritten without them
        [entry] = writer.segments
        assert entry["deleted"] is None and entry["passages"] == 18
    assert_ranks_like_a_fresh_build(path)


def test_replaced_files_stay_for_keep_generations_then_go(tmp_path):
    corpus, path = Corpus(8), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        one_document_per_batch(writer, corpus, 3, 2)
        old = [path / "segments" / e["name"] for e in writer.segments]
        writer.optimize(1)
        last_named = writer.generation - 1  # the last manifest naming the old segments
        while writer.generation - last_named < KEEP_GENERATIONS:
            assert all(folder.is_dir() for folder in old)  # a manifest of the last generations names them
            corpus.stage(writer, f"n{writer.generation}", 1)
            writer.commit()
        assert not any(folder.exists() for folder in old)
        manifest = json.loads((path / "manifest.json").read_text())
        assert not any(r["path"].endswith(tuple(f.name for f in old)) for r in manifest["retired"])


def test_a_new_writer_removes_what_an_unfinished_batch_left(tmp_path):
    corpus, path = Corpus(9), tmp_path / "index"
    with new_writer(path) as writer:
        corpus.stage(writer, "a", 3)
        writer.commit()
        [entry] = writer.segments
    leftovers = [path / "segments" / "s000099", path / "segments" / ".tmp-s000100",
                 path / "segments" / entry["name"] / "deleted-000099.npz"]
    leftovers[0].mkdir()
    leftovers[1].mkdir()
    leftovers[2].write_bytes(b"half")
    with IndexWriter(path):
        pass
    assert not any(p.exists() for p in leftovers)
    assert IndexReader.open(path).check() == []


@pytest.mark.parametrize("damage", ["lexical", "vectors", "missing"])
def test_repair_rebuilds_a_damaged_segment_from_sqlite(tmp_path, damage):
    corpus, path = Corpus(10), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        for i in range(3):
            commit(writer, corpus, (f"d{i}", 4))
        commit(writer, corpus, ("d1", 0))
        entries = writer.segments
    folder = path / "segments" / entries[0]["name"]
    if damage == "lexical":
        (folder / "lexical" / "row_ids.npy").write_bytes(b"\x93NUMPY broken")
    elif damage == "vectors":
        (folder / "vectors.faiss").write_bytes(b"damaged")
    else:
        for file in folder.rglob("*.npy"):
            file.unlink()
    problems = IndexReader.open(path).check()
    assert problems and entries[0]["name"] in problems[0]
    with IndexWriter(path) as writer:
        writer.repair()
        names = [e["name"] for e in writer.segments]
    assert names[1:] == [e["name"] for e in entries[1:]]  # only the damaged segment was rewritten
    assert names[0] != entries[0]["name"]
    assert_ranks_like_a_fresh_build(path)


def test_repair_of_ivf_segments_whose_shared_training_is_damaged_trains_anew(tmp_path):
    corpus, path = Corpus(11), tmp_path / "index"
    with IndexWriter(path, create=dict(CREATE, ann={"requested": "ivf"}), merge=False) as writer:
        commit(writer, corpus, ("a", 400))
        commit(writer, corpus, ("b", 100))  # shares a's training
        entries = writer.segments
    for entry in entries:
        (path / "segments" / entry["name"] / "vectors.faiss").write_bytes(b"damaged")
    with IndexWriter(path) as writer:
        writer.repair()
    reader = IndexReader.open(path)
    assert reader.check() == [] and len(list(reader.segments())) == 2
    reader.close()
    assert_ranks_like_a_fresh_build(path)


def test_check_finds_a_segment_holding_other_passages_than_sqlite(tmp_path):
    corpus, path = Corpus(11), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        one_document_per_batch(writer, corpus, 2, 4)
        commit(writer, corpus, ("d1", 0), ("c", 1))  # one batch that deletes and adds
    reader = IndexReader.open(path)
    assert reader.check() == []
    entry = reader.segment_entries()[0]
    target = path / "segments" / entry["name"] / "lexical" / "row_ids.npy"
    np.save(target, np.arange(100, 100 + entry["passages"], dtype=np.int64))
    assert any("BM25 disagrees" in p for p in IndexReader.open(path).check())


def entries_of(*sizes: int) -> list[dict]:
    return [{"passages": n, "deleted_passages": 0} for n in sizes]


def test_the_policy_merges_the_smallest_adjacent_run_of_an_overfull_tier():
    per = merge_policy.SEGMENTS_PER_TIER
    assert merge_policy.next_merge(entries_of(5000, *[3] * per)) is None  # at the bound, not over it
    run = merge_policy.next_merge(entries_of(5000, 9, *[3] * per))
    assert run == range(2, 2 + per)  # the tier-0 window with the fewest live passages, not the big segment
    # tier 0 never `per` in a row: the fewest-passage window of any tiers
    sizes = [2, 50] * per + [2]
    run = merge_policy.next_merge(entries_of(*sizes))
    assert run is not None and len(run) == per
    assert sum(sizes[i] for i in run) == min(sum(sizes[i : i + per]) for i in range(len(sizes) - per + 1))
    deleted = [{"passages": 100, "deleted_passages": 95}] * (per + 1)  # tiers count live passages
    assert merge_policy.tier(deleted[0]) == 0 and merge_policy.next_merge(deleted) == range(0, per)


def vector_entries(*segments: tuple[int, str], requested: str = "auto") -> list[dict]:
    """Manifest entries of ``(passages, kind)`` segments."""
    return [{"passages": n, "deleted_passages": 0, "ann": {"requested": requested, "kind": kind}}
            for n, kind in segments]


def test_flat_segments_share_one_exact_search_budget():
    big = ann.FLAT_MAX // 2 + 1
    over = vector_entries((5 * ann.FLAT_MAX, "ivf"), (big, "flat"), (big, "flat"))
    assert merge_policy.next_merge(over) == range(1, 3)  # merged into one segment above FLAT_MAX: IVF
    assert merge_policy.next_merge(over[:2]) is None  # within the budget
    assert merge_policy.next_merge(vector_entries((big, "flat"), (big, "flat"), requested="flat")) is None
    apart = vector_entries((big, "flat"), (5 * ann.FLAT_MAX, "ivf"), (big, "flat"))
    assert merge_policy.next_merge(apart) is None  # no adjacent run to merge: the tiers bound them
    small, large = ann.FLAT_MAX // 10, ann.FLAT_MAX - 10
    # the run that rewrites the least: the small segment and one large neighbour, not all three
    run = merge_policy.next_merge(vector_entries((large, "flat"), (small, "flat"), (ann.FLAT_MAX, "flat")))
    assert run == range(0, 2)


def test_the_writer_keeps_exactly_searched_segments_within_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "FLAT_MAX", 30)
    corpus, path = Corpus(8), tmp_path / "index"
    with new_writer(path) as writer:
        for i in range(8):
            commit(writer, corpus, (f"d{i}", 12))
            flat = [e["passages"] for e in writer.segments if e["ann"]["kind"] == "flat"]
            assert sum(flat) <= ann.FLAT_MAX
        kinds = [e["ann"]["kind"] for e in writer.segments]
    assert "ivf" in kinds
    assert_ranks_like_a_fresh_build(path)


def test_optimize_plans_one_merge_to_the_asked_count():
    assert merge_policy.optimize_run(entries_of(10, 1, 1, 50), 2) == range(0, 3)
    assert merge_policy.optimize_run(entries_of(90, 1, 1, 50), 2) == range(1, 4)
    assert merge_policy.optimize_run(entries_of(9, 9), 2) is None
    deleted = [{"passages": 9, "deleted_passages": d} for d in (1, 4, 4)]
    assert merge_policy.optimize_run(deleted, 3) == range(1, 2)  # no merge left: the most deletions, rewritten
    with pytest.raises(ValueError):
        merge_policy.optimize_run(entries_of(9), 0)


def test_souyi_optimize_merges_and_exits_like_the_other_commands(tmp_path, capsys):
    corpus, path = Corpus(12), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        one_document_per_batch(writer, corpus, 4, 3)
    assert cli_main(["optimize", "--index", str(path), "--max-segments", "2", "-q"]) == 0
    assert "merged 4 segments into 2" in capsys.readouterr().out
    assert len(IndexReader.open(path).segment_entries()) == 2
    assert cli_main(["optimize", "--index", str(path), "--max-segments", "2"]) == 0
    assert "nothing to merge" in capsys.readouterr().out
    with new_writer(path, merge=False) as writer:
        commit(writer, corpus, ("d0", 0))
    assert cli_main(["optimize", "--index", str(path), "--max-segments", "2", "-q"]) == 0
    assert "rewrote 2 segment(s), 3 deleted passages dropped" in capsys.readouterr().out
    assert_ranks_like_a_fresh_build(path)
    assert cli_main(["optimize", "--index", str(tmp_path / "none")]) == 3
    with pytest.raises(SystemExit) as exc:
        cli_main(["optimize", "--index", str(path), "--max-segments", "0"])
    assert exc.value.code == 2


def test_repair_recounts_a_manifest_that_disagrees_with_sqlite(tmp_path):
    corpus, path = Corpus(13), tmp_path / "index"
    with new_writer(path) as writer:
        corpus.stage(writer, "a", 5)
        writer.commit()
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps(dict(manifest, lexical_length=1, counts={"documents": 9,
                                                                                             "passages": 9})))
    problems = IndexReader.open(path).check()
    assert len(problems) == 2 and "counts" in problems[0] and "total length" in problems[1]
    with IndexWriter(path) as writer:
        writer.repair()
        assert writer.segments == manifest["segments"]  # the segment itself was healthy: kept
    assert_ranks_like_a_fresh_build(path)


def postings_by_term(index: BM25Index) -> dict[str, tuple[list[int], list[float]]]:
    ids = index.row_ids
    return {w: (ids[index.rows[index.offsets[n]:index.offsets[n + 1]]].tolist(),
                index.tfs[index.offsets[n]:index.offsets[n + 1]].tolist()) for w, n in index.terms.items()}


def test_joined_postings_are_those_of_a_fresh_build_of_the_live_passages():
    rng = np.random.default_rng(14)
    tokens = {pid: list(rng.choice(WORDS, size=int(rng.integers(0, 9)))) for pid in range(60)}
    tokens[7] = ["only-in-a-deleted-passage"]
    parts, live = [], []
    for lo, hi in ((0, 20), (20, 21), (21, 45), (45, 60)):
        ids = list(range(lo, hi))
        arrays = segment_arrays(BM25Index.build([tokens[p] for p in ids], ids), 5.0)
        chosen = rng.choice(ids, size=len(ids) // 3, replace=False)
        deleted = np.union1d(chosen, [7] if lo == 0 else []).astype(np.int64)
        parts.append((arrays, deleted))
        live += [p for p in ids if p not in deleted]
    joined = merge_postings(parts, **BM25)
    fresh = BM25Index.build([tokens[p] for p in live], live, **BM25)
    np.testing.assert_array_equal(joined.row_ids, fresh.row_ids)
    np.testing.assert_array_equal(joined.doc_len, fresh.doc_len)
    assert postings_by_term(joined) == postings_by_term(fresh)
    assert "only-in-a-deleted-passage" not in joined.terms


def test_a_batch_that_fails_to_write_its_segment_leaves_nothing_for_the_next(tmp_path, monkeypatch):
    corpus, path = Corpus(15), tmp_path / "index"
    with new_writer(path) as writer:
        commit(writer, corpus, ("a", 2))

        def full_disk(*args: object) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patch:
            patch.setattr("indexer.store.write_segment", full_disk)
            with pytest.raises(OSError):
                commit(writer, corpus, ("lost", 3), ("a", 0))
        commit(writer, corpus, ("b", 2))
        assert set(writer.documents()) == {"a", "b"}
    assert_ranks_like_a_fresh_build(path)


def test_a_merge_over_a_damaged_segment_is_skipped_and_the_batch_stays_committed(tmp_path, caplog):
    corpus, path = Corpus(16), tmp_path / "index"
    with new_writer(path, merge=False) as writer:
        one_document_per_batch(writer, corpus, merge_policy.SEGMENTS_PER_TIER, 2)
        damaged = path / "segments" / writer.segments[0]["name"] / "vectors.faiss"
    damaged.write_bytes(b"damaged")
    with IndexWriter(path) as writer:
        commit(writer, corpus, ("new", 2))  # the policy now asks for a merge that includes the damaged segment
        assert "new" in writer.documents() and len(writer.segments) == merge_policy.SEGMENTS_PER_TIER + 1
    assert "merge skipped" in caplog.text
