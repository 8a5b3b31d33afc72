"""Faults, long run: 20 SIGKILLs during deletes, and a full disk swept in 64 KiB steps.

(20 SIGKILLs during adds run in the default suite: tests/test_crash.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_faults import full_disk_batches, mounted_tmpfs, sigkill_during_deletes

pytestmark = pytest.mark.long

#: Free bytes before each batch: 0 to 1 MiB in 64 KiB steps, then room.
FREE_BYTES = (*range(0, 1 << 20, 1 << 16), 1 << 20)


def test_twenty_sigkills_during_deletes(tmp_path, embedder, cli_env, figures):
    env = dict(cli_env, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    seen = sigkill_during_deletes(tmp_path, embedder, env, trials=20, pairs=400, seed=8)
    figures["sigkill_deletes"] = seen
    assert seen["trials"] == 20 and seen["killed_mid_run"] == 20


def test_full_disk_sweep(tmp_path, embedder, figures):
    with mounted_tmpfs(tmp_path / "disk", size="3m") as disk:
        failures = full_disk_batches(disk, tmp_path, embedder, FREE_BYTES)
    figures["full_disk"] = {"file_system": "tmpfs, 3 MiB", "batches": len(FREE_BYTES), "failed_cleanly": failures,
                            "free_bytes": list(FREE_BYTES)}
    assert failures >= 1
