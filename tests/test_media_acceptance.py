"""Issue 17 part 1 acceptance: media in runs, in a private project (docs/design.md §12.7).

Three runs, one of 200 steps, log scalars every step, an Image and a Histogram every 10
steps, a Table with an image column, a matplotlib Plot, an Audio clip and a Video (where
PyAV, the [video] extra, is installed). Everything reads back bit-exact through the API;
no object of the store holds any of it in plaintext; export/import and sync carry it;
``purge_run`` wipes it (evidence by id in the private project, by a byte scan in a
public one, as tests/test_takedown.py does) and a later sync wipes the copy.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_calls import cli, cli_json

import artifactstore
from artifactstore import Audio, Histogram, Image, Plot, Table, Text, Video
from artifactstore.backends import open_backend
from artifactstore.core.errors import NotFoundError
from artifactstore.maintenance.gc import version_blobs
from artifactstore.maintenance.projects import create_project
from artifactstore.objects.sweep import read_layout
from artifactstore.testing.keys import CHEAP_SCRYPT
from artifactstore.testing.stores import init_quick_store
from artifactstore.transfer.sync import sync

pytest.importorskip("PIL.Image", reason="the test extra installs Pillow")
matplotlib = pytest.importorskip("matplotlib", reason="the test extra installs matplotlib")
pytest.importorskip("pandas", reason="the test extra installs pandas")
HAVE_VIDEO = importlib.util.find_spec("av") is not None

#: text of the table that must never be stored in plaintext
TABLE_TEXT = f"label-{os.urandom(8).hex()}"


def needles(data: bytes) -> list[bytes]:
    """64-byte windows of ``data``: each one found in an object means its bytes are there."""
    return [data[i:i + 64] for i in range(0, max(len(data) - 64, 1), 48)]


def scan(url: str, pieces: list[bytes]) -> list[str]:
    """Every key of the store at ``url`` holding any of ``pieces``."""
    backend = open_backend(url)
    try:
        return [key for key in backend.list("") if any(p in backend.get(key) for p in pieces)]
    finally:
        backend.close()


class Logged:
    """What a training script logged, kept to compare with what reads back."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, int], bytes] = {}  # (key, step) -> the file's bytes
        self.pixels: dict[tuple[str, int], np.ndarray] = {}
        self.histograms: dict[int, Histogram] = {}
        self.table_images: list[bytes] = []

    def all_bytes(self) -> list[bytes]:
        return [*self.files.values(), *self.table_images]


def train(store: artifactstore.Store, logged: Logged, steps: int = 200) -> str:
    rng = np.random.default_rng(17)
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with store.run(job_type="train", config={"lr": 0.01, "model": {"depth": 4}},
                   tags=["media"]) as run:
        for step in range(steps):
            row: dict[str, Any] = {"loss": 1.0 / (step + 1), "acc": step / steps}
            if step % 10 == 0:
                pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
                image = Image(pixels, caption=f"sample {step}")
                logged.files["samples/img", step] = image.data
                logged.pixels["samples/img", step] = pixels
                row["samples/img"] = image
                histogram = Histogram(rng.normal(step / 10, 1, 1000), num_bins=32)
                logged.histograms[step] = histogram
                row["weights"] = histogram
            if step == 20:
                cells = [Image(rng.integers(0, 256, (8, 8), dtype=np.uint8)) for _ in range(4)]
                logged.table_images = [c.data for c in cells]
                table = Table(columns=["id", "label", "img"],
                              data=[[i, f"{TABLE_TEXT}-{i}", c] for i, c in enumerate(cells)])
                row["predictions"] = table
            if step == 50:
                figure = Figure(figsize=(3, 2))
                figure.add_subplot().plot(rng.normal(size=50))
                plot = Plot(figure)
                logged.files["curve", step] = plot.data
                row["curve"] = plot
            if step == 100:
                audio = Audio(rng.uniform(-1, 1, 8000), sample_rate=8000, caption="noise")
                logged.files["sound", step] = audio.data
                row["sound"] = audio
            if step == 150 and HAVE_VIDEO:
                video = Video(rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8), fps=5)
                logged.files["rollout", step] = video.data
                row["rollout"] = video
            run.log(row, step=step)
    return run.id


def other_runs(store: artifactstore.Store) -> list[str]:
    ids = []
    with store.run(job_type="eval", config={"lr": 0.1}) as run:
        for step in range(20):
            run.log({"loss": 0.5, "note": Text(f"step {step}")})
        ids.append(run.id)
    with store.run(job_type="eval", config={"lr": 0.2}) as run:
        for step in range(5):
            run.log({"loss": 0.25 * step})
        ids.append(run.id)
    return ids


