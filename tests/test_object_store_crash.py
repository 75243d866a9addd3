"""A writer killed with SIGKILL mid-write leaves a consistent store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from artifactstore.core.synthetic import random_bytes
from artifactstore.repository.opening import verify_objects

from artifactstore.backends import open_backend
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.layout import pack_prefix
from artifactstore.objects.store import ObjectStore

_WRITER = """
import sys
from pathlib import Path
from artifactstore.backends import open_backend
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.store import ObjectStore
from artifactstore.core.synthetic import random_bytes
root = Path(sys.argv[1])
store = ObjectStore.open(open_backend(str(root / "store")),
                         create=StoreConfig.new(pack_target=64 << 10),
                         cache_dir=root / "writer-cache", concurrency=2)
i = 0
while True:  # never flushes on its own: it is killed while packs are landing
    store.write_bytes(random_bytes(20_000, seed=i))
    i += 1
"""


def _wait_for_packs(store_dir: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    packs = store_dir / pack_prefix("plain")
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        landed = [p for p in packs.rglob("*") if p.is_file() and not p.name.startswith(".")]
        if len(landed) >= count:
            return
        time.sleep(0.01)  # polling a condition with a deadline, not waiting for luck
    raise AssertionError("the writer produced no packs within 60 s")


def test_sigkill_mid_write_leaves_no_dangling_index(tmp_path: Path) -> None:
    # A first, committed write that the crash must not damage (3-4 packs).
    committed = random_bytes(200_000, seed=999)
    with ObjectStore.open(open_backend(str(tmp_path / "store")),
                          create=StoreConfig.new(pack_target=64 << 10),
                          cache_dir=tmp_path / "c0") as store:
        ref = store.write_bytes(committed)

    with subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)],
                          stderr=subprocess.PIPE) as process:
        try:
            _wait_for_packs(tmp_path / "store", 12, process)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    store = ObjectStore.open(open_backend(str(tmp_path / "store")), cache_dir=tmp_path / "c1")
    report = verify_objects(store)
    assert report.ok, report.damaged
    # The killed writer never flushed: its packs are unreferenced garbage for gc.
    assert len(report.unindexed_packs) >= 5
    assert store.read_file(ref) == committed
    # The store keeps working for the next writer.
    again = store.write_bytes(random_bytes(30_000, seed=5))
    store.close()
    with ObjectStore.open(open_backend(str(tmp_path / "store")),
                          cache_dir=tmp_path / "c2") as fresh:
        assert fresh.read_file(again) == random_bytes(30_000, seed=5)
    # Temp files of an interrupted put are not objects: listing never shows them.
    listed = set(open_backend(str(tmp_path / "store")).list(""))
    assert not any(".tmp-" in key for key in listed)
