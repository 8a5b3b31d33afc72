"""The OpenAPI description and the server cannot drift apart: schemathesis tests one against the other.

schemathesis (https://schemathesis.readthedocs.io) reads ``/api/openapi.json``
from a real ``souyi serve`` process and sends what the description allows
(and what it forbids) to every operation, in every phase it runs: the
description's examples, boundary values of every parameter (coverage) and
property-based fuzzing; each answer is checked against the description
(status code documented, content type, response schema, no server error,
schema-valid requests accepted and invalid ones refused).  The seed is fixed,
so a failure reproduces.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from test_web import fetch, running_server

pytest.importorskip("schemathesis", reason="the API contract test needs schemathesis (requirements.txt)")

#: Cases per operation and phase: enough to reach every parameter's bounds, small enough for a test suite.
MAX_EXAMPLES = 100


WRITE_TOKEN = "schemathesis-write-token"


@pytest.fixture(params=["read-only", "writes"])
def server(request, sample_index, cli_env, tmp_path):
    """A read-only server, and one with the write routes on (a copy of the index: the fuzzer uploads)."""
    args, headers = ["--index", str(sample_index)], []
    if request.param == "writes":
        index = tmp_path / "index"
        shutil.copytree(sample_index, index)
        (tmp_path / "token").write_text(WRITE_TOKEN)
        args = ["--index", str(index), "--write-token-file", str(tmp_path / "token")]
        headers = ["--header", f"Authorization: Bearer {WRITE_TOKEN}"]
    with running_server(cli_env, tmp_path / "serve.log", *args) as (base, _):
        yield base, headers


def test_every_operation_answers_as_its_description_says(server):
    server, headers = server
    status, _, body = fetch(f"{server}/api/openapi.json")
    assert status == 200
    spec = json.loads(body)
    # schemathesis leaves out the operation that serves the description it is reading
    operations = sum(len(methods) for path, methods in spec["paths"].items() if path != "/api/openapi.json")
    run = subprocess.run(
        [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()", "run",
         f"{server}/api/openapi.json", "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
         "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--workers", "1", "--no-color", *headers],
        capture_output=True, text=True, timeout=900,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12000:]
    tested = re.search(r"Tested:\s+(\d+)", report)
    assert tested and int(tested.group(1)) == operations, report[-3000:]
    for phase in ("Examples", "Coverage", "Fuzzing"):
        assert re.search(rf"✅\s+{phase}", report), f"phase {phase} did not pass:\n{report[-3000:]}"
