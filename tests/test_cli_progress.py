"""Progress bars: drawn on a terminal, silent otherwise or when quiet."""

from __future__ import annotations

import io
from pathlib import Path

from artifactstore.backends import open_backend
from artifactstore.cli.progress import Progress
from artifactstore.core.synthetic import random_bytes
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
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("upload: 100%")
    assert "1.00k/1.00k" in final  # bytes done / total
    assert "<00:00" in final  # elapsed<time left
    assert "B/s" in final
    assert text.endswith("\n")


def test_the_bar_shows_time_left_midway() -> None:
    out = _Terminal()
    with Progress("download", 10_000_000, enabled=True, stream=out, min_interval=0) as bar:
        bar.advance(2_500_000)
        midway = out.getvalue().rstrip("\n").split("\r")[-1]
        assert midway.startswith("download:  25%")
        assert "2.50M/10.0M" in midway
        bar.advance(7_500_000)


def test_unknown_total_shows_bytes() -> None:
    out = _Terminal()
    with Progress("verify", None, enabled=True, stream=out) as bar:
        bar.advance(2_000_000)
    assert "2.00MB" in out.getvalue()


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


def test_a_terminal_without_a_size_still_gets_the_bar() -> None:
    """A fresh pseudo-terminal reports 0 x 0 (as under 'script' or some CI runners):
    tqdm would print an empty line there; the bar is drawn 100 columns wide."""
    import os
    import pty
    import select

    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as terminal:
            assert os.get_terminal_size(slave).columns == 0
            with Progress("get d:v0", 4_000_000, enabled=True, stream=terminal,
                          min_interval=0) as bar:
                bar.advance(4_000_000)
            terminal.flush()
        # A pty hands over what was written in pieces (one read took only the first
        # line under load): read everything that is there, until nothing comes.
        received = b""
        while select.select([master], [], [], 1.0)[0]:
            received += os.read(master, 65536)
        shown = received.decode("utf-8", "replace")
    finally:
        os.close(master)
        os.close(slave)
    assert "get d:v0: 100%" in shown
    assert "4.00M/4.00M" in shown
