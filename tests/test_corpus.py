"""The index as a living store: add, update, remove, filters, one writer, readers never blocked."""

from __future__ import annotations

import os
import sqlite3
import threading

import numpy as np
import pytest

from indexer import (
    DocumentError,
    IndexBusy,
    add_documents,
    build_index,
    check_index,
    list_documents,
    remove_documents,
)
from indexer.index_dir import LOCK, acquire_lock
from indexer.store import IndexWriter
from search import BadQuery, Searcher

DOCS = {
    "port.txt": "宁波舟山港货物吞吐量连续多年位居全球第一。集装箱航线覆盖全球主要港口。",
    "market.txt": "义乌小商品市场闻名世界，出口商品种类超过两百万种。",
    "software.txt": "杭州软件和信息服务业收入快速增长，云计算和电子商务企业集聚。",
    "tea.txt": "西湖龙井茶产量稳定，茶文化旅游带动乡村振兴。",
}
QUERIES = ["港口吞吐量", "小商品出口", "软件服务业收入", "茶叶 旅游", "Which port handles the most cargo?"]


def write(folder, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def ranking(searcher: Searcher, query: str, mode: str) -> list[tuple[str, str, float]]:
    return [(h.doc_id, h.text, round(h.score, 4)) for h in searcher.search(query, k=20, mode=mode)]


def test_incremental_changes_equal_a_fresh_rebuild(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, {n: DOCS[n] for n in ("port.txt", "market.txt")})
    first = add_documents([docs], tmp_path / "live", embedder=embedder)
    assert (first.added, first.updated, first.generation) == (2, 0, 1)
    write(docs, {"software.txt": DOCS["software.txt"], "tea.txt": DOCS["tea.txt"]})
    write(docs, {"market.txt": DOCS["market.txt"] + "义乌国际商贸城是全球最大的小商品批发市场。"})
    second = add_documents([docs], tmp_path / "live", embedder=embedder)
    assert (second.added, second.updated, second.unchanged) == (2, 1, 1)
    remove_documents(["tea.txt"], tmp_path / "live")
    (docs / "tea.txt").unlink()

    build_index([docs], tmp_path / "fresh", embedder=embedder)
    live, fresh = Searcher.open(tmp_path / "live", embedder), Searcher.open(tmp_path / "fresh", embedder)
    assert live.size == fresh.size
    for query in QUERIES:
        for mode in ("lexical", "dense", "hybrid"):
            assert ranking(live, query, mode) == ranking(fresh, query, mode), (query, mode)
    assert check_index(tmp_path / "live") == []


def test_removed_documents_vanish_from_every_mode(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, DOCS)
    add_documents([docs], tmp_path / "index", embedder=embedder)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert any(h.doc_id == "port.txt" for h in searcher.search("港口", k=50, mode="dense"))
    report = remove_documents(["port.txt"], tmp_path / "index")
    assert report.removed == 1 and report.documents == 3
    for mode in ("dense", "lexical", "hybrid"):
        assert all(h.doc_id != "port.txt" for h in searcher.search("宁波舟山港吞吐量", k=50, mode=mode))
    assert [d.name for d in list_documents(tmp_path / "index")] == ["market.txt", "software.txt", "tea.txt"]
    with pytest.raises(DocumentError, match="souyi list"):
        remove_documents(["never-indexed.txt"], tmp_path / "index")


def test_unchanged_files_are_skipped_and_make_no_new_generation(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, DOCS)
    first = add_documents([docs], tmp_path / "index", embedder=embedder)
    again = add_documents([docs], tmp_path / "index", embedder=embedder)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    assert again.generation == first.generation
    (docs / "tea.txt").write_text(DOCS["tea.txt"], encoding="utf-8")  # touched, same content
    touched = add_documents([docs], tmp_path / "index", embedder=embedder)
    assert (touched.updated, touched.generation) == (0, first.generation)


def test_include_exclude_and_metadata_filters(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, {"2008/port.txt": DOCS["port.txt"], "2009/market.txt": DOCS["market.txt"],
                 "drafts/tea.txt": DOCS["tea.txt"]})
    (docs / "2008" / "port.txt.meta.json").write_text('{"year": 2008, "topic": "港口"}', encoding="utf-8")
    report = add_documents([docs], tmp_path / "index", embedder=embedder, exclude=["drafts/*"],
                           meta={"source": "统计局"})
    assert report.added == 2
    searcher = Searcher.open(tmp_path / "index", embedder)
    hits = searcher.search("浙江经济", k=10, filters={"year": "2008"})
    assert [h.doc_id for h in hits] == ["2008/port.txt"]
    assert hits[0].meta == {"source": "统计局", "year": 2008, "topic": "港口"}
    assert {h.doc_id for h in searcher.search("浙江", k=10, filters={"source": "统计局"})} == {
        "2008/port.txt", "2009/market.txt"}
    assert {h.doc_id for h in searcher.search("浙江", k=10, mode="lexical", filters={"doc": ["2009/market.txt"]})
            } <= {"2009/market.txt"}
    assert searcher.search("浙江", k=10, filters={"year": "1999"}) == []
    with pytest.raises(BadQuery):
        searcher.search("浙江", filters={"": "x"})
    only = add_documents([docs], tmp_path / "other", embedder=embedder, include=["2009/*", "drafts/*"])
    assert only.added == 2
    assert [d.name for d in list_documents(tmp_path / "other")] == ["2009/market.txt", "drafts/tea.txt"]


def test_a_second_writer_waits_then_fails_clearly(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, {"port.txt": DOCS["port.txt"]})
    add_documents([docs], tmp_path / "index", embedder=embedder)
    holder = acquire_lock(tmp_path / "index" / LOCK, 1.0)  # another writer in progress
    try:
        write(docs, {"tea.txt": DOCS["tea.txt"]})
        with pytest.raises(IndexBusy, match="another process"):
            add_documents([docs], tmp_path / "index", embedder=embedder, lock_timeout=0.3)
    finally:
        os.close(holder)
    assert add_documents([docs], tmp_path / "index", embedder=embedder).added == 1


def test_an_unfinished_batch_is_rolled_back(tmp_path, embedder):
    """Rows a crashed batch wrote after the last commit are invisible, then undone by the next writer."""
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, {"port.txt": DOCS["port.txt"]})
    add_documents([docs], tmp_path / "index", embedder=embedder)
    db = sqlite3.connect(tmp_path / "index" / "passages.sqlite3")
    with db:  # what a batch killed between its SQLite commit and its manifest looks like
        db.execute("INSERT INTO documents (name, title, source, encoding, sha256, size, mtime_ns, meta, text, "
                   "indexed_at, added_gen) VALUES ('ghost.txt', 'g', 'g', 'utf-8', 'x', 1, 1, '{}', '幽灵', 0, 2)")
        db.execute("UPDATE passages SET deleted_gen = 2")
    db.close()
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert [h.doc_id for h in searcher.search("港口", k=5)] == ["port.txt"]
    assert [d.name for d in list_documents(tmp_path / "index")] == ["port.txt"]
    with IndexWriter(tmp_path / "index") as writer:  # recovery on open
        assert list(writer.documents()) == ["port.txt"]
    assert check_index(tmp_path / "index") == []


