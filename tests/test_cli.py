"""The ``souyi`` command, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE_FILE
from souyi.cli import main


def souyi(*args: str, env: dict, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "souyi", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_search_json_matches_the_python_api(sample_index, searcher, cli_env):
    query = "阿里巴巴在哪里上市"
    result = souyi("search", query, "--index", str(sample_index), "-k", "3", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["query"] == query and payload["mode"] == "hybrid"
    assert payload["hits"] == [hit.to_dict() for hit in searcher.search(query, k=3)]


def test_search_text_output_shows_document_paragraph_and_highlights(sample_index, cli_env):
    result = souyi("search", "杭州软件服务外包", "--index", str(sample_index), "-k", "2", "--color", "always",
                   env=cli_env)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.lstrip().startswith("1.") and SAMPLE_FILE.name in first and "¶" in first
    assert "\x1b[1;33m" in result.stdout  # highlighted words
    plain = souyi("search", "杭州软件服务外包", "--index", str(sample_index), "-k", "2", env=cli_env)
    assert "\x1b[" not in plain.stdout  # no colour codes when piped


def test_postings_read_and_release_find_what_map_finds_and_a_bad_mode_is_named(sample_index, cli_env):
    query = ["search", "杭州软件服务外包", "--index", str(sample_index), "-k", "3", "--json"]
    mapped = souyi(*query, env=cli_env)
    assert mapped.returncode == 0, mapped.stderr
    for mode in ("read", "release"):
        other = souyi(*query, env=dict(cli_env, SOUYI_POSTINGS=mode))
        assert other.returncode == 0, other.stderr
        assert json.loads(other.stdout)["hits"] == json.loads(mapped.stdout)["hits"]
    bad = souyi(*query, env=dict(cli_env, SOUYI_POSTINGS="mmap"))
    assert bad.returncode == 1 and "SOUYI_POSTINGS must be one of map, read, release, got 'mmap'" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_exits_2_with_a_message(sample_index, query):
    assert main(["search", query, "--index", str(sample_index)]) == 2


def test_missing_index_exits_3_and_says_how_to_build(tmp_path, capsys):
    assert main(["search", "软件", "--index", str(tmp_path / "none")]) == 3
    assert "souyi index" in capsys.readouterr().err


def test_index_decodes_encodings_and_refuses_bad_files_by_name(tmp_path, cli_env):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gbk.txt").write_bytes("宁波港集装箱吞吐量突破一千万标准箱。".encode("gbk"))
    (docs / "utf16.txt").write_bytes("温州民营企业数量增长迅速。".encode("utf-16"))
    (docs / "notes.md").write_text("# 会议纪要\n\n讨论了数字经济发展规划。\n", encoding="utf-8")
    (docs / "broken.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(range(200)))
    (docs / "image.png").write_bytes(b"\x89PNG")  # not a supported type: passed over inside a folder
    index = tmp_path / "index"
    result = souyi("index", str(docs), "--index", str(index), env=cli_env)
    assert result.returncode == 1  # some files were refused
    assert "broken.txt" in result.stderr and "image.png" not in result.stderr
    assert "3 documents" in result.stdout
    found = souyi("search", "宁波港吞吐量", "--index", str(index), "-k", "1", "--json", env=cli_env)
    hit = json.loads(found.stdout)["hits"][0]
    assert hit["doc_id"] == "gbk.txt" and "宁波港" in hit["text"]
    md = souyi("search", "数字经济", "--index", str(index), "-k", "1", "--json", env=cli_env)
    assert json.loads(md.stdout)["hits"][0]["title"] == "会议纪要"


def test_index_refuses_an_unsupported_file_named_explicitly(tmp_path, capsys):
    odd = tmp_path / "table.xlsx"
    odd.write_bytes(b"PK\x03\x04")
    assert main(["index", str(odd), "--index", str(tmp_path / "i")]) == 1
    assert "table.xlsx" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()


def test_help_explains_every_command():
    result = subprocess.run([sys.executable, "-m", "souyi", "--help"], capture_output=True, text=True, timeout=60)
    for command in ("index", "search", "eval", "demo"):
        assert command in result.stdout


def test_eval_reports_every_metric_as_json(tmp_path, cli_env):
    collection = tmp_path / "mini"
    collection.mkdir()
    corpus = [
        {"id": "d1", "title": "港口", "text": "宁波舟山港货物吞吐量连续多年位居全球第一。"},
        {"id": "d2", "title": "软件", "text": "杭州软件和信息服务业收入快速增长，云计算企业集聚。"},
        {"id": "d3", "title": "农业", "text": "浙江茶叶产量稳定，西湖龙井享誉海内外。"},
    ]
    queries = [
        {"id": "q1", "text": "哪个港口吞吐量全球第一", "lang": "zh"},
        {"id": "q2", "text": "Which city has a fast growing software industry?", "lang": "en"},
    ]
    (collection / "corpus.jsonl").write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in corpus),
                                             encoding="utf-8")
    (collection / "queries.jsonl").write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in queries),
                                              encoding="utf-8")
    (collection / "qrels.tsv").write_text("q1\td1\t1\nq2\td2\t1\n", encoding="utf-8")
    result = souyi("eval", str(collection), "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["collection"] == "mini" and report["n_docs"] == 3 and report["n_queries"] == 2
    assert set(report["modes"]) == {"hybrid", "dense", "lexical"}
    for metrics in report["modes"].values():
        assert set(metrics) == {"recall@1", "recall@10", "mrr@10", "latency_ms_p50", "latency_ms_p99"}
        assert 0.0 <= metrics["mrr@10"] <= metrics["recall@10"] <= 1.0
    assert report["modes"]["hybrid"]["recall@1"] == 1.0
    # the English question matches no Chinese word itself, only through its translations (docs/translation.md)
    assert report["modes"]["lexical"]["recall@10"] == 1.0


def test_index_fast_is_recorded_and_add_keeps_it(tmp_path, embedder, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "port.txt").write_text("宁波港集装箱吞吐量突破一千万标准箱。", encoding="utf-8")
    index = tmp_path / "index"
    assert main(["index", str(docs), "--index", str(index), "--fast", "-q"]) == 0
    (docs / "city.txt").write_text("温州民营企业数量增长迅速。", encoding="utf-8")
    assert main(["add", str(docs), "--index", str(index), "-q"]) == 0  # no --fast: the index says so
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fast"] == {"passage_runtime": "onnx-int8", "sentence_vectors": False}
    assert manifest["counts"]["documents"] == 2


def test_search_facets_and_query_syntax(sample_index, searcher, cli_env):
    query = '"服务外包" -阿里巴巴'
    result = souyi("search", query, "--index", str(sample_index), "--facet", "doc", "--json", env=cli_env)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    expected = searcher.query(query, facets=["doc"])
    assert payload["hits"] == [hit.to_dict() for hit in expected.hits]
    assert payload["total"] == expected.total and payload["facets"] == {"doc": [[SAMPLE_FILE.name, expected.total]]}
    assert all("服务外包" in hit["text"] and "阿里巴巴" not in hit["text"] for hit in payload["hits"])
    text = souyi("search", query, "--index", str(sample_index), "--facet", "doc", env=cli_env).stdout
    assert text.rstrip().endswith(f"{expected.total:>5}  {SAMPLE_FILE.name}")  # counts after the hits
    bad = souyi("search", "year:abc..", "--index", str(sample_index), env=cli_env)  # no year field: text
    assert bad.returncode == 0, bad.stderr


#: The last release before document identity was checked across batches (its index format is the current one).
PREVIOUS_RELEASE = "20942e9"


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory) -> Path:
    """The previous release's packages, from this repository's history (an index "built by an earlier version")."""
    repo = Path(__file__).resolve().parents[1]
    tree = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(["git", "-C", str(repo), "archive", PREVIOUS_RELEASE, "indexer", "search", "souyi"],
                             capture_output=True, timeout=120)
    if archive.returncode != 0:
        pytest.skip(f"this checkout has no history of {PREVIOUS_RELEASE}: {archive.stderr.decode()[:200]}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=120)
    return tree


def _two_folders_with_notes(root: Path) -> None:
    """``a/notes.txt`` and ``b/notes.txt``: one relative name, two different files."""
    texts = {"a": "西溪湿地\n\n西溪湿地位于杭州城西，水网密布。", "b": "钱塘江海塘\n\n钱塘江海塘历代不断加固。"}
    for folder, text in texts.items():
        (root / folder).mkdir()
        (root / folder / "notes.txt").write_text(text, encoding="utf-8")


def test_two_folders_with_one_file_name_never_replace_each_other(tmp_path, cli_env, previous_release):
    _two_folders_with_notes(tmp_path)
    index = str(tmp_path / "idx")
    old = subprocess.run([sys.executable, "-m", "souyi", "add", "b/", "--index", index, "-q"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=600, env=dict(cli_env, PYTHONPATH=str(previous_release)))
    assert old.returncode == 0, old.stderr  # the index is the previous release's

    refused = souyi("add", "a/", "--index", index, "-q", env=cli_env, cwd=tmp_path)
    assert refused.returncode == 1 and "notes.txt" in refused.stderr and "--replace" in refused.stderr
    found = souyi("search", "钱塘江海塘", "--index", index, "--mode", "lexical", "--json", env=cli_env, cwd=tmp_path)
    assert [hit["doc_id"] for hit in json.loads(found.stdout)["hits"]] == ["notes.txt"]  # b's text is still there

    assert souyi("add", "a/", "--index", index, "--name-prefix", "a", "-q", env=cli_env, cwd=tmp_path).returncode == 0
    listed = souyi("list", "--index", index, "--source", env=cli_env, cwd=tmp_path).stdout
    assert "a/notes.txt" in listed and str((tmp_path / "b" / "notes.txt").resolve()) in listed

    removed = souyi("remove", "b/notes.txt", str(tmp_path / "a"), "--index", index, env=cli_env, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert "removed notes.txt" in removed.stdout and "removed a/notes.txt" in removed.stdout
    assert "0 documents" in removed.stdout
    missing = souyi("remove", "b/notes.txt", "--index", index, env=cli_env, cwd=tmp_path)
    assert missing.returncode == 1 and "b/notes.txt" in missing.stderr


def test_replace_takes_the_name_over_from_another_file(tmp_path, cli_env):
    _two_folders_with_notes(tmp_path)
    index = str(tmp_path / "idx")
    assert souyi("add", "b/", "--index", index, "-q", env=cli_env, cwd=tmp_path).returncode == 0
    replaced = souyi("add", "a/", "--index", index, "--replace", "-q", env=cli_env, cwd=tmp_path)
    assert replaced.returncode == 0 and "updated 1" in replaced.stdout
    listed = json.loads(souyi("list", "--index", index, "--json", env=cli_env).stdout)
    assert [(d["name"], d["source"]) for d in listed] == [("notes.txt", str((tmp_path / "a" / "notes.txt").resolve()))]
