"""A public store served by a web server that ignores Range (``python -m http.server``).

The server is the standard library's, run as a real subprocess on 127.0.0.1: it
answers every ranged GET with 200 and the whole file.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifactstore
from artifactstore.cli import main
from artifactstore.testing.data import random_bytes


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A public store of one version (a big file, a small one), served without Range."""
    store = tmp_path / "store"
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(random_bytes(5 << 20, seed=7))  # several chunks
    (data / "small.txt").write_text("small\n")
    assert main(["init", str(store), "--public"]) == 0
    with artifactstore.open(str(store), cache_dir=tmp_path / "cache") as opened:
        opened.log_artifact(data, "d", type="dataset")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(store)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # until it answers (a condition, not a guess at how long it takes)
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/config", timeout=5) as answer:
                    assert answer.status == 200
                break
            assert server.poll() is None, "http.server did not start"
            assert time.monotonic() < deadline, "http.server did not answer"
            time.sleep(0.05)
        yield url, data
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_the_server_really_ignores_range(served: tuple[str, Path]) -> None:
    url, _ = served
    request = urllib.request.Request(f"{url}/config", headers={"Range": "bytes=0-3"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
        assert len(answer.read()) > 4


def test_get_reads_the_right_bytes(served: tuple[str, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str],
                                   caplog: pytest.LogCaptureFixture) -> None:
    url, data = served
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code = main(["get", "d:v0", "--store", url, "--dir", str(out)])
    assert code == 0, capsys.readouterr().err
    assert (out / "big.bin").read_bytes() == (data / "big.bin").read_bytes()
    assert (out / "small.txt").read_text() == "small\n"
    said = [r.getMessage() for r in caplog.records if "ignores HTTP Range" in r.getMessage()]
    assert len(said) == 1  # once, not once per read
    assert main(["verify", "--store", url]) == 0