def check_reads(store: artifactstore.Store, run_id: str, logged: Logged, *,
                history: bool = True) -> None:
    """Every logged file reads back bit-exact through the API, checked by digest."""
    rows = list(store.run_history(run_id)) if history else []
    entries = store.run_media(run_id) if history else []
    if history:
        assert len(rows) == 200
        by_key = {(e.key, e.step): e.reference for e in entries}
    else:
        by_key = {}
    for (key, step), data in logged.files.items():
        reference = by_key.get((key, step)) if history else None
        media = store.media(run_id, reference if reference is not None else
                            _path_of(store, run_id, key, step))
        assert media.read() == data, (key, step)
        if (key, step) in logged.pixels:
            assert (media.to_numpy() == logged.pixels[key, step]).all()
    if not history:
        return
    for step, histogram in logged.histograms.items():
        assert by_key["weights", step] == {"_type": "histogram", "bins": histogram.bins,
                                           "counts": histogram.counts}
    table = store.media(run_id, by_key["predictions", 20]).table()
    assert table.columns == ["id", "label", "img"]
    assert [r[1] for r in table.rows] == [f"{TABLE_TEXT}-{i}" for i in range(4)]
    assert [store.media(run_id, r[2]).read() for r in table.rows] == logged.table_images
    assert store.media(run_id, by_key["sound", 100]).to_numpy().shape == (8000, 1)


def _path_of(store: artifactstore.Store, run_id: str, key: str, step: int) -> str:
    """The path of a logged file in a copy without the run's history (an import)."""
    version = store.artifact(f"media-{run_id}:latest")
    [path] = [e.path for e in version.files() if e.path.startswith(f"{key}/{step:012d}-")]
    return path


@pytest.fixture
def person(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "person"))


@pytest.mark.slow
@pytest.mark.usefixtures("person")
def test_media_in_a_private_project(tmp_path: Path) -> None:
    url, copy = str(tmp_path / "a"), str(tmp_path / "b")
    init_quick_store(url)
    create_project("lab", url, passphrase="words", scrypt=CHEAP_SCRYPT)
    logged = Logged()
    with artifactstore.open(url, "lab", create=False, cache_dir=tmp_path / "ca") as store:
        run_id = train(store, logged)
        others = other_runs(store)
        check_reads(store, run_id, logged)

        # notebooks: runs and history as DataFrames
        runs = store.runs_frame()
        assert list(runs["id"]) == [run_id, *others]
        assert list(runs["config.lr"]) == [0.01, 0.1, 0.2]
        assert runs.loc[0, "config.model.depth"] == 4
        assert runs.loc[0, "tags"] == ["media"]
        assert runs.loc[0, "summary.samples/img"]["_type"] == "image"
        history = store.history_frame(run_id)
        assert len(history) == 200
        assert list(history["_step"]) == list(range(200))
        assert history.loc[10, "samples/img"]["path"].startswith("samples/img/000000000010-")
        assert history["samples/img"].isna().sum() == 180
        assert str(history["_timestamp"].dtype).startswith("datetime64")

        media = store.artifact(f"media-{run_id}:latest")
        assert media.type == "run-media"
        assert f"media-{run_id}:v0" in store.get_run(run_id).outputs
        media_versions = [v.ref for v in store.versions(f"media-{run_id}")]
        gone = {b for v in store.versions(f"media-{run_id}")
                for b in version_blobs(v.record, store.context.objects_for(v.record))}

    # encrypted: no object of the store holds a logged byte or the table's text
    pieces = [n for data in logged.all_bytes() for n in needles(data)]
    pieces.append(TABLE_TEXT.encode())
    assert scan(url, pieces) == []

    # export of the media version, imported into another store
    other = str(tmp_path / "other")
    init_quick_store(other)
    with artifactstore.open(url, "lab", create=False, cache_dir=tmp_path / "ca") as store:
        store.export(f"media-{run_id}:latest", tmp_path / "export.tar")
    with artifactstore.open(other, cache_dir=tmp_path / "co") as there:
        report = there.import_export(tmp_path / "export.tar")
        assert report.version.name == f"media-{run_id}"
        check_reads(there, run_id, logged, history=False)

    # sync carries it, history and all
    assert sync(url, copy, project="lab", cache_dir=tmp_path / "cs").ok
    with artifactstore.open(copy, "lab", create=False, cache_dir=tmp_path / "cb") as there:
        check_reads(there, run_id, logged)
    assert scan(copy, pieces) == []

    # purge_run: every media version purged, the run deleted, the blobs gone by id
    with artifactstore.open(url, "lab", create=False, cache_dir=tmp_path / "ca") as store:
        purged = store.purge_run(run_id, reason="consent withdrawn")
        assert purged.absent
        assert purged.run_deleted
        assert purged.versions == media_versions
        assert purged.blobs_wiped >= len(logged.files)
        layout = read_layout(store.context.objects)
        assert not {e.id.raw for es in layout.packs.values() for e in es} & gone
        assert run_id not in {r.run_id for r in store.runs(sync=True)}
        with pytest.raises(NotFoundError, match="has no media"):
            store.media(run_id, _first_reference())
        assert [r.run_id for r in store.runs()] == others  # the other runs keep theirs
        assert store.get_run(others[0]).summary["note"] == {"_type": "text", "text": "step 19"}

    # the next sync wipes the copy too
    second = sync(url, copy, project="lab", cache_dir=tmp_path / "cs")
    assert second.ok, second.as_dict()
    assert [v for t in second.takedowns for v in t.versions] == purged.versions
    assert all(t.absent for t in second.takedowns)
    with artifactstore.open(copy, "lab", create=False, cache_dir=tmp_path / "cb") as there:
        layout = read_layout(there.context.objects)
        assert not {e.id.raw for es in layout.packs.values() for e in es} & gone


