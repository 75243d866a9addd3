"""Progress bars: drawn on a terminal, silent otherwise or when quiet."""

from __future__ import annotations

import io
from pathlib import Path

from artifactstore.backends import open_backend
from artifactstore.cli.progress import Progress
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.store import ObjectStore
from artifactstore.synthetic import random_bytes


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
