"""``souyi show`` and ``souyi similar``, run as a user runs them."""

from __future__ import annotations

import json

import pytest

from conftest import SAMPLE_FILE
from souyi.cli import main
from souyi.cli_read import MARK_CLOSE, MARK_OPEN


@pytest.fixture(scope="module")
def hit(searcher):
    return searcher.search("杭州软件服务外包", k=1)[0]


def test_show_prints_every_paragraph_numbered_with_the_outline(sample_index, searcher, capsys):
    assert main(["show", SAMPLE_FILE.name, "--index", str(sample_index)]) == 0
    out = capsys.readouterr().out
    doc = searcher.document(SAMPLE_FILE.name)
    assert out.startswith(doc.title) and "outline:" in out
    for paragraph in (doc.paragraphs[0], doc.paragraphs[-1]):
        assert f"¶{paragraph.number:<4} {doc.text[paragraph.start:paragraph.end]}" in out
    assert MARK_OPEN not in out


def test_show_around_marks_the_passage_in_its_paragraphs(sample_index, searcher, hit, capsys):
    assert main(["show", hit.doc_id, "--around", str(hit.passage_id), "--context", "1",
                 "--index", str(sample_index)]) == 0
    out = capsys.readouterr().out
    assert f"{MARK_OPEN}{hit.text}{MARK_CLOSE}" in out
    marked = [line for line in out.splitlines() if line.startswith("» ")]
    assert marked and f"¶{hit.paragraph}" in marked[0]
    shown = [line for line in out.splitlines() if line.lstrip("» ").startswith("¶")]
    assert 2 <= len(shown) <= 3 + len(marked) - 1  # one paragraph of context on each side (fewer at an edge)


def test_show_around_json_gives_the_paragraphs_and_the_passage(sample_index, hit, capsys):
    assert main(["show", hit.doc_id, "--around", str(hit.passage_id), "--context", "0", "--json",
                 "--index", str(sample_index)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["passage"]["passage_id"] == hit.passage_id
    assert [p["number"] for p in payload["paragraphs"]][0] == hit.paragraph
    assert hit.text in "\n".join(p["text"] for p in payload["paragraphs"])


def test_show_json_is_the_python_document(sample_index, searcher, capsys):
    assert main(["show", SAMPLE_FILE.name, "--json", "--index", str(sample_index)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(searcher.document(SAMPLE_FILE.name)
                                                                        .to_dict()))


@pytest.mark.parametrize("argv", [["show", "../../etc/passwd"], ["show", "<script>"],
                                  ["similar", "999999999"], ["show", SAMPLE_FILE.name, "--around", "999999999"]])
def test_unknown_ids_exit_6_with_a_message(sample_index, argv, capsys):
    assert main([*argv, "--index", str(sample_index)]) == 6
    err = capsys.readouterr().err
    assert err.startswith("souyi: error: ") and ("no " in err or "not part of" in err)


def test_bad_options_exit_2(sample_index, hit):
    assert main(["show", hit.doc_id, "--around", str(hit.passage_id), "--context", "-1",
                 "--index", str(sample_index)]) == 2
    assert main(["similar", str(hit.passage_id), "-k", "0", "--index", str(sample_index)]) == 2


def test_similar_json_matches_the_python_api(sample_index, searcher, hit, capsys):
    assert main(["similar", str(hit.passage_id), "-k", "4", "--same-document-too", "--json",
                 "--index", str(sample_index)]) == 0
    payload = json.loads(capsys.readouterr().out)
    expected = [h.to_dict() for h in searcher.similar(hit.passage_id, k=4, same_document=True)]
    assert payload["hits"] == expected and len(expected) == 4


def test_similar_text_lists_passages_with_their_ids(sample_index, searcher, hit, capsys):
    assert main(["similar", str(hit.passage_id), "-k", "2", "--index", str(sample_index)]) == 0
    out = capsys.readouterr().out
    # the sample index holds one document: only passages of other documents means none
    assert searcher.similar(hit.passage_id, k=2) == [] and "no similar passages" in out
    assert main(["similar", str(hit.passage_id), "-k", "2", "--same-document-too", "--index", str(sample_index)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].lstrip().startswith("1.") and "passage " in lines[0]
