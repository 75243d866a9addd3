"""Media staged by a run that is killed before it commits (runs/mediastage.py): the
staging folder of the dead process is removed by the next run that stages media on the
machine; a live run's folder is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import artifactstore
from artifactstore.runs.mediastage import STAGE_PREFIX, sweep_dead_stages

#: starts a run, stages one Html file, says so, then waits on stdin for ever
STAGER = """
import sys, artifactstore
store = artifactstore.open(sys.argv[1])
run = store.run(name="killed")
run.log({"page": artifactstore.Html("<p>" + "x" * 5000 + "</p>")})
print("staged", flush=True)
sys.stdin.read()
"""


def _stages(parent: Path) -> list[Path]:
    return sorted(parent.glob(STAGE_PREFIX + "*"))


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    store_url = str(tmp_path / "store")
    env = {**os.environ, "TMPDIR": str(temp)}
    with subprocess.Popen([sys.executable, "-c", STAGER, store_url], env=env, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as killed:
        assert killed.stdout is not None
        assert killed.stdout.readline().strip() == "staged"
        left = _stages(temp)
        assert [p.name.split("-")[2] for p in left] == [str(killed.pid)]
        assert any(left[0].iterdir())  # the staged bytes
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    assert _stages(temp) == left  # a killed process removes nothing

    with subprocess.Popen([sys.executable, "-c", STAGER, store_url], env=env, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as alive:
        assert alive.stdout is not None
        assert alive.stdout.readline().strip() == "staged"
        now = _stages(temp)
        assert left[0] not in now
        assert [p.name.split("-")[2] for p in now] == [str(alive.pid)]
        assert sweep_dead_stages(temp) == []  # a live run's folder stays
        assert _stages(temp) == now
        alive.communicate("", timeout=60)  # stdin closed: the run ends normally
    assert alive.returncode == 0
    assert _stages(temp) == []  # the finished run removed its own folder
    with artifactstore.open(store_url) as store:
        statuses = sorted(run.status for run in store.runs())
    assert len(statuses) == 2


def test_names_without_a_pid_and_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / f"{STAGE_PREFIX}abc").mkdir()
    (tmp_path / f"{STAGE_PREFIX}999999999-x").write_text("a file, not a folder")
    assert sweep_dead_stages(tmp_path) == []
    assert len(_stages(tmp_path)) == 2
