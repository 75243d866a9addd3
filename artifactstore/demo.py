"""The demo the README runs first: the whole artifact workflow on a local store.

The dataset is real (Iris, Wine and Breast Cancer from the UCI repository, bundled)
plus a larger synthetic event log; the model is a real softmax classifier trained
on Iris here, in pure Python, next to a synthetic block of pretrained embeddings.
The demo logs both, trains the model further (its weights change, and 5% of the
embeddings are rewritten as fine-tuning would) and logs model v1, moves the
``production`` alias, gets ``model:latest`` back, verifies it against its
manifest and shows what deduplication saved.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import artifactstore
from artifactstore.core.synthetic import csv_rows, edit_scattered, random_bytes
from artifactstore.demo.model import train

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
            (data_dir / "uci").mkdir(parents=True)
            for name in ("iris.csv", "wine.csv", "breast_cancer.csv"):
                (data_dir / "uci" / name).write_bytes(
                    resources.files("artifactstore.demo.data").joinpath(name).read_bytes())
            (data_dir / "events-synthetic.csv").write_bytes(csv_rows(dataset_mib * MiB, seed=1))
            model_dir = work / "model"
            model_dir.mkdir()
            embeddings = bytearray(random_bytes(model_mib * MiB, seed=3))
            (model_dir / "embeddings-synthetic.bin").write_bytes(embeddings)
            classifier = train("iris.csv", epochs=30)
            (model_dir / "classifier.json").write_text(classifier.to_json())

            def log(path: Path, name: str, kind: str, aliases: tuple[str, ...] = (),
                    metadata: dict[str, object] | None = None) -> str:
                version = store.log_artifact(path, name=name, type=kind, aliases=aliases,
                                             metadata=metadata)
                return f"{version.ref} digest {version.digest[:16]}"

            size = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
            step("log dataset v0 (3 real + 1 synthetic)",
                 lambda: log(data_dir, "dataset", "dataset"), size)
            (data_dir / "splits.json").write_text(
                '{"iris": {"train": 120, "test": 30}, "seed": 7}\n')
            step("log dataset v1 (adds splits.json)",
                 lambda: log(data_dir, "dataset", "dataset"), size)
            step(f"log model v0 (iris accuracy {classifier.accuracy:.1%})",
                 lambda: log(model_dir, "model", "model", ("production",),
                             {"epochs": classifier.epochs, "accuracy": classifier.accuracy}),
                 len(embeddings))
            tuned = train("iris.csv", epochs=120, start=classifier)
            (model_dir / "classifier.json").write_text(tuned.to_json())
            edit_scattered(embeddings, 0.05, 64 << 10, seed=4)
            (model_dir / "embeddings-synthetic.bin").write_bytes(embeddings)
            step(f"log model v1, fine-tuned ({tuned.accuracy:.1%})",
                 lambda: log(model_dir, "model", "model", (),
                             {"epochs": tuned.epochs, "accuracy": tuned.accuracy}),
                 len(embeddings))

            def promote() -> str:
                store.set_alias("model:v1", "production")
                moves = store.alias_history("model", "production")
                return " -> ".join(f"v{e.target}" for e in moves)

            step("move alias production", promote, 0)

            def fetch() -> str:
                latest = store.artifact("model:latest")
                target = latest.download(work / "download")
                checked = latest.verify(target)
                return f"{latest.ref} -> {target.name}/, {checked} files verified"

            step("get model:latest and verify", fetch, 0)
            versions = {name: [v.version for v in store.versions(name)]
                        for name in store.artifacts()}
        return {
            "store": where if url else "(temporary, removed after the demo)",
            "steps": [asdict(s) for s in steps],
            "versions": versions,
            "logical_bytes": sum(s.size for s in steps if s.what.startswith("log")),
            "stored_bytes": sum(s.stored for s in steps),
        }
