"""A public store served by a web server that ignores Range (``python -m http.server``).

The server is the standard library's, run as a real subprocess on 127.0.0.1: it
answers every ranged GET with 200 and the whole file.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import artifactstore
from artifactstore.cli import main
from artifactstore.testing.data import random_bytes
from artifactstore.testing.webserver import stdlib_http_server


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
    with stdlib_http_server(store, tmp_path / "server.log") as url:
        yield url, data


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