def _first_reference() -> dict[str, Any]:
    return {"_type": "image", "path": "samples/img/000000000000-0000000000000000.png",
            "digest": "0" * 64}


@pytest.mark.slow
@pytest.mark.usefixtures("person")
def test_purge_run_wipes_the_media_bytes_of_a_public_project(tmp_path: Path) -> None:
    """In plaintext the evidence is the bytes themselves: there before, gone after."""
    url = str(tmp_path / "pub")
    init_quick_store(url)
    logged = Logged()
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        run_id = train(store, logged, steps=60)
        (tmp_path / "model.bin").write_bytes(os.urandom(5000))
        with store.run(job_type="keep") as keeper:
            keeper.log({"img": Image(np.zeros((4, 4), np.uint8))})
            model = keeper.log_artifact(tmp_path / "model.bin", name="model", type="model")
    pieces = [n for data in logged.all_bytes() for n in needles(data)]
    assert len(scan(url, pieces)) >= 1  # random pixels do not compress: stored as they are
    with artifactstore.open(url, create=False, cache_dir=tmp_path / "c") as store:
        report = store.purge_run(run_id, reason="takedown request #9")
        assert report.absent
    assert scan(url, pieces) == []
    with artifactstore.open(url, create=False, cache_dir=tmp_path / "c") as store:
        assert store.artifact(model.ref).verify() == 1  # other runs' data untouched
        summary = store.get_run(keeper.id).summary
        assert store.media(keeper.id, summary["img"]).to_numpy().sum() == 0


@pytest.mark.usefixtures("person")
def test_runs_media_and_runs_purge_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    init_quick_store(url)
    cells = [Image(np.full((3, 3), i, np.uint8)) for i in range(2)]
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store, store.run() as run:
        run.log({"img": Image(np.full((2, 2), 5, np.uint8)), "h": Histogram([1.0, 2.0])})
        run.log({"t": Table(columns=["i", "img"], data=[[0, cells[0]], [1, cells[1]]])})
    code, listed = cli_json(capsys, "runs", "media", run.id[:20], "--store", url)
    assert code == 0
    assert [(i["step"], i["key"], i["reference"]["_type"]) for i in listed] == [
        (0, "h", "histogram"), (0, "img", "image"), (1, "t", "table")]
    code, out, _ = cli(capsys, "runs", "media", run.id, "--store", url, "--key", "t",
                       "--out", str(tmp_path / "out"))
    assert code == 0
    assert "saved 3 files" in out
    [table] = (tmp_path / "out" / "t").glob("*.json")
    body = json.loads(table.read_text())
    for row, cell in zip(body["rows"], cells, strict=True):
        assert (tmp_path / "out" / row[1]["path"]).read_bytes() == cell.data
    code, listed = cli_json(capsys, "runs", "media", run.id, "--store", url, "--step", "5")
    assert (code, listed) == (0, [])
    code, report = cli_json(capsys, "runs", "purge", run.id, "--store", url, "--reason",
                            "test", "--no-wait")
    assert code == 0
    assert report["versions"] == [f"media-{run.id}:v0"]
    assert report["absent"]
    code, _, err = cli(capsys, "runs", "media", run.id, "--store", url, "--out",
                       str(tmp_path / "again"))
    assert code != 0
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.usefixtures("person")
def test_publishing_a_runs_media_version_carries_its_files(tmp_path: Path) -> None:
    """``publish`` of ``media-<run>:latest`` from a private project: every file reads
    back bit-exact in the public copy (checked by digest), in plaintext there as a
    published version is; the run it records carries config and summary, not the
    history (publish re-logs a version, not a run's metrics)."""
    url, public = str(tmp_path / "a"), str(tmp_path / "pub")
    init_quick_store(url)
    init_quick_store(public)
    create_project("lab", url, passphrase="words", scrypt=CHEAP_SCRYPT)
    logged = Logged()
    with artifactstore.open(url, "lab", create=False, cache_dir=tmp_path / "ca") as store:
        run_id = train(store, logged)
        report = store.publish(f"media-{run_id}:latest", public, "shared", with_lineage=True)
    assert report.original_run_id == run_id
    with artifactstore.open(public, "shared", create=False, cache_dir=tmp_path / "cp") as there:
        assert there.artifacts() == [f"media-{run_id}"]
        check_reads(there, run_id, logged, history=False)
        [published] = there.runs()
        assert published.run_id == report.run_id
        assert published.config["lr"] == 0.01
        assert list(there.run_history(published.run_id)) == []
    pieces = [n for data in logged.all_bytes() for n in needles(data)]
    assert scan(public, pieces) != []  # public: the bytes are there in plaintext
