"""Export and import (docs/export-format.md): round trips between stores, lineage, damage."""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

import artifactstore
from artifactstore import Artifact, ArtifactVersion, Run, Store
from artifactstore.core.errors import (
    AlreadyExistsError,
    FormatError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.model.entries import FileEntry
from artifactstore.model.exports import MANIFEST_NAME
from artifactstore.runs.codestate import CodeState
from artifactstore.transfer.exporting import export_kind

CONFIG = {"split": 0.8, "seed": 7, "layers": [64, 32], "salt": b"\x00\xff"}
METADATA = {"rows": 2, "source": "raw:v0", "nested": {"a": [1, 2.5, None, True]},
            "raw": b"\x01\x02", "bad": float("inf")}
CODE = CodeState(commit="a" * 40, branch="main", remote="https://example.com/repo.git",
                 dirty=True, root=None)
FILES = {"train.csv": b"A,B\n1,2\n", "sub/test.csv": b"A,B\n3,4\n",
         MANIFEST_NAME: b"{\"not\": \"the manifest\"}", "run.sh": b"#!/bin/sh\necho hi\n"}


def open_store(path: Path) -> Store:
    return artifactstore.open(str(path), cache_dir=path.parent / f"{path.name}-cache")


@pytest.fixture
def store_a(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """raw:v0; a run "prepare" (raw:v0 -> dataset:v0, with metadata); dataset:v0 is production."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.csv").write_bytes(b"a,b\n1,2\n")
    with open_store(tmp_path / "a") as store:
        store.log_artifact(tmp_path / "raw.csv", name="raw", type="raw-data")
        with Run(store.context, name="prep-1", job_type="prepare", config=CONFIG, tags=["nightly"],
                 capture_code=CODE) as run:
            run.use("raw:v0")
            artifact = Artifact("dataset", "dataset", description="cleaned CSV",
                                metadata=METADATA)
            for path, data in FILES.items():
                with artifact.new_file(path, "wb") as f:
                    f.write(data)
            run.log({"loss": 0.5, "nan_metric": float("nan")})
            version = run.log_artifact(artifact)
        os.chmod(tmp_path / "raw.csv", 0o644)
        assert version.ref == "dataset:v0"
        store.set_alias("dataset:v0", "production")
        yield store


def entries(version: ArtifactVersion) -> dict[str, tuple[str, int, int]]:
    found: dict[str, tuple[str, int, int]] = {}
    for e in version.files():
        if e.digest is None:
            continue  # a reference that was not hashed
        assert isinstance(e, FileEntry)  # only files have a mode
        found[e.path] = (e.digest.hex, e.size, e.mode)
    return found


def contents(version: ArtifactVersion) -> dict[str, bytes]:
    out = {}
    for e in version.files():
        with version.open(e.path) as f:
            out[e.path] = f.read()
    return out


def same_value(a: object, b: object) -> bool:
    """Equality that takes NaN as equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# -- the acceptance test ------------------------------------------------------------------


@pytest.mark.parametrize("target", ["export", "export.tar", "export.tgz"])
def test_round_trip_keeps_content_and_restores_lineage(
        store_a: Store, tmp_path: Path, target: str) -> None:
    original = store_a.artifact("dataset:v0")
    made_by = store_a.get_run(original.record.run or "")
    manifest = store_a.export(original.ref, tmp_path / target)
    assert export_kind(tmp_path / target) == {"export": "dir", "export.tar": "tar",
                                              "export.tgz": "tar.gz"}[target]
    assert manifest.aliases == ("production",)

    with open_store(tmp_path / "b") as store_b:
        report = store_b.import_export(tmp_path / target)
        imported = report.version
        assert (imported.ref, report.created, report.source_ref) == ("dataset:v0", True,
                                                                     "dataset:v0")
        # Bytes, BLAKE3 digests, modes, metadata, type and description round-trip exactly.
        assert contents(imported) == FILES
        assert entries(imported) == entries(original)
        assert {p: blake3.blake3(d).hexdigest() for p, d in FILES.items()} == \
            {p: d for p, (d, _, _) in entries(imported).items()}
        assert same_value(dict(imported.metadata), METADATA)
        assert (imported.type, imported.description) == ("dataset", "cleaned CSV")
        assert imported.digest == original.digest
        assert report.same_digest
        assert imported.aliases == ["latest"]  # aliases are listed, not recreated

        # Lineage: a run carrying the original's job type, config, summary and code
        # produced the version; raw:v0 is recorded as a missing input.
        graph = store_b.upstream("dataset:v0")
        run_node = f"run:{report.run_id}"
        assert set(graph.edges) == {(run_node, "dataset:v0"), ("raw:v0", run_node)}
        assert graph.nodes["raw:v0"]["missing"] is True
        restored = store_b.get_run(report.run_id or "")
        assert (restored.name, restored.job_type, restored.status) == ("prep-1", "prepare",
                                                                       "finished")
        assert restored.config == CONFIG
        assert same_value(restored.summary, made_by.summary)
        assert restored.code == CODE.to_record()
        assert set(restored.tags) == {"nightly", f"imported_from={made_by.run_id}"}
        assert restored.inputs == ("raw:v0",)
        assert restored.outputs == ("dataset:v0",)
        assert report.original_run_id == made_by.run_id
        [raw] = report.inputs
        assert (raw.ref, raw.linked, raw.recorded) == ("raw:v0", None, True)
        assert raw.digest == store_a.artifact("raw:v0").digest


def test_present_input_is_linked_by_digest(store_a: Store, tmp_path: Path) -> None:
    store_a.export("raw:v0", tmp_path / "raw")
    store_a.export("dataset:v0", tmp_path / "dataset.tar")
    with open_store(tmp_path / "b") as store_b:
        (tmp_path / "other.txt").write_text("other")
        store_b.log_artifact(tmp_path / "other.txt", name="other", type="raw-data")
        raw = store_b.import_export(tmp_path / "raw", name="raw-copy")
        assert raw.run_id is None
        assert raw.inputs == ()
        report = store_b.import_export(tmp_path / "dataset.tar")
        [used] = report.inputs
        assert (used.ref, used.linked, used.matched_by) == ("raw:v0", "raw-copy:v0", "digest")
        graph = store_b.upstream("dataset:v0")
        assert ("raw-copy:v0", f"run:{report.run_id}") in graph.edges
        assert "raw:v0" not in graph
        assert store_b.get_run(report.run_id or "").inputs == ("raw-copy:v0",)


def test_manifest_is_plain_json_checkable_without_artifactstore(
        store_a: Store, tmp_path: Path) -> None:
    store_a.export("dataset:v0", tmp_path / "e")
    manifest = json.loads((tmp_path / "e" / MANIFEST_NAME).read_text("utf-8"))
    assert (manifest["format"], manifest["format_version"]) == ("artifactstore-export", 1)
    art = manifest["artifact"]
    assert (art["name"], art["version"], art["type"]) == ("dataset", 0, "dataset")
    assert art["metadata"]["raw"] == {"$bytes": "AQI="}
    assert art["metadata"]["bad"] == {"$float": "Infinity"}
    for f in manifest["files"]:
        data = (tmp_path / "e" / "files" / f["path"]).read_bytes()
        assert (len(data), blake3.blake3(data).hexdigest()) == (f["size"], f["blake3"])
        assert (tmp_path / "e" / "files" / f["path"]).stat().st_mode & 0o777 == f["mode"]
    run = manifest["lineage"]["run"]
    assert (run["job_type"], run["config"]["seed"], run["code"]["commit"]) == \
        ("prepare", 7, "a" * 40)
    assert run["summary"]["nan_metric"] == {"$float": "NaN"}
    assert [(i["ref"], i["type"]) for i in run["inputs"]] == [("raw:v0", "raw-data")]
    assert len(run["inputs"][0]["digest"]) == 64
    store_a.export("dataset:v0", tmp_path / "e.tar")
    with tarfile.open(tmp_path / "e.tar") as tar:
        names = tar.getnames()
    assert names[0] == MANIFEST_NAME
    assert sorted(names[1:]) == sorted(f"files/{p}" for p in FILES)


def test_executable_mode_is_kept(store_a: Store, tmp_path: Path) -> None:
    script = tmp_path / "tool.sh"
    script.write_bytes(b"#!/bin/sh\n")
    script.chmod(0o755)
    version = store_a.log_artifact(script, name="tool", type="code")
    store_a.export(version.ref, tmp_path / "tool.tar")
    with open_store(tmp_path / "b") as store_b:
        imported = store_b.import_export(tmp_path / "tool.tar").version
        assert entries(imported)["tool.sh"][2] == 0o755
        assert imported.digest == version.digest


# -- what the import refuses ----------------------------------------------------------------


def nothing_logged(path: Path) -> bool:
    if not path.exists():
        return True  # refused before its first write created the store
    with open_store(path) as store:
        return store.artifacts() == [] and store.runs(sync=True) == []


def tar_of(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w") as tar:
        tar.add(folder / MANIFEST_NAME, MANIFEST_NAME)
        for path in sorted((folder / "files").rglob("*")):
            if path.is_file():
                tar.add(path, f"files/{path.relative_to(folder / 'files').as_posix()}")
    return target


def edit_manifest(folder: Path, change: object) -> None:
    path = folder / MANIFEST_NAME
    manifest = json.loads(path.read_text("utf-8"))
    change(manifest)  # type: ignore[operator]
    path.write_text(json.dumps(manifest), "utf-8")


@pytest.fixture
def exported(store_a: Store, tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    store_a.export("dataset:v0", folder)
    return folder


def flip_byte(folder: Path) -> None:
    path = folder / "files" / "train.csv"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))


def other_digest(folder: Path) -> None:
    def change(m: dict) -> None:  # type: ignore[type-arg]
        m["files"][-1]["blake3"] = blake3.blake3(b"something else").hexdigest()
    edit_manifest(folder, change)


def longer_file(folder: Path) -> None:
    with (folder / "files" / "train.csv").open("ab") as f:
        f.write(b"more")


def extra_file(folder: Path) -> None:
    (folder / "files" / "unlisted.txt").write_text("x")


def missing_file(folder: Path) -> None:
    (folder / "files" / "sub" / "test.csv").unlink()


@pytest.mark.parametrize("damage", [flip_byte, other_digest, longer_file, extra_file,
                                    missing_file])
@pytest.mark.parametrize("as_tar", [False, True], ids=["dir", "tar"])
def test_damaged_export_is_refused_and_nothing_is_logged(
        exported: Path, tmp_path: Path, damage: object, as_tar: bool) -> None:
    damage(exported)  # type: ignore[operator]
    source = tar_of(exported, tmp_path / "d.tar") if as_tar else exported
    with open_store(tmp_path / "b") as store_b, pytest.raises(IntegrityError) as info:
        store_b.import_export(source)
    assert info.value.exit_code == 5
    assert "export it again" in str(info.value)
    assert nothing_logged(tmp_path / "b")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd", "a/./b", "a\\b", ""])
def test_unsafe_path_in_the_manifest_is_refused(
        exported: Path, tmp_path: Path, bad: str) -> None:
    def change(m: dict) -> None:  # type: ignore[type-arg]
        m["files"][0]["path"] = bad
    edit_manifest(exported, change)
    with open_store(tmp_path / "b") as store_b, pytest.raises(InvalidInputError) as info:
        store_b.import_export(exported)
    assert info.value.exit_code == 2
    assert nothing_logged(tmp_path / "b")


def test_unsafe_tar_member_is_refused(exported: Path, tmp_path: Path) -> None:
    source = tar_of(exported, tmp_path / "evil.tar")
    with tarfile.open(source, "a") as tar:
        info = tarfile.TarInfo("files/../../escaped.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with open_store(tmp_path / "b") as store_b, pytest.raises(InvalidInputError):
        store_b.import_export(source)
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert nothing_logged(tmp_path / "b")


def test_links_in_an_export_are_refused(exported: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(FILES["train.csv"])  # same bytes: only the link itself is wrong
    (exported / "files" / "train.csv").unlink()
    (exported / "files" / "train.csv").symlink_to(secret)
    with open_store(tmp_path / "b") as store_b, pytest.raises(InvalidInputError,
                                                              match="regular files"):
        store_b.import_export(exported)
    source = tmp_path / "link.tar"
    with tarfile.open(source, "w") as tar:
        tar.add(exported / MANIFEST_NAME, MANIFEST_NAME)
        link = tarfile.TarInfo("files/train.csv")
        link.type, link.linkname = tarfile.SYMTYPE, str(secret)
        tar.addfile(link)
    with open_store(tmp_path / "b") as store_b, pytest.raises(InvalidInputError,
                                                              match="regular file"):
        store_b.import_export(source)
    assert nothing_logged(tmp_path / "b")


def test_newer_format_and_non_exports_are_refused(exported: Path, tmp_path: Path) -> None:
    with open_store(tmp_path / "b") as store_b:
        with pytest.raises(NotFoundError):
            store_b.import_export(tmp_path / "nowhere")
        (tmp_path / "empty").mkdir()
        with pytest.raises(InvalidInputError, match="not an export"):
            store_b.import_export(tmp_path / "empty")
        (tmp_path / "junk.tar").write_bytes(b"not a tar file at all" * 100)
        with pytest.raises(InvalidInputError, match="neither a folder nor a tar"):
            store_b.import_export(tmp_path / "junk.tar")

        def newer(m: dict) -> None:  # type: ignore[type-arg]
            m["format_version"] = 2
        edit_manifest(exported, newer)
        with pytest.raises(FormatError) as info:
            store_b.import_export(exported)
        assert info.value.exit_code == 6
    assert nothing_logged(tmp_path / "b")


def test_truncated_tar_is_damaged(store_a: Store, tmp_path: Path) -> None:
    target = tmp_path / "e.tar.gz"
    store_a.export("dataset:v0", target)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with open_store(tmp_path / "b") as store_b, pytest.raises(IntegrityError, match="truncated"):
        store_b.import_export(target)
    assert nothing_logged(tmp_path / "b")


def test_type_conflict_is_refused_before_writing(exported: Path, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"weights")
    with open_store(tmp_path / "b") as store_b:
        store_b.log_artifact(tmp_path / "m.bin", name="dataset", type="model")
        with pytest.raises(InvalidInputError, match="--name"):
            store_b.import_export(exported)
        assert store_b.runs(sync=True) == []
        assert store_b.import_export(exported, name="dataset-imported").version.ref == \
            "dataset-imported:v0"


# -- repeated imports, aliases, references ----------------------------------------------------


def test_importing_twice_writes_nothing_new(exported: Path, tmp_path: Path) -> None:
    with open_store(tmp_path / "b") as store_b:
        first = store_b.import_export(exported)
        again = store_b.import_export(exported, aliases=True)
        assert (again.created, again.run_id, again.version.ref) == (False, None, "dataset:v0")
        assert len(store_b.runs(sync=True)) == 1
        assert first.run_id == store_b.runs()[0].run_id
        assert store_b.artifact("dataset:production").ref == "dataset:v0"


def test_aliases_are_set_only_when_asked(exported: Path, tmp_path: Path) -> None:
    with open_store(tmp_path / "b") as store_b:
        report = store_b.import_export(exported, aliases=True)
        assert report.aliases == ("production",)
        assert report.version.aliases == ["latest", "production"]


def test_references_are_listed_not_copied_and_checked_on_import(
        store_a: Store, tmp_path: Path) -> None:
    source = tmp_path / "remote.bin"
    source.write_bytes(b"remote bytes")
    artifact = Artifact("mixed", "dataset")
    artifact.add_reference(source.as_uri(), "remote.bin")
    with artifact.new_file("local.txt") as f:
        f.write("local")
    version = store_a.log_artifact(artifact)
    manifest = store_a.export(version.ref, tmp_path / "mixed")
    assert [r.path for r in manifest.references] == ["remote.bin"]
    assert manifest.references[0].blake3 == blake3.blake3(b"remote bytes").hexdigest()
    assert sorted(p.name for p in (tmp_path / "mixed" / "files").iterdir()) == ["local.txt"]
    with open_store(tmp_path / "b") as store_b:
        imported = store_b.import_export(tmp_path / "mixed").version
        assert imported.digest == version.digest
        assert imported.entry("remote.bin").uri == source.as_uri()  # type: ignore[union-attr]
    source.write_bytes(b"changed bytes")
    with open_store(tmp_path / "c") as store_c:
        with pytest.raises(IntegrityError, match="--skip-references"):
            store_c.import_export(tmp_path / "mixed")
        assert not (tmp_path / "c").exists()  # refused before anything was created
        report = store_c.import_export(tmp_path / "mixed", references=False)
        assert report.skipped_references == ("remote.bin",)
        assert [e.path for e in report.version.files()] == ["local.txt"]


# -- exporting ----------------------------------------------------------------------------------


def test_export_refuses_a_non_empty_folder_or_existing_file_unless_forced(
        store_a: Store, tmp_path: Path) -> None:
    version = store_a.artifact("dataset:v0")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExistsError) as info:
        store_a.export(version.ref, tmp_path / "full")
    assert info.value.exit_code == 4
    store_a.export(version.ref, tmp_path / "full", force=True)
    (tmp_path / "full" / "files" / "stale.txt").write_text("from before")
    store_a.export("raw:v0", tmp_path / "full", force=True)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in (tmp_path / "full" / "files").iterdir()) == ["raw.csv"]
    store_a.export(version.ref, tmp_path / "e.tar")
    with pytest.raises(AlreadyExistsError):
        store_a.export(version.ref, tmp_path / "e.tar")
    store_a.export(version.ref, tmp_path / "e.tar", force=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_version_logged_outside_a_run_has_no_lineage(store_a: Store, tmp_path: Path) -> None:
    manifest = store_a.export("raw:v0", tmp_path / "raw.tgz")
    assert (manifest.run_id, manifest.run) == (None, None)


@pytest.mark.parametrize("target", ["big.tar", "big"])
def test_export_streams(store_a: Store, tmp_path: Path, target: str) -> None:
    big = tmp_path / "big.bin"
    size = 48 << 20
    with big.open("wb") as f:  # incompressible, so the store holds 48 MiB of chunks
        for i in range(size >> 20):
            f.write(blake3.blake3(str(i).encode()).digest(length=1 << 20))
    version = store_a.log_artifact(big, name="big", type="blob")
    tracemalloc.start()
    try:
        store_a.export(version.ref, tmp_path / target)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak >> 20} MiB for a {size >> 20} MiB file"
    if target.endswith(".tar"):
        with tarfile.open(tmp_path / target) as tar:
            assert tar.getmember("files/big.bin").size == size
    else:
        assert (tmp_path / target / "files" / "big.bin").stat().st_size == size


def train_and_fail(store: Store, tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"weights")
    with store.run(job_type="train", capture_code=False) as run:
        run.use("dataset:v0")
        run.log_artifact(tmp_path / "m.bin", name="model", type="model")
        raise RuntimeError("diverged")


def test_failed_run_is_restored_as_failed_and_progress_counts_bytes(
        store_a: Store, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="diverged"):
        train_and_fail(store_a, tmp_path)
    counted: list[int] = []
    store_a.export("model:v0", tmp_path / "model.tar", progress=counted.append)
    assert sum(counted) == len(b"weights")
    with open_store(tmp_path / "b") as store_b:
        counted.clear()
        report = store_b.import_export(tmp_path / "model.tar", progress=counted.append)
        assert sum(counted) >= len(b"weights")
        restored = store_b.get_run(report.run_id or "")
        assert (restored.job_type, restored.status, restored.error) == \
            ("train", "failed", "RuntimeError: diverged")
        assert restored.inputs == ("dataset:v0",)
        assert store_b.lineage().nodes["dataset:v0"]["missing"] is True


def test_input_of_the_imported_artifact_itself_is_reported_not_recorded(
        store_a: Store, tmp_path: Path) -> None:
    with store_a.run(job_type="refine", capture_code=False) as run:
        run.use("dataset:v0")
        (tmp_path / "better.csv").write_text("better")
        run.log_artifact(tmp_path / "better.csv", name="dataset", type="dataset")
    store_a.export("dataset:v1", tmp_path / "v1")
    with open_store(tmp_path / "b") as store_b:
        report = store_b.import_export(tmp_path / "v1")
        assert report.version.ref == "dataset:v0"  # numbers are new here
        [used] = report.inputs
        assert (used.ref, used.linked, used.recorded) == ("dataset:v0", None, False)
        graph = store_b.lineage()
        assert set(graph.edges) == {(f"run:{report.run_id}", "dataset:v0")}  # no loop


def test_private_projects_export_plaintext_and_link_inputs_by_digest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from artifactstore.local.identity import load_or_create_identity
    from artifactstore.maintenance.projects import create_project

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "me"))
    load_or_create_identity()
    urls = {}
    for side in ("a", "b"):
        urls[side] = str(tmp_path / side)
        artifactstore.open(urls[side], create=True).close()
        create_project("p", urls[side], visibility="private")
    (tmp_path / "raw.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "train.csv").write_bytes(b"A,B\n1,2\n")
    with artifactstore.open(urls["a"], "p") as a:
        a.log_artifact(tmp_path / "raw.csv", name="raw", type="raw-data")
        with a.run(job_type="prepare", capture_code=False) as run:
            run.use("raw:v0")
            run.log_artifact(tmp_path / "train.csv", name="dataset", type="dataset")
        a.export("raw:v0", tmp_path / "raw.tar")
        a.export("dataset:v0", tmp_path / "dataset.tar")
    with artifactstore.open(urls["b"], "p") as b:
        b.import_export(tmp_path / "raw.tar")
        report = b.import_export(tmp_path / "dataset.tar")
        assert contents(report.version) == {"train.csv": b"A,B\n1,2\n"}
        assert entries(report.version)["train.csv"][0] == \
            blake3.blake3(b"A,B\n1,2\n").hexdigest()
        # The version digest is a content identity (design §11.1), though tree ids are
        # keyed per project: the copy has the same digest, and the input links by it.
        assert report.same_digest
        [used] = report.inputs
        assert (used.linked, used.matched_by) == ("raw:v0", "digest")
