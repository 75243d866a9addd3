"""Freed heap memory goes back to the system after ``trim_heap`` (heap.py, issue 7)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# Free one 16 MiB buffer (glibc then raises its thresholds), then 24 MiB in 1 MiB
# buffers: how many MiB stay mapped once all are freed, before and after trim_heap()?
_CHILD = """
import os
from artifactstore.core.heap import trim_heap
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
big = b"x" * (16 << 20)
del big
base = rss()
parts = [b"x" * (1 << 20) for _ in range(24)]
del parts
kept = (rss() - base) >> 20
print(kept, trim_heap(), (rss() - base) >> 20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_heap_returns_what_glibc_kept() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    kept, trimmed, after = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
        check=True).stdout.split()
    assert int(kept) > 16  # glibc's raised trim threshold kept the freed buffers
    assert trimmed == "True"
    assert int(after) < 4
