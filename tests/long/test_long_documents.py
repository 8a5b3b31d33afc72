"""Document fuzzing, long run: the zoo of tests/test_fuzz_documents.py plus the big ones, with peak memory.

One batch, in a child process so that its peak RSS is its own: the zoo,
a .docx inflating to 1 GiB (honest), one lying about inflating to 1 GiB, and
a 50 MB file of Chinese text on one single line.  The good files are indexed,
each bad one is refused by name (the 50 MB one by the text limit, in the time
it takes to read it, not the hours of embedding it), and the peak RSS of the
batch is compared with that of a batch of the good files alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_fuzz_documents import check_batch, deflate_bomb, lying_bomb, write_zoo

pytestmark = pytest.mark.long

BATCH = r"""
import json, resource, sys
from indexer import build_index
report = build_index([sys.argv[1]], sys.argv[2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"refused": report.refused, "passages": report.passages, "peak": peak}))
"""
#: How much more memory the hostile batch may take than the good files alone.
MAX_EXTRA_RSS = 1 << 30


def run_batch(folder: Path, index: Path, env: dict) -> tuple[dict, int, float]:
    """``build_index`` in a child process: its report, peak RSS (bytes) and wall time."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", BATCH, str(folder), str(index)], capture_output=True, text=True,
                          env=env, timeout=3600)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report, report["peak"], seconds


def test_the_zoo_with_gigabyte_bombs_and_a_50_mb_line(tmp_path, cli_env, figures):
    env = dict(cli_env, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    good = tmp_path / "good"
    expected = write_zoo(tmp_path / "zoo")
    good.mkdir()
    for name, fate in expected.items():
        if fate == "indexed":
            (good / name).write_bytes((tmp_path / "zoo" / name).read_bytes())
    _, baseline_peak, baseline_seconds = run_batch(good, tmp_path / "good-index", env)

    (tmp_path / "zoo" / "gigabyte-bomb.docx").write_bytes(deflate_bomb(1 << 30))
    (tmp_path / "zoo" / "lying-gigabyte-bomb.docx").write_bytes(lying_bomb(1 << 30))
    line = "浙江省港口货物吞吐量统计，宁波舟山港全年增长。".encode()
    (tmp_path / "zoo" / "one-line-50mb.txt").write_bytes(line * (50_000_000 // len(line) + 1))
    expected.update({"gigabyte-bomb.docx": "refused", "lying-gigabyte-bomb.docx": "refused",
                     "one-line-50mb.txt": "refused"})
    report, peak, seconds = run_batch(tmp_path / "zoo", tmp_path / "index", env)
    figures["document_fuzz"] = {
        "files": len(expected), "refused": len(report["refused"]), "passages": report["passages"],
        "batch_seconds": round(seconds, 1), "peak_rss_mb": round(peak / 2**20, 1),
        "good_only_seconds": round(baseline_seconds, 1), "good_only_peak_rss_mb": round(baseline_peak / 2**20, 1),
        "big_files": {"gigabyte-bomb.docx": "inflates to 1 GiB", "lying-gigabyte-bomb.docx": "declares 12 B, 1 GiB",
                      "one-line-50mb.txt": f"{(tmp_path / 'zoo' / 'one-line-50mb.txt').stat().st_size:,} bytes"},
        "refusals": [  # without the temporary folder; an undecodable file name as escapes
            m.replace(f"{tmp_path}/", "").encode("utf-8", "backslashreplace").decode() for m in report["refused"]
        ],
    }
    check_batch(expected, tmp_path / "index", tuple(report["refused"]))
    assert any("one-line-50mb.txt" in m and "--max-chars" in m for m in report["refused"])
    assert peak - baseline_peak < MAX_EXTRA_RSS, (peak, baseline_peak)
