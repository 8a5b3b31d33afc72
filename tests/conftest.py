"""Shared fixtures: the real local model (converted once per run) and real indexes.

The model is converted into ``$SOUYI_CACHE_DIR`` when set (``.ci/run`` sets
it, so one conversion serves every test and subprocess of a run), else into a
temporary folder of this session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.e5_convert import ensure_e5_model
from indexer.embedding import Embedder, load_embedder
from souyi import SAMPLE_DIR

SAMPLE_FILE = next(SAMPLE_DIR.glob("*.txt"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    configured = os.environ.get("SOUYI_CACHE_DIR")
    return Path(configured) if configured else tmp_path_factory.mktemp("souyi-cache")


@pytest.fixture(scope="session")
def model_dir(cache_dir) -> Path:
    return ensure_e5_model(cache_dir)


@pytest.fixture(scope="session")
def embedder(model_dir, cache_dir) -> Embedder:
    """The default model exactly as ``souyi`` loads it (default backend), from the session's cache."""
    os.environ["SOUYI_CACHE_DIR"] = str(cache_dir)  # what cli_env gives the subprocesses, too
    return load_embedder()


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, embedder) -> Path:
    target = tmp_path_factory.mktemp("sample") / "index"
    build_index([SAMPLE_DIR], target, embedder=embedder)
    return target


@pytest.fixture(scope="session")
def searcher(sample_index, embedder):
    from search import Searcher

    return Searcher.open(sample_index, embedder)


@pytest.fixture()
def cli_env(cache_dir) -> dict:
    """Environment for ``souyi`` subprocesses: the same model cache as the tests."""
    return dict(os.environ, SOUYI_CACHE_DIR=str(cache_dir))
