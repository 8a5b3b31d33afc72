"""A searcher moving to a new generation: cheap ones at once, large ones in the background, never a request first."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from indexer import add_documents, remove_documents
from search import Searcher, embedded
from search.embedded import EmbeddedSnapshot, EmbeddedStore
from web import create_app

DOCS = {
    "port.txt": "宁波舟山港货物吞吐量连续多年位居全球第一。集装箱航线覆盖全球主要港口。",
    "tea.txt": "西湖龙井茶产量稳定，茶文化旅游带动乡村振兴。",
    "software.txt": "杭州软件和信息服务业收入快速增长。",
}


def add(tmp_path, name: str, embedder, *more: str) -> int:
    """Add documents ``name`` and ``more`` in one batch; returns its generation."""
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    paths = []
    for each in (name, *more):
        (docs / each).write_text(DOCS[each], encoding="utf-8")
        paths.append(docs / each)
    return add_documents(paths, tmp_path / "index", embedder=embedder).generation


@pytest.fixture()
def held_loads(monkeypatch):
    """Every generation counts as large, and each load waits until the test lets it finish."""
    release = threading.Event()
    real_load = EmbeddedSnapshot.load.__func__

    def load(cls, reader, previous=None):
        if previous is not None:  # the first generation of a store is loaded when it opens
            assert release.wait(60), "the test never released the load"
        return real_load(cls, reader, previous)

    monkeypatch.setattr(embedded, "SYNC_LOAD_PASSAGES", -1)
    monkeypatch.setattr(EmbeddedSnapshot, "load", classmethod(load))
    return release


def test_a_small_batch_is_visible_to_the_next_search_of_its_process(tmp_path, embedder):
    add(tmp_path, "port.txt", embedder)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert [h.doc_id for h in searcher.search("龙井茶", k=5, mode="lexical")] == []
    add(tmp_path, "tea.txt", embedder)
    assert [h.doc_id for h in searcher.search("龙井茶", k=5, mode="lexical")] == ["tea.txt"]


def test_a_new_generation_keeps_the_segments_already_loaded(tmp_path, embedder):
    add(tmp_path, "port.txt", embedder, "software.txt")
    store = EmbeddedStore.open(tmp_path / "index")
    first = store.snapshot().segments.live[0]
    add(tmp_path, "tea.txt", embedder)
    added = store.snapshot()
    assert len(added.segments) == 2 and added.segments.live[0] is first  # neither its files nor its deletions read
    remove_documents(["port.txt"], tmp_path / "index")
    removed = store.snapshot()
    kept = removed.segments.live[0]
    assert kept.segment is first.segment and kept.size == first.size - 1  # only the deletion file was read
    assert removed.segments.live[1] is added.segments.live[1]
    terms = removed.analyzer.tokens("港口 软件 龙井茶")
    found = removed.lexical(terms, 10, None).ids.tolist()
    assert sorted(p.doc_name for p in removed.passages(found).values()) == ["software.txt", "tea.txt"]
    # fusion's BM25 scores: those retrieved reused, the others computed, all as if every passage were scored anew
    every = np.concatenate([added.segments.ids[::-1], [-1, 10**9]])
    best = added.lexical(terms, 2, None)
    assert best.scores_of(every).tolist() == added.segments.bm25.scores_of(terms, every).tolist()
    assert np.count_nonzero(best.scores_of(every)) > 2


def test_a_large_generation_loads_in_the_background_while_the_previous_one_serves(tmp_path, embedder, held_loads):
    first = add(tmp_path, "port.txt", embedder)
    store = EmbeddedStore.open(tmp_path / "index")
    second = add(tmp_path, "tea.txt", embedder)
    # the load is held: searches are answered from the generation already loaded, none waits
    assert store.snapshot().reader.generation == first
    assert store.snapshot().reader.generation == first
    held_loads.set()
    assert store.refresh().reader.generation == second
    assert store.snapshot().reader.generation == second
    assert store.snapshot().size == 2


def test_a_failed_background_load_keeps_the_previous_generation(tmp_path, embedder, monkeypatch):
    first = add(tmp_path, "port.txt", embedder)
    store = EmbeddedStore.open(tmp_path / "index")
    second = add(tmp_path, "tea.txt", embedder)
    real_load = EmbeddedSnapshot.load.__func__
    failures = []

    def failing(cls, reader, previous=None):
        failures.append(reader.generation)
        raise OSError("disk gone")

    monkeypatch.setattr(embedded, "SYNC_LOAD_PASSAGES", -1)
    monkeypatch.setattr(EmbeddedSnapshot, "load", classmethod(failing))
    assert store.refresh().reader.generation == first
    assert store.snapshot().reader.generation == first  # the same manifest is not tried again per search
    assert failures == [second]
    monkeypatch.setattr(EmbeddedSnapshot, "load", classmethod(real_load))
    assert store.refresh().reader.generation == second  # the follower tries again


def test_souyi_serve_follows_the_index_off_the_request_path(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(embedded, "SYNC_LOAD_PASSAGES", -1)
    add(tmp_path, "port.txt", embedder)
    searcher = Searcher.open(tmp_path / "index", embedder)
    engine = create_app(tmp_path / "index", {"SOUYI_SEARCHER": searcher}).extensions["souyi"]
    stop = engine.follow(interval=0.05)
    try:
        second = add(tmp_path, "tea.txt", embedder)
        deadline = time.monotonic() + 60
        while searcher.store.reader.generation != second and time.monotonic() < deadline:
            time.sleep(0.05)  # no search is made: only the follower can move the searcher
        assert searcher.store.reader.generation == second
    finally:
        stop.set()
    assert [h.doc_id for h in searcher.search("龙井茶", k=5, mode="lexical")] == ["tea.txt"]
