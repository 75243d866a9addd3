"""A script that forgets ``finish()``, or dies of an uncaught error, still leaves its
runs ended: finished, or failed with that error (runs/active.py's exit hooks), in a
real child process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import artifactstore

SCRIPT = textwrap.dedent("""
    import sys
    import artifactstore
    store = artifactstore.open(sys.argv[1], create=True)
    run = store.run(job_type="train", capture_code=False, heartbeat=3600)
    run.log({"loss": 0.5})
    print(run.id, flush=True)
    if sys.argv[2] == "raise":
        raise RuntimeError("diverged at step 7")
""")


@pytest.mark.parametrize(("how", "status", "error"), [
    ("forget", "finished", None),
    ("raise", "failed", "RuntimeError: diverged at step 7"),
])
def test_runs_left_active_are_ended_at_exit(tmp_path: Path, how: str, status: str,
                                            error: str | None) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    store_url = str(tmp_path / "store")
    done = subprocess.run([sys.executable, str(script), store_url, how], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "ARTIFACTSTORE_URL": store_url})
    assert done.returncode == (0 if how == "forget" else 1), done.stderr
    run_id = done.stdout.split()[0]
    with artifactstore.open(store_url) as store:
        run = store.get_run(run_id)
        assert run.status == status
        assert run.error == error
        assert run.summary["loss"] == 0.5
