"""Temp files that interrupted writes leave in a local store: gc removes the stale ones,
verify counts them (backends/temps.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from artifactstore.core.errors import ReadOnlyError

import artifactstore
from artifactstore.backends.local import TEMP_PREFIX, LocalBackend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.backends.temps import remove_stale_temps, stale_temps
from artifactstore.cli import main

# A writer stopped inside put_parts: its temp file is open, the object has no name yet.
_WRITER = """
import sys
from artifactstore.backends.local import LocalBackend

class Parts:
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return b"x"

    def __iter__(self):
        yield b"the first part of a pack"
        print("writing", flush=True)
        sys.stdin.read()  # never returns: the parent kills this process here
        yield b"the rest"

LocalBackend(sys.argv[1]).put_parts("objects/plain/packs/aa/killed", Parts())
"""


def _killed_writer_temp(root: Path) -> Path:
    """Run a real writer process into ``root`` and SIGKILL it mid-put; its temp file."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "writing\n"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    temps = list(root.rglob(f"{TEMP_PREFIX}*"))
    assert len(temps) == 1
    return temps[0]


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = str(tmp_path / "store")
    with artifactstore.open(url, create=True, cache_dir=tmp_path / "cache") as store:
        data = tmp_path / "a.txt"
        data.write_text("a")
        store.log_artifact(data, "d", type="dataset")
    return url


def test_gc_removes_a_stale_temp_and_leaves_a_fresh_one(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = _killed_writer_temp(Path(url))
    fresh = stale.with_name(f"{TEMP_PREFIX}0123456789abcdef")
    fresh.write_bytes(b"a write in progress")
    _age(stale, 121)  # the default commit window is 120 s
    assert main(["verify", "--store", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale_temps"] == 1
    assert main(["verify", "--store", url]) == 0
    assert "1 temp file(s) that interrupted writes left behind" in capsys.readouterr().out
    assert main(["gc", "--store", url, "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale_temps"] == 1
    assert stale.exists()
    assert main(["gc", "--store", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale_temps"] == 1
    assert not stale.exists()
    assert fresh.exists()  # younger than the commit window: maybe a live writer's
    assert main(["verify", "--store", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale_temps"] == 0
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as store:
        assert store.artifact("d:v0").open("a.txt").read() == b"a"


def test_a_temp_touched_since_it_was_found_is_kept(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    temp = _killed_writer_temp(tmp_path)
    _age(temp, 500)
    found = stale_temps(backend, 120)
    assert [t.path for t in found] == [str(temp.relative_to(tmp_path))]
    _age(temp, 0)  # its writer was alive after all
    backend.remove_temp(found[0], 120)
    assert temp.exists()
    _age(temp, 500)
    with pytest.raises(ReadOnlyError):
        remove_stale_temps(ReadOnlyBackend(backend), 120)
    assert [t.path for t in remove_stale_temps(backend, 120)] == [found[0].path]
    assert not temp.exists()
