"""The demo the README runs first: the whole artifact workflow on a local store.

It logs a tabular dataset and a model file, fine-tunes the model (rewrites 5% of
it) and logs v1, moves the ``production`` alias, gets ``model:latest`` back,
verifies it against the manifest and shows what deduplication saved.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import artifactstore
from artifactstore.synthetic import csv_rows, edit_scattered, random_bytes

__all__ = ["DemoStep", "run_demo"]

MiB = 1 << 20


@dataclass(frozen=True)
class DemoStep:
    what: str
    size: int
    stored: int
    seconds: float
    detail: str


def run_demo(
    url: str | None = None,
    *,
    dataset_mib: int = 32,
    model_mib: int = 64,
    report: Callable[[DemoStep], None] = lambda step: None,
) -> dict[str, object]:
    """Run the demo against ``url`` (a fresh temporary store when None)."""
    with tempfile.TemporaryDirectory(prefix="artifactstore-demo-") as tmp:
        work = Path(tmp)
        where = url or str(work / "store")
        steps: list[DemoStep] = []
        with artifactstore.open(where, create=True, cache_dir=work / "cache") as store:

            def step(what: str, action: Callable[[], str], size: int) -> None:
                before = store.objects.stats.bytes_stored
                start = time.perf_counter()
                detail = action()
                done = DemoStep(what, size, store.objects.stats.bytes_stored - before,
                                time.perf_counter() - start, detail)
                steps.append(done)
                report(done)

            data_dir = work / "dataset"
            data_dir.mkdir()
            (data_dir / "train.csv").write_bytes(csv_rows(dataset_mib * MiB * 3 // 4, seed=1))
            (data_dir / "test.csv").write_bytes(csv_rows(dataset_mib * MiB // 4, seed=2))
            model = bytearray(random_bytes(model_mib * MiB, seed=3))
            weights = work / "model.safetensors"
            weights.write_bytes(model)

            def log(path: Path, name: str, kind: str, aliases: tuple[str, ...] = ()) -> str:
                version = store.log_artifact(path, name=name, type=kind, aliases=aliases)
                return f"{version.ref} digest {version.digest[:16]}"

            step("log dataset", lambda: log(data_dir, "dataset", "dataset"), dataset_mib * MiB)
            step("log model", lambda: log(weights, "model", "model", ("production",)),
                 len(model))
            edit_scattered(model, 0.05, 64 << 10, seed=4)
            weights.write_bytes(model)
            step("log model after fine-tuning 5%", lambda: log(weights, "model", "model"),
                 len(model))

            def promote() -> str:
                store.set_alias("model:v1", "production")
                moves = store.alias_history("model", "production")
                return " -> ".join(f"v{e.target}" for e in moves)

            step("move alias production", promote, 0)

            def fetch() -> str:
                latest = store.artifact("model:latest")
                target = latest.download(work / "download")
                checked = latest.verify(target)
                return f"{latest.ref} -> {target.name}/, {checked} file(s) verified"

            step("get model:latest and verify", fetch, len(model))
            versions = {name: [v.version for v in store.versions(name)]
                        for name in store.artifacts()}
        return {
            "store": where if url else "(temporary, removed after the demo)",
            "steps": [asdict(s) for s in steps],
            "versions": versions,
            "logical_bytes": (dataset_mib + 2 * model_mib) * MiB,
            "stored_bytes": sum(s.stored for s in steps),
        }
