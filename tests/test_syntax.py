"""The query language parser: what is syntax, what stays text, and that nothing typed makes it raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search import MAX_FILTERS, BadQuery, parse

FIELDS = ("year", "date", "region")


def test_phrases_in_every_quote_style():
    parsed = parse('"数字 经济" “软件园” 「電子商務」 『x y』 rest', FIELDS)
    assert [p.text for p in parsed.phrases] == ["数字 经济", "软件园", "電子商務", "x y"]
    assert parsed.text == "rest"


def test_exclusions_of_words_and_phrases():
    parsed = parse('数字经济 -电子商务 -"电子 商务" - --x', FIELDS)
    assert [p.text for p in parsed.exclusions] == ["电子商务", "电子 商务"]
    assert parsed.text == "数字经济 - --x"


def test_known_fields_are_syntax_and_others_text():
    parsed = parse('doc:2009/port.txt title:"年度 报告" year:2009 http://x.cn 3:1 比例：3:1 other:5', FIELDS)
    assert [(c.field, c.value) for c in parsed.fields] == [
        ("doc", "2009/port.txt"), ("title", "年度 报告"), ("year", "2009")]
    assert parsed.text == "http://x.cn 3:1 比例：3:1 other:5"


def test_ranges_and_comparisons():
    parsed = parse("year:2008..2010 year:..2005 year>=2009 date<2010-07-01 year>1", FIELDS)
    low_high = [(c.field, c.low, c.high, c.low_inclusive, c.high_inclusive) for c in parsed.fields]
    assert low_high == [
        ("year", "2008", "2010", True, True),
        ("year", None, "2005", True, True),
        ("year", "2009", None, True, True),
        ("date", None, "2010-07-01", True, False),
        ("year", "1", None, False, True),
    ]
    between, _, at_least, before, _ = parsed.fields
    assert between.matches(2009) and between.matches("2010") and not between.matches(2011)
    assert not between.matches("abc")
    assert before.matches("2010-06-30") and not before.matches("2010-07-01") and not before.matches("2009")
    assert at_least.matches(2009.5) and not at_least.matches(2008)


def test_range_on_doc_or_title_is_an_equality():
    assert parse("doc:a..b", FIELDS).fields[0].value == "a..b"
    assert parse("doc>=x", FIELDS).text == "doc>=x"


@pytest.mark.parametrize("query", ["year:abc..", "year>=abc", "year:2008..2010-01-01", "date:2010-13-01.."])
def test_unusable_range_operand_names_the_field(query):
    with pytest.raises(BadQuery, match="'(year|date)'"):
        parse(query, FIELDS)


def test_empty_range_or_value_is_text():
    assert parse("year:.. year: year>=", FIELDS).text == "year:.. year: year>="


def test_unbalanced_quotes_are_text():
    for query in ('数字经济 "软件', 'title:"x 数字', '-"abc', "「软件”"):
        parsed = parse(query, FIELDS)
        assert not parsed.constrained
        assert parsed.text == query


def test_removing_a_constraint_gives_the_query_without_it():
    parsed = parse('数字经济 "软件园" -电子 year:2009', FIELDS)
    spans = {type(c).__name__ + ":" + parsed.source[c.span[0]:c.span[1]]: c.span for c in parsed.constraints}
    assert parsed.without(spans['Phrase:"软件园"']) == "数字经济 -电子 year:2009"
    assert parsed.without(spans["FieldConstraint:year:2009"]) == '数字经济 "软件园" -电子'


def test_too_many_constraints():
    parse(" ".join(f"-w{i}" for i in range(MAX_FILTERS)), FIELDS)
    with pytest.raises(BadQuery, match=str(MAX_FILTERS)):
        parse(" ".join(f"-w{i}" for i in range(MAX_FILTERS + 1)), FIELDS)


_ALPHABET = st.sampled_from(list('ab 数字 "“”「」-:.><=yeardoc2019\t\n-') + ["year", "doc", "..", "date"])
_TEXT = st.lists(_ALPHABET, max_size=40).map("".join) | st.text(max_size=60)


def _parses(query: str) -> None:
    try:
        parsed = parse(query, FIELDS)
    except BadQuery as exc:
        message = str(exc)
        assert "constraints" in message or "year" in message or "date" in message, message
        return
    for constraint in parsed.constraints:  # every span removes cleanly
        assert 0 <= constraint.span[0] < constraint.span[1] <= len(query)
        parsed.without(constraint.span)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_every_string_parses(query):
    _parses(query)


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_quoting_a_whole_query_never_raises(query):
    for open_, close in (('"', '"'), ("“", "”"), ("「", "」")):
        if close not in query:
            parse(open_ + query + close, FIELDS)


# Characters whose folded forms coincide (traditional/simplified, full/half width, case, radicals),
# spaces of several kinds, and neighbours that decide word boundaries.
_FOLDING = "软軟件园園鱼魚⻥长長⻓AaＡａBb1１２2 \u3000\u00a0-_.,x"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_FOLDING, min_size=1, max_size=6), st.text(alphabet=_FOLDING, max_size=40))
def test_a_phrase_matches_raw_text_exactly_where_it_matches_the_folded_text(phrase, text):
    """The phrase check runs its pattern on the raw text (no folding per candidate); it must find the
    same occurrences as the pattern on the folded text, which defines what a phrase means."""
    from indexer.analyze import normalize
    from search.constraints import phrase_pattern

    if not normalize(phrase).split():
        return
    folded = [m.span() for m in phrase_pattern(phrase).finditer(normalize(text))]
    raw = [m.span() for m in phrase_pattern(phrase, raw=True).finditer(text)]
    assert raw == folded
