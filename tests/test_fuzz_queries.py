"""Query fuzzing: whatever a caller sends, souyi answers or refuses it with the documented error.

Three doors, one contract (README "Python", docs/api.md "Errors"):

* the Python API (``Searcher.search``) returns hits or raises ``BadQuery``
  naming the parameter at fault, nothing else;
* ``souyi search`` exits 0 with results or 2 with a message (never a traceback);
* ``GET /api/search`` answers 200 or a JSON 400 (never a 500), and the search
  page answers 200 or 400 as HTML.

Inputs are arbitrary Unicode (control characters, lone surrogates, RTL and
zero-width marks, emoji sequences, 100 KB strings), query-syntax characters of
other engines, and every parameter out of range or of the wrong type.  The
oracle is the documented limits, not the implementation.  The suite runs a
fixed (derandomized) sample; ``tests/long/test_long_fuzz.py`` runs 10,000+
random cases with the same strategies and checks.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search import MAX_DEPTH, MAX_QUERY_CHARS, MODES, BadQuery, Hit
from souyi import cli
from web import create_app

#: Pieces other engines give a meaning to, and injection classics: here they are just text.
QUERY_SYNTAX = (
    "AND", "OR", "NOT", "*", "?", "~", "^2", ":", '"', "'", "(", ")", "[", "]", "{", "}", "\\", "/", "+", "-",
    "&&", "||", "!", "%", "%00", "%s", "{0}", "$", "${x}", "<script>", "' OR 1=1 --", "; DROP TABLE passages;",
    "doc:", "title:x", "NEAR/3", "..", "../", "\\x00", "MATCH", "*:*", "-k", "--json",
)
#: Characters that break naive text handling: bidi and zero-width marks, BOM, NUL, surrogates,
#: non-characters, combining marks, emoji ZWJ sequences and flags, odd white space.
SPECIALS = (
    "\u200f", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\x00", "\x07", "\x1b[31m", "\x7f", "\x85",
    "\ud800", "\udfff", "\udcff", "\ufffe", "\uffff", "\U0010ffff", "\u0301", "\u3000", "\t", "\n", "\r\n",
    "\u2028", "👍🏽", "👨\u200d👩\u200d👧", "🇨🇳", "𠀀", "Ａ", "ﬁ",
)
HIT_FIELDS = [field.name for field in dataclasses.fields(Hit)]
WORDS = ("软件", "阿里巴巴", "信息产业", "杭州", "的", "software", "Alibaba", "the", "港口", "發展")

any_char = st.characters(exclude_categories=())  # every code point, lone surrogates included
piece = st.one_of(
    st.text(any_char, max_size=12), st.sampled_from(QUERY_SYNTAX), st.sampled_from(SPECIALS), st.sampled_from(WORDS)
)
long_text = st.builds(
    lambda unit, n: (unit * n)[:n],
    st.sampled_from(WORDS + SPECIALS + QUERY_SYNTAX),
    st.one_of(st.integers(MAX_QUERY_CHARS - 2, MAX_QUERY_CHARS + 2), st.integers(1, 100_000)),
)
queries = st.one_of(st.lists(piece, max_size=8).map("".join), long_text)
# Parameters as the Python API may receive them: right type or not, in range or far out of it.
whole = st.one_of(st.integers(-3, MAX_DEPTH + 3), st.integers(-(2**70), 2**70))
numbers = st.one_of(whole, whole, st.booleans(), st.none(), st.floats(), st.text(max_size=4))
modes = st.one_of(st.sampled_from(MODES), st.sampled_from(("semantic", "keyword", "HYBRID", "", " dense")),
                  st.text(max_size=8), st.none())
# Filter text includes NUL and lone surrogates, which SQLite cannot take: refused as BadQuery first.
filter_text = st.text(any_char, max_size=10)
filter_value = st.one_of(filter_text, st.integers(), st.lists(filter_text, max_size=3))
filters = st.one_of(
    st.none(),
    st.dictionaries(st.one_of(st.sampled_from(("doc", "title", "year")), filter_text), filter_value, max_size=3),
)

#: The suite's sample: fixed, so CI is reproducible; the long run is random.
SUITE = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


# ---------------------------------------------------------------- the oracle


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def must_be_empty(query: str) -> bool:
    """Nothing but white space, C0 controls and lone surrogates: documented as an empty query."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cs" or ord(ch) < 0x20 or ch == "\x7f" for ch in query)


def faults(query: object, k: object, offset: object, mode: object) -> tuple[set[str], bool]:
    """The parameters the documented limits refuse, and whether the query may also be refused as empty.

    A query with no letter or digit (only punctuation, marks, symbols) may be
    either searched or refused as empty; one with a letter or digit must be searched.
    """
    bad: set[str] = set()
    maybe_empty = False
    if not isinstance(query, str) or len(query) > MAX_QUERY_CHARS or must_be_empty(query):
        bad.add("query")
    elif not any(ch.isalnum() for ch in query):
        maybe_empty = True
    if not _is_whole(k) or k < 1:
        bad.add("k")
    if not _is_whole(offset) or offset < 0:
        bad.add("offset")
    if not bad & {"k", "offset"} and k + offset > MAX_DEPTH:
        bad |= {"k", "offset"}
    if mode not in MODES:
        bad.add("mode")
    return bad, maybe_empty