def test_readers_keep_searching_while_a_batch_is_written(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, {"port.txt": DOCS["port.txt"]})
    add_documents([docs], tmp_path / "index", embedder=embedder)
    searcher = Searcher.open(tmp_path / "index", embedder)
    errors, sizes, done = [], [], threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                hits = searcher.search("港口", k=10, mode="lexical")
                assert hits and hits[0].doc_id == "port.txt"
                sizes.append(searcher.size)
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(3):
            write(docs, {f"extra-{i}.txt": f"第{i}份补充材料：{DOCS['market.txt']}"})
            add_documents([docs], tmp_path / "index", embedder=embedder)
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert sizes and sizes == sorted(sizes) and sizes[-1] <= 4
    assert searcher.search("港口", k=10)[0].doc_id == "port.txt" and searcher.size == 4


def test_check_finds_and_repairs_a_damaged_vector_file(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, DOCS)
    add_documents([docs], tmp_path / "index", embedder=embedder)
    before = Searcher.open(tmp_path / "index", embedder).search("港口", k=3)
    [vectors] = (tmp_path / "index").glob("segments/*/vectors.faiss")  # one batch: one segment
    vectors.write_bytes(vectors.read_bytes()[:100])
    problems = check_index(tmp_path / "index")
    assert problems and "repair" in problems[0]
    assert check_index(tmp_path / "index", repair=True) == []
    after = Searcher.open(tmp_path / "index", embedder).search("港口", k=3)
    assert [h.text for h in after] == [h.text for h in before]
    assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-5)


def test_bm25_update_equals_rebuild():
    from indexer.bm25 import BM25Index

    passages = {1: ["港口", "吞吐量", "港口"], 2: ["市场", "出口"], 3: ["软件", "收入", "港口"], 4: ["茶", "旅游"]}
    full = BM25Index.build([passages[i] for i in (1, 3, 4)], [1, 3, 4])
    stepwise = BM25Index.build([passages[1], passages[2]], [1, 2]).updated([2], [3, 4], [passages[3], passages[4]])
    np.testing.assert_array_equal(stepwise.row_ids, full.row_ids)
    for query in (["港口"], ["茶", "收入"], ["市场"]):
        np.testing.assert_allclose(stepwise.scores(query), full.scores(query), rtol=1e-6)
    with pytest.raises(ValueError):
        full.updated([], [2], [["x"]])  # ids must grow


def test_a_user_dictionary_travels_with_the_index(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    write(docs, {"cloud.txt": "杭州企业建设云原生数据湖平台，支撑政务数据共享。", "tea.txt": DOCS["tea.txt"]})
    userdict = tmp_path / "terms.txt"
    userdict.write_text("云原生数据湖 10 n\n", encoding="utf-8")
    build_index([docs], tmp_path / "index", embedder=embedder, userdict=userdict)
    userdict.unlink()  # the index keeps its own copy
    searcher = Searcher.open(tmp_path / "index", embedder)
    hits = searcher.search("云原生数据湖", k=2, mode="lexical")
    assert hits[0].doc_id == "cloud.txt"
    assert (hits[0].text[hits[0].highlights[0][0]:hits[0].highlights[0][1]]).startswith("云原生数据湖")
    assert searcher.info()["analyzer"]["userdict"]["entries"] == 1
    write(docs, {"more.txt": "云原生数据湖的安全治理。"})
    assert add_documents([docs], tmp_path / "index", embedder=embedder).added == 1  # same dictionary reused
    assert {h.doc_id for h in searcher.search("云原生数据湖", k=5, mode="lexical")} == {"cloud.txt", "more.txt"}
