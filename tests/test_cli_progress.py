"""Progress bars: drawn on a terminal, silent otherwise or when quiet."""

from __future__ import annotations

import io
from pathlib import Path

from artifactstore.core.synthetic import random_bytes

from artifactstore.backends import open_backend
from artifactstore.cli.progress import Progress
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.store import ObjectStore


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_drawn_on_a_terminal() -> None:
    out = _Terminal()
    with Progress("upload", 1000, enabled=True, stream=out) as bar:
        bar.advance(500)
        bar.advance(500)
    text = out.getvalue()
    assert "upload" in text
    assert "100.0%" in text
    assert text.endswith("\n")


def test_unknown_total_shows_bytes() -> None:
    out = _Terminal()
    with Progress("verify", None, enabled=True, stream=out) as bar:
        bar.advance(2_000_000)
    assert "2.0 MB" in out.getvalue()


def test_silent_when_not_a_terminal_or_quiet() -> None:
    pipe = io.StringIO()
    with Progress("upload", 10, enabled=True, stream=pipe) as bar:
        bar.advance(10)
    quiet = _Terminal()
    with Progress("upload", 10, enabled=False, stream=quiet) as bar:
        bar.advance(10)
    assert pipe.getvalue() == ""
    assert quiet.getvalue() == ""


def test_store_writes_report_progress(tmp_path: Path) -> None:
    seen: list[int] = []
    with ObjectStore.open(open_backend("memory://progress"), create=StoreConfig.new(),
                          cache_dir=tmp_path) as store:
        store.write_bytes(random_bytes(1_000_000, seed=1), progress=seen.append)
    assert sum(seen) == 1_000_000
    assert len(seen) > 1


def test_a_wait_counts_down_on_a_terminal() -> None:
    """Issue 15, point 5: the commit-window wait is a countdown on one line."""
    out = _Terminal()
    with Progress("purge d:v0", None, enabled=True, stream=out) as bar:
        for left in (2.5, 1.5, 0.5, 0.0):
            bar.wait(left)
    text = out.getvalue()
    frames = text.rstrip("\n").split("\r")[1:]
    assert [f.split(" s ")[0].rpartition(" ")[2] for f in frames[:3]] == ["3", "2", "1"]
    assert frames[-1].strip() == "purge d:v0: waited 3 s for in-flight commits"
    assert "MB" not in text  # no byte counter for a command that moved no bytes
    assert text.endswith("\n")
    assert text.count("\n") == 1


def test_a_wait_is_silent_when_not_a_terminal_or_quiet() -> None:
    pipe, quiet = io.StringIO(), _Terminal()
    for stream, enabled in ((pipe, True), (quiet, False)):
        with Progress("gc", None, enabled=enabled, stream=stream) as bar:
            bar.wait(1.0)
            bar.wait(0.0)
    assert pipe.getvalue() == ""
    assert quiet.getvalue() == ""