def check_refusal(message: str, bad: set[str], maybe_empty: bool) -> None:
    """A refusal is allowed only for a documented fault, and its message names the parameter."""
    named = {name for name in ("query", "k", "offset", "mode") if name in message}
    assert bad or (maybe_empty and "empty" in message), f"refused a valid request: {message}"
    assert named & (bad | ({"query"} if maybe_empty else set())), f"message names no faulty parameter: {message}"


def check_hits(hits: list[dict], k: int, offset: int) -> None:
    """Hits (as the API and the CLI print them) are well-formed: at most k, ranked from offset + 1,
    every field there, highlights inside the text."""
    assert len(hits) <= k
    for position, hit in enumerate(hits):
        assert list(hit) == HIT_FIELDS
        assert hit["rank"] == offset + position + 1
        assert all(0 <= s < e <= len(hit["text"]) for s, e in hit["highlights"]), hit["highlights"]
        assert all(0 <= s < e <= len(hit["text"]) for s, e in hit["translation_highlights"])
        assert hit["start"] <= hit["end"]


def check_python_api(searcher, query, k, offset, mode, filters) -> str:
    """One call of ``Searcher.search``; returns "ok" or "refused" (for the long run's tally)."""
    bad, maybe_empty = faults(query, k, offset, mode)
    try:
        hits = searcher.search(query, k=k, offset=offset, mode=mode, filters=filters)
    except BadQuery as exc:
        if "filter" in str(exc) and filters:
            return "refused"  # filter shapes are checked by the searcher: any BadQuery naming them is documented
        check_refusal(str(exc), bad, maybe_empty)
        return "refused"
    assert not bad, f"accepted {sorted(bad)} out of range: {query[:40]!r} k={k!r} offset={offset!r} mode={mode!r}"
    assert all(isinstance(hit, Hit) for hit in hits)
    check_hits([hit.to_dict() for hit in hits], k, offset)
    if filters and isinstance(filters.get("doc"), str):
        assert all(hit.doc_id == filters["doc"] for hit in hits)
    return "ok"


# ---------------------------------------------------------------- HTTP

#: Parameter values as they arrive in a URL: anything, plus the edges of every range.
http_numbers = st.one_of(
    st.none(), st.integers(-5, MAX_DEPTH + 5).map(str), st.sampled_from(("", "1.5", "1e3", "+3", " 3", "0x10", "٣",
                                                                       "99999999", "-0", "00010")),
    st.text(max_size=6),
)
http_modes = st.one_of(st.none(), st.sampled_from((*MODES, "semantic", "keyword", "", "Dense")), st.text(max_size=6))
http_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # URLs carry UTF-8: no lone surrogates
http_queries = st.one_of(st.none(), queries.map(lambda q: q.encode("utf-8", "replace").decode("utf-8")))
http_filters = st.lists(st.one_of(st.builds(lambda a, b: f"{a}:{b}", http_text, http_text), http_text), max_size=22)


