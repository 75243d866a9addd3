"""The demo the README runs first: the storage engine on real-sized data.

It writes a tabular dataset and a model file into a local store, rewrites 5%
of the model as fine-tuning would, stores it again and shows what
deduplication and compression saved, then reads both back verified.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from artifactstore.digest import hash_bytes
from artifactstore.errors import IntegrityError
from artifactstore.objects.store import ObjectStore
from artifactstore.repository import open_objects, verify_objects
from artifactstore.synthetic import csv_rows, edit_scattered, random_bytes

__all__ = ["DemoStep", "run_demo"]

MiB = 1 << 20


@dataclass(frozen=True)
class DemoStep:
    what: str
    size: int
    stored: int
    seconds: float
    digest: str


def run_demo(
    url: str | None = None,
    *,
    dataset_mib: int = 32,
    model_mib: int = 64,
    report: Callable[[DemoStep], None] = lambda step: None,
) -> dict[str, object]:
    """Run the demo against ``url`` (a fresh temporary store when None)."""
    with tempfile.TemporaryDirectory(prefix="artifactstore-demo-") as tmp:
        where = url or str(Path(tmp) / "store")
        store = open_objects(where, create=True, cache_dir=Path(tmp) / "cache")
        dataset = csv_rows(dataset_mib * MiB, seed=1)
        model = bytearray(random_bytes(model_mib * MiB, seed=2))
        steps = [_write(store, "dataset.csv (v0)", dataset, report),
                 _write(store, "model.bin (v0)", bytes(model), report)]
        edit_scattered(model, 0.05, 64 << 10, seed=3)
        steps.append(_write(store, "model.bin (v1, 5% fine-tuned)", bytes(model), report))
        verified = verify_objects(store)
        store.close()
        if not verified.ok:
            raise IntegrityError("; ".join(verified.damaged))
        return {
            "store": where if url else "(temporary, removed after the demo)",
            "steps": [asdict(s) for s in steps],
            "logical_bytes": sum(s.size for s in steps),
            "stored_bytes": sum(s.stored for s in steps),
            "verified_blobs": verified.blobs_checked,
        }


def _write(store: ObjectStore, what: str, data: bytes,
           report: Callable[[DemoStep], None]) -> DemoStep:
    before = store.stats.bytes_stored
    start = time.perf_counter()
    ref = store.write_bytes(data)
    store.flush()
    seconds = time.perf_counter() - start
    if store.read_file(ref) != data or ref.digest != hash_bytes(data):
        raise IntegrityError(f"{what} did not read back identical")
    step = DemoStep(what, len(data), store.stats.bytes_stored - before, seconds, ref.digest.hex)
    report(step)
    return step
