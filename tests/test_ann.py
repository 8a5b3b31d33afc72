"""The vector index chosen by size: exact below FLAT_MAX, IVF + 8-bit quantization above, kept up to date in place."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from indexer import add_documents, ann, build_index, check_index, remove_documents
from indexer.store import IndexReader
from search import Searcher
from souyi import SAMPLE_DIR
from souyi.cli import main as cli_main


def clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Normalised vectors around random centres: the shape ANN indexes are made for."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.4 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> set[int]:
    return set(ids[np.argsort(-(x @ q))[:k]].tolist())


def test_the_kind_follows_the_size_unless_forced():
    assert ann.plan(ann.FLAT_MAX) == "flat"
    assert ann.plan(ann.FLAT_MAX + 1) == "ivf"
    assert ann.plan(10, "ivf") == "ivf" and ann.plan(10**7, "flat") == "flat"
    with pytest.raises(ValueError, match="auto, flat, ivf"):
        ann.plan(10, "hnsw")
    assert ann.nlist_for(1_000_000) == 2048 and ann.nlist_for(100_000) == 512
    assert ann.nprobe_for(2048) == 64 and ann.nprobe_for(128) == ann.NPROBE_MIN
    # part of a larger index: the whole index's lists (others may share them), as far as the part can train them
    assert ann.nlist_for_part(100_000, 1_000_000) == 2048 and ann.nlist_for_part(60_000, 1_000_000) == 1024
    assert ann.nlist_for_part(100_000, 100_000) == ann.nlist_for(100_000) == ann.nlist_for_part(100_000, 10)


def test_ivf_finds_the_exact_neighbours_and_updates_in_place(tmp_path):
    x, ids = clustered(6000), np.arange(10, 6010, dtype=np.int64)
    index = ann.build(x, ids, 64, "ivf")
    assert ann.kind_of(index) == "ivf" and index.ntotal == 6000
    queries = clustered(50, seed=1)
    recall = np.mean([len(set(ann.search(index, q, 10)[0].tolist()) & exact_top(x, ids, q, 10)) / 10 for q in queries])
    assert recall >= 0.95
    # the file keeps the id -> vector map that fusion and removal use
    faiss.write_index(index, str(tmp_path / "v.faiss"))
    index = faiss.read_index(str(tmp_path / "v.faiss"))
    assert index.nprobe == ann.nprobe_for(index.nlist)
    np.testing.assert_allclose(index.reconstruct_batch(ids[:3]), x[:3], atol=0.02)
    centroids = faiss.vector_to_array(faiss.downcast_index(index.quantizer).codes).copy()
    ann.update(index, ids[:100], np.arange(7000, 7100), clustered(100, seed=2))
    assert not ann.needs_rebuild(index, index.ntotal, "ivf")
    assert np.array_equal(faiss.vector_to_array(faiss.downcast_index(index.quantizer).codes), centroids)
    assert np.array_equal(ann.ids_of(index), np.concatenate([ids[100:], np.arange(7000, 7100)]))
    found, _ = ann.search(index, x[0], 10)
    assert 10 not in found.tolist()


def test_filtered_search_returns_only_allowed_ids_at_every_selectivity():
    x, ids = clustered(6000), np.arange(6000, dtype=np.int64)
    for kind in ("flat", "ivf"):
        index = ann.build(x, ids, 64, kind)
        for allowed in (ids[::2], ids[::500]):  # wide filter: probed; narrow one: scored exactly
            found, scores = ann.search(index, x[0], 10, ann.Allowed(allowed))
            assert set(found.tolist()) <= set(allowed.tolist())
            assert len(found) == min(10, len(allowed))
            assert np.all(np.diff(scores) <= 1e-6)
            best = allowed[np.argmax(x[allowed] @ x[0])]
            assert found[0] == best


def test_rebuild_when_the_size_outgrows_the_index():
    x, ids = clustered(2000), np.arange(2000, dtype=np.int64)
    flat = ann.build(x, ids, 64)
    assert ann.kind_of(flat) == "flat"
    assert ann.needs_rebuild(flat, ann.FLAT_MAX + 1) and not ann.needs_rebuild(flat, ann.FLAT_MAX)
    ivf = ann.build(x, ids, 64, "ivf")  # nlist 64 (for 2000 passages)
    assert faiss.downcast_index(ivf).nlist == 64
    assert not ann.needs_rebuild(ivf, 2200, "ivf")  # 2·√n = 94 < 1.5·nlist
    assert ann.needs_rebuild(ivf, 2500, "ivf")  # 2·√n = 100 > 1.5·nlist: lists too long
    assert ann.needs_rebuild(ivf, 2200)  # chosen by size, 2200 passages are searched exactly
    big = ann.build(clustered(ann.FLAT_MAX + 10_000, dim=16), np.arange(ann.FLAT_MAX + 10_000), 16)
    assert ann.kind_of(big) == "ivf"
    assert not ann.needs_rebuild(big, ann.FLAT_MAX - 10_000)  # hysteresis: no flip back at the threshold
    assert ann.needs_rebuild(big, ann.FLAT_RETURN - 1)


def test_an_ivf_index_is_recorded_searched_updated_and_checked(tmp_path, embedder, sample_index):
    target = tmp_path / "ivf"
    build_index([SAMPLE_DIR], target, embedder=embedder, ann="ivf")
    manifest = json.loads((target / "manifest.json").read_text())
    [entry] = manifest["segments"]
    assert manifest["ann"]["requested"] == "ivf" and entry["ann"]["kind"] == "ivf"
    [segment] = IndexReader.open(target).segments()
    assert entry["ann"]["nlist"] == faiss.downcast_index(segment.vectors).nlist
    assert check_index(target) == []
    ivf, flat = Searcher.open(target, embedder), Searcher.open(sample_index, embedder)
    for query in ("软件和信息服务业收入", "How many software companies are there?"):
        assert ivf.search(query, k=1, mode="dense")[0].text == flat.search(query, k=1, mode="dense")[0].text
        assert ivf.search(query, k=1)[0].text == flat.search(query, k=1)[0].text

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "port.txt").write_text("宁波舟山港货物吞吐量连续多年位居全球第一。", encoding="utf-8")
    first_file = target / "segments" / entry["name"] / "vectors.faiss"
    before = first_file.read_bytes()
    add_documents([docs], target, embedder=embedder)
    old, new = IndexReader.open(target).segments()
    assert first_file.read_bytes() == before  # the batch wrote a segment of its own, the first one is untouched
    assert ann.kind_of(new.vectors) == "ivf" and new.vectors.ntotal == 1 and old.vectors.ntotal == entry["passages"]
    assert ivf.search("宁波舟山港吞吐量", k=1, mode="dense")[0].doc_id == "port.txt"
    remove_documents(["port.txt"], target)
    assert all(hit.doc_id != "port.txt" for hit in ivf.search("宁波舟山港吞吐量", k=5, mode="dense"))
    assert check_index(target) == []
    first_file.write_bytes(b"damaged")
    assert check_index(target, repair=True) == []
    assert [ann.kind_of(s.vectors) for s in IndexReader.open(target).segments()] == ["ivf"]


def test_cli_index_takes_the_kind(tmp_path, cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("SOUYI_CACHE_DIR", str(cache_dir))
    assert cli_main(["index", str(SAMPLE_DIR), "--index", str(tmp_path / "i"), "--ann", "flat", "-q"]) == 0
    assert json.loads((tmp_path / "i" / "manifest.json").read_text())["ann"]["requested"] == "flat"
    with pytest.raises(SystemExit):
        cli_main(["index", str(SAMPLE_DIR), "--index", str(tmp_path / "j"), "--ann", "hnsw"])


def test_allowed_without_clears_only_the_removed_ids():
    base = ann.Allowed(np.array([1, 3, 5, 8, 13, 21], dtype=np.int64))
    fewer = base.without(np.array([3, 4, 21], dtype=np.int64))  # 4 is not a member
    assert len(fewer) == 4 and fewer.ids.tolist() == [1, 5, 8, 13]
    assert base.ids.tolist() == [1, 3, 5, 8, 13, 21]  # the original is untouched
    members = [i for i in range(25) if fewer.selector.is_member(i)]
    assert members == [1, 5, 8, 13]
    assert base.without(np.zeros(0, dtype=np.int64)) is base


def test_a_restriction_probes_more_lists_as_it_narrows_but_deletions_alone_do_not():
    ids = np.arange(1000)
    assert ann.probe_scale(1000, None) == ann.probe_scale(1000, ann.Allowed(ids[:990])) == 1  # 10 deleted
    assert ann.probe_scale(1000, ann.Allowed(ids[:500])) == 2
    assert ann.probe_scale(1000, ann.Allowed(ids[:10])) == ann.FILTER_NPROBE_MAX

