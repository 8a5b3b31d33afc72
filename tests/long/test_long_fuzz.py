"""Query fuzzing, long run: the strategies and checks of tests/test_fuzz_queries.py, random, 10,000+ cases.

Cases per door (``SOUYI_FUZZ_SCALE`` multiplies them): Python API 4,000
with every parameter arbitrary and 2,000 with hostile query text but
parameters in range (so that most of them are really searched), HTTP API
3,000 + 1,000 likewise, raw HTTP query strings 1,000, ``souyi search`` 2,000.
Every case that ran is counted, with its outcome, into the ``query_fuzz`` figures.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
import test_fuzz_queries as short
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_queries import (
    check_cli,
    check_http_api,
    check_http_bytes,
    check_python_api,
    cli_modes,
    cli_numbers,
    cli_queries,
    filter_text,
    filters,
    http_filters,
    http_modes,
    http_numbers,
    http_queries,
    http_text,
    modes,
    numbers,
    queries,
)

from search import MODES

pytestmark = pytest.mark.long
client, cli_searcher = short.client, short.cli_searcher  # the short run's fixtures: the same doors

SCALE = float(os.environ.get("SOUYI_FUZZ_SCALE", "1"))
CASES = {door: int(n * SCALE) for door, n in
         (("python_api", 4000), ("python_api_searched", 2000), ("http_api", 3000), ("http_api_searched", 1000),
          ("http_raw", 1000), ("cli", 2000))}
#: Parameters in range: the hostile text is what is tested.
small = st.integers(0, 60)
OUTCOMES: dict[str, Counter] = {door: Counter() for door in CASES}


def random_settings(door: str) -> settings:
    """Random (not derandomized) examples, no example database, no deadline: only the checks decide."""
    return settings(max_examples=CASES[door], database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def tally(figures):
    yield
    total = sum(sum(counter.values()) for counter in OUTCOMES.values())
    figures["query_fuzz"] = {"cases": total, "by_door": {door: dict(c) for door, c in OUTCOMES.items()},
                             "scale": SCALE}


@random_settings("python_api")
@given(query=queries, k=numbers, offset=numbers, mode=modes, filters=filters)
def test_python_api(searcher, query, k, offset, mode, filters):
    OUTCOMES["python_api"][check_python_api(searcher, query, k, offset, mode, filters)] += 1


@random_settings("python_api_searched")
@given(query=queries, k=small.map(lambda n: n + 1), offset=small, mode=st.sampled_from(MODES), filters=filters)
def test_python_api_searched(searcher, query, k, offset, mode, filters):
    OUTCOMES["python_api_searched"][check_python_api(searcher, query, k, offset, mode, filters)] += 1


@random_settings("http_api_searched")
@given(q=http_queries, k=small.map(lambda n: str(n + 1)), offset=small.map(str), mode=st.sampled_from(MODES),
       filter_items=st.lists(st.builds(lambda v: f"doc:{v}", http_text), max_size=1))
def test_http_api_searched(client, q, k, offset, mode, filter_items):
    OUTCOMES["http_api_searched"][str(check_http_api(client, q, k, offset, mode, filter_items))] += 1


@random_settings("http_api")
@given(q=http_queries, k=http_numbers, offset=http_numbers, mode=http_modes, filter_items=http_filters)
def test_http_api(client, q, k, offset, mode, filter_items):
    OUTCOMES["http_api"][str(check_http_api(client, q, k, offset, mode, filter_items))] += 1


@random_settings("http_raw")
@given(raw=st.binary(max_size=2000), path=st.sampled_from(("/api/search", "/")))
def test_http_raw(client, raw, path):
    OUTCOMES["http_raw"][str(check_http_bytes(client, raw, path))] += 1


@random_settings("cli")
@given(query=cli_queries, k=cli_numbers, offset=cli_numbers, mode=cli_modes,
       filter_items=st.lists(st.builds(lambda a, b: f"{a}={b}", filter_text, filter_text), max_size=2))
def test_cli(capsys, cli_searcher, query, k, offset, mode, filter_items):
    OUTCOMES["cli"][f"exit {check_cli(capsys, cli_searcher, query, k, offset, mode, filter_items)}"] += 1