def _http_int(raw: str | None, default: int, low: int, high: int) -> int | None:
    """The documented integer rule (plain digits, in range; left out for the default); None when refused."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 7 or not low <= int(raw) <= high:
        return None
    return int(raw)


def expected_http_status(q: str | None, k: str | None, offset: str | None, mode: str | None,
                         filter_items: list[str]) -> int | None:
    """200 or 400 by docs/api.md; None when the query may legitimately go either way."""
    k_value = _http_int(k, 10, 1, MAX_DEPTH)
    offset_value = _http_int(offset, 0, 0, MAX_DEPTH - 1)
    if (
        q is None or not q.strip() or len(q) > MAX_QUERY_CHARS
        or k_value is None or offset_value is None  # past position MAX_DEPTH a page is cut, not refused
        or (mode not in (None, *MODES, "semantic", "keyword"))
        or len(filter_items) > 20 or any(not item.partition(":")[0].strip() or ":" not in item for item in filter_items)
        or any(ch < " " or ch == "\x7f" for item in filter_items for ch in item)
        or must_be_empty(q)
    ):
        return 400
    return 200 if any(ch.isalnum() for ch in q) else None


def encode_params(pairs: list[tuple[str, str | None]]) -> str:
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs if value is not None)


def check_http_api(client, q, k, offset, mode, filter_items) -> int:
    """One ``GET /api/search``; returns the status."""
    pairs = [("q", q), ("k", k), ("offset", offset), ("mode", mode)] + [("filter", f) for f in filter_items]
    query_string = encode_params(pairs)
    response = client.get("/api/search", query_string=query_string)
    status = response.status_code
    assert response.mimetype == "application/json", (status, response.get_data(as_text=True)[:300])
    body = response.get_json()
    too_long = len(query_string.encode()) > 16 * 1024
    expected = 400 if too_long else expected_http_status(q, k, offset, mode, filter_items)
    assert status in (200, 400), (status, body)
    if expected is not None:
        assert status == expected, (expected, body, query_string[:300])
    if status == 200:
        assert body["count"] == len(body["hits"])
        check_hits(body["hits"], body["k"], body["offset"])
    else:
        assert body["status"] == 400 and body["message"] and "Traceback" not in body["message"]
    return status


def check_http_bytes(client, raw: bytes, path: str) -> int:
    """Arbitrary bytes as the query string of the API or the page: 200 or 400, never a 500."""
    response = client.get(path, environ_overrides={"QUERY_STRING": raw.decode("latin-1")})  # as WSGI passes it
    assert response.status_code in (200, 400), (response.status_code, raw[:200], response.get_data(as_text=True)[:300])
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    if path.startswith("/api/"):
        assert response.get_json()["status"] in (200, 400) or "hits" in response.get_json()
    return response.status_code


# ---------------------------------------------------------------- CLI

cli_numbers = st.one_of(st.integers(-3, MAX_DEPTH + 3).map(str), st.sampled_from(("x", "1.5", "", "99999999999999")))
cli_modes = st.one_of(st.sampled_from(MODES), st.sampled_from(("semantic", "", "HYBRID")))
# argv arrives through the file system encoding: undecodable bytes become lone surrogates (U+DC80..U+DCFF).
cli_queries = st.one_of(queries.map(lambda q: q.replace("\x00", "")), st.sampled_from(("软件\udcff", "-k", "--", "-")))


def check_cli(capsys, index: str, query: str, k: str, offset: str, mode: str, filter_items: list[str]) -> int:
    """``souyi search`` in-process; returns the exit code (0 results, 2 bad usage or query)."""
    argv = ["search", query, "--index", index, "-k", k, "--offset", offset, "--mode", mode, "--json"]
    for item in filter_items:
        argv += ["--filter", item]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse refuses malformed options itself, with exit code 2
        code = exc.code
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err[-500:])
    assert "Traceback" not in err
    if code == 0:
        body = json.loads(out)
        check_hits(body["hits"], int(k), int(offset))
    else:
        assert "error" in err or "usage" in err, err
    return code


@pytest.fixture()
def cli_searcher(monkeypatch, sample_index, searcher):
    """``souyi search`` on the sample index, reusing the session's open Searcher.

    Opening an index loads the model (seconds); test_cli.py covers that step,
    so here the CLI gets the already open Searcher for the same index.
    """
    def reuse(index, model=None, *, translate=True):
        assert str(index) == str(sample_index) and model is None and translate is searcher.translate
        return searcher

    monkeypatch.setattr(cli.Searcher, "open", staticmethod(reuse))
    return str(sample_index)


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def client(sample_index, searcher):
    return create_app(sample_index, {"SOUYI_SEARCHER": searcher}).test_client()


@SUITE
@given(query=queries, k=numbers, offset=numbers, mode=modes, filters=filters)
def test_python_api_answers_or_refuses_with_bad_query(searcher, query, k, offset, mode, filters):
    check_python_api(searcher, query, k, offset, mode, filters)


@settings(SUITE, max_examples=60)
@given(q=http_queries, k=http_numbers, offset=http_numbers, mode=http_modes, filter_items=http_filters)
def test_http_api_answers_200_or_json_400(client, q, k, offset, mode, filter_items):
    check_http_api(client, q, k, offset, mode, filter_items)


@settings(SUITE, max_examples=60)
@given(raw=st.binary(max_size=300), path=st.sampled_from(("/api/search", "/")))
def test_http_raw_query_strings_never_500(client, raw, path):
    check_http_bytes(client, raw, path)


@settings(SUITE, max_examples=60)
@given(query=cli_queries, k=cli_numbers, offset=cli_numbers, mode=cli_modes,
       filter_items=st.lists(st.builds(lambda a, b: f"{a}={b}", filter_text, filter_text), max_size=2))
def test_cli_search_exits_0_or_2_with_a_message(capsys, cli_searcher, query, k, offset, mode, filter_items):
    check_cli(capsys, cli_searcher, query, k, offset, mode, filter_items)


@pytest.mark.parametrize("size", [100_000, MAX_QUERY_CHARS + 1])
def test_100_kb_queries_are_refused_at_every_door(searcher, client, capsys, cli_searcher, size):
    query = ("软件" * size)[:size]
    with pytest.raises(BadQuery, match=f"limit is {MAX_QUERY_CHARS}"):
        searcher.search(query)
    response = client.get("/api/search", query_string={"q": query})
    assert response.status_code == 400 and response.get_json()["status"] == 400
    assert check_cli(capsys, cli_searcher, query, "10", "0", "hybrid", []) == 2


def test_a_query_of_exactly_the_limit_is_searched(searcher):
    query = ("阿里巴巴在哪里上市 " * 200)[:MAX_QUERY_CHARS]
    assert searcher.search(query, k=3)


@pytest.mark.parametrize("filters", [{"\x00": "1"}, {"year": "\ud800"}])
def test_filter_text_sqlite_cannot_store_is_a_bad_query(searcher, filters):
    with pytest.raises(BadQuery, match="filter"):
        searcher.search("软件", filters=filters)
