"""A newcomer's first run: ``souyi serve`` on a fresh machine is explained, quiet and answers.

The first test module run pays the real one-time preparation of the model (conversion, ONNX
export, int8 quantisation) in a fresh cache folder, because what is checked is exactly what that
step prints: nothing from another library, one announcement of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
from torch.jit import TracerWarning

from indexer import preparation
from indexer.onnx_export import EXPORT_MARKER, export_dir
from souyi.cli import main

SERVING = re.compile(r"serving .* on http://127\.0\.0\.1:(\d+)/")
ANNOUNCEMENT = "preparing the model for this machine (one time, ~"


def newcomer_env(home: Path, cache: Path) -> dict:
    """This machine's environment as a new user has it: an empty home folder, no souyi or warning settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SOUYI_", "XDG_")) and k != "PYTHONWARNINGS"}
    return dict(env, HOME=str(home), SOUYI_CACHE_DIR=str(cache))


def souyi(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "souyi", *args], capture_output=True, text=True, env=env,
                          cwd=env["HOME"], timeout=600)


@pytest.fixture(scope="module")
def first_serve(tmp_path_factory) -> dict:
    """``souyi serve`` in a fresh home and cache, until its first answer to /api/search; then stopped."""
    root = tmp_path_factory.mktemp("newcomer")
    home, cache = root / "home", root / "cache"
    home.mkdir()
    env = newcomer_env(home, cache)
    with (root / "stdout").open("w") as out, (root / "stderr").open("w") as err:
        server = subprocess.Popen([sys.executable, "-m", "souyi", "serve", "--port", "0"], stdout=out, stderr=err,
                                  env=env, cwd=home)
        try:
            answer = _first_answer(server, root / "stderr")
        finally:
            server.terminate()
            server.wait(timeout=60)
    return {"env": env, "cache": cache, "answer": answer,
            "stderr": (root / "stderr").read_text(), "stdout": (root / "stdout").read_text()}


def _first_answer(server: subprocess.Popen, stderr: Path, timeout: float = 600) -> dict:
    """The JSON of the first successful search, once the served URL is logged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"souyi serve exited: {stderr.read_text()}"
        port = SERVING.search(stderr.read_text())
        if port:
            url = f"http://127.0.0.1:{port.group(1)}/api/search?q=%E8%BD%AF%E4%BB%B6"  # 软件
            with urllib.request.urlopen(url, timeout=60) as response:
                return json.loads(response.read())
        time.sleep(0.2)
    raise TimeoutError(f"souyi serve did not serve within {timeout} s: {stderr.read_text()}")


def test_first_serve_answers_a_search(first_serve):
    hits = first_serve["answer"]["hits"]
    assert hits and all("软件" in hit["text"] for hit in hits[:3])


def test_first_serve_announces_the_preparation_once(first_serve):
    err = first_serve["stderr"]
    assert err.count(ANNOUNCEMENT) == 1
    announcement = next(line for line in err.splitlines() if ANNOUNCEMENT in line)
    assert announcement.endswith("conversion, ONNX export, int8 quantization")
    assert err.count("model prepared in") == 1
    assert err.index("building the sample index") < err.index(ANNOUNCEMENT) < err.index("model prepared in")


def test_first_serve_prints_no_warning(first_serve):
    output = first_serve["stderr"] + first_serve["stdout"]
    for word in ("Warning", "WARNING"):  # UserWarning, TracerWarning, ...; "WARNING root: ..."
        assert word not in output, output


def test_first_serve_keeps_one_export_of_each_precision(first_serve):
    """The int8 export quantises the float32 one, which is kept for passages."""
    from indexer.e5_convert import converted_model_dir

    model = converted_model_dir(first_serve["cache"])
    for precision in ("fp32", "int8"):
        assert json.loads((export_dir(model, precision, first_serve["cache"]) / EXPORT_MARKER).read_text())
    assert not [p for p in (first_serve["cache"] / "onnx").iterdir() if ".tmp-" in p.name]


def test_later_runs_say_nothing_and_point_at_the_shortest_command(first_serve):
    demo = souyi("demo", env=first_serve["env"])
    assert demo.returncode == 0 and demo.stderr == ""
    assert demo.stdout.rstrip().endswith('Try: souyi search "杭州软件服务外包"')  # the default index needs no --index
    search = souyi("search", "软件", "-k", "1", env=first_serve["env"])
    assert search.returncode == 0 and search.stderr == "" and "软件" in search.stdout


def test_search_without_any_index_suggests_the_demo(tmp_path):
    (tmp_path / "home").mkdir()
    result = souyi("search", "软件", env=newcomer_env(tmp_path / "home", tmp_path / "cache"))
    assert result.returncode == 3
    assert "souyi demo" in result.stderr and "souyi index DIR" in result.stderr
    assert not (tmp_path / "cache").exists()  # nothing was prepared for a search that cannot run


def test_search_of_a_missing_named_index_says_how_to_build_it(tmp_path):
    (tmp_path / "home").mkdir()
    missing = tmp_path / "reports-index"
    result = souyi("search", "软件", "--index", str(missing), env=newcomer_env(tmp_path / "home", tmp_path / "c"))
    assert result.returncode == 3
    assert f"souyi index DIR --index {missing}" in result.stderr and "souyi demo" not in result.stderr


# The filters themselves, on warnings raised as the libraries raise them (module names as they report them).

def _warn(message: str, category: type[Warning], module: str) -> None:
    warnings.warn_explicit(message, category, f"/{module.replace('.', '/')}.py", 1, module=module)


def _caught(during) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with during():
            _warn("Converting a tensor to a Python boolean might cause the trace to be incorrect.", TracerWarning,
                  "transformers.masking_utils")
            _warn("Exporting aten::index operator of advanced indexing in opset 17 is achieved by ...", UserWarning,
                  "torch.onnx._internal.torchscript_exporter.symbolic_opset11")
            _warn("Converting a tensor to a Python index", TracerWarning, "transformers.models.bert")
            _warn("Exporting aten::unique operator is not supported", UserWarning,
                  "torch.onnx._internal.torchscript_exporter.symbolic_opset11")
    return [str(w.message) for w in caught]


def test_only_the_known_export_warnings_are_silenced():
    assert _caught(preparation.known_export_warnings_silenced) == [
        "Converting a tensor to a Python index",
        "Exporting aten::unique operator is not supported",
    ]
    assert len(_caught(contextlib.nullcontext)) == 4  # outside the export: all of them


def test_only_the_known_quantization_advice_is_silenced(caplog):
    with caplog.at_level(logging.WARNING), preparation.known_quantization_warnings_silenced():
        logging.warning("Please consider to run pre-processing before quantization. Refer to example: ...")
        logging.warning("Quantization of this graph failed")
    logging.warning("Please consider to run pre-processing before quantization. (outside the step)")
    assert [r.getMessage() for r in caplog.records] == [
        "Quantization of this graph failed",
        "Please consider to run pre-processing before quantization. (outside the step)",
    ]


def test_souyi_v_lets_every_warning_through(caplog, tmp_path):
    missing = str(tmp_path / "none")
    assert main(["-v", "search", "x", "--index", missing]) == 3  # any command: -v is read before it runs
    try:
        assert len(_caught(preparation.known_export_warnings_silenced)) == 4
        with caplog.at_level(logging.WARNING), preparation.known_quantization_warnings_silenced():
            logging.warning("Please consider to run pre-processing before quantization.")
        assert len(caplog.records) == 1
    finally:
        main(["search", "x", "--index", missing])  # without -v again
    assert len(_caught(preparation.known_export_warnings_silenced)) == 2  # without -v: the known two are silenced
