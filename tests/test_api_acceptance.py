"""Issue-level acceptance of artifacts: every backend, concurrency, dedup, interruptions."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import artifactstore
from artifactstore.core.digest import Hasher
from artifactstore.core.synthetic import RandomStream, random_bytes
from artifactstore.repository.download import TEMP_MARK
from artifactstore.testing.conformance import BackendSpec
from artifactstore.testing.processes import run_workers

MiB = 1 << 20


def _b3sum(path: Path) -> str:
    """What ``b3sum`` prints for a file (BLAKE3-256, hex)."""
    hasher = Hasher()
    with open(path, "rb") as f:
        while block := f.read(8 * MiB):
            hasher.update(block)
    return hasher.digest().hex


def _make_tree(root: Path, big_mib: int) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty-dir-file").write_bytes(b"")
    (root / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (root / "a" / "ünïcødé ✓.txt").write_text("unicode name\n", encoding="utf-8")
    tool = root / "a" / "tool.sh"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    with open(root / "big.bin", "wb") as f:
        stream = RandomStream(big_mib * MiB, seed=42)
        while block := stream.read(8 * MiB):
            f.write(block)


def _files(root: Path) -> dict[str, tuple[int, int, str]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, stat.S_IMODE(p.stat().st_mode),
                                             _b3sum(p))
            for p in sorted(root.rglob("*")) if p.is_file()}


def _round_trip(spec: BackendSpec, tmp_path: Path, big_mib: int) -> None:
    source = tmp_path / "source"
    _make_tree(source, big_mib)
    with artifactstore.open(spec.url, create=True, cache_dir=tmp_path / "c1",
                            **spec.options) as store:
        version = store.log_artifact(source, name="ds", type="dataset")
        empty = artifactstore.Artifact("nothing", type="dataset")
        zero = store.log_artifact(empty)
        assert (zero.size, zero.files()) == (0, [])
    with artifactstore.open(spec.url, cache_dir=tmp_path / "c2", **spec.options) as store:
        again = store.artifact("ds:latest")
        out = again.download(tmp_path / "out")
        expected = _files(source)
        assert _files(out) == expected
        manifest: dict[str, str] = {}
        for e in again.files():
            assert e.digest is not None  # logged from files: each entry has its digest
            manifest[e.path] = e.digest.hex
        assert manifest == {path: digest for path, (_, _, digest) in expected.items()}
        assert store.artifact("nothing").download(tmp_path / "nothing").is_dir()
    del version


@pytest.mark.slow
def test_round_trip_memory_300mib(memory_spec: BackendSpec, tmp_path: Path) -> None:
    _round_trip(memory_spec, tmp_path, big_mib=300)


@pytest.mark.slow
def test_round_trip_local_300mib(local_spec: BackendSpec, tmp_path: Path) -> None:
    _round_trip(local_spec, tmp_path, big_mib=300)


@pytest.mark.s3
@pytest.mark.slow
def test_round_trip_s3_300mib(s3_spec: BackendSpec, tmp_path: Path) -> None:
    _round_trip(s3_spec, tmp_path, big_mib=300)


@pytest.mark.gcs
@pytest.mark.slow
def test_round_trip_gcs_300mib(gcs_spec: BackendSpec, tmp_path: Path) -> None:
    _round_trip(gcs_spec, tmp_path, big_mib=300)


def _log_five(worker: int, barrier: Any, results: Any, url: str, cache: str) -> None:
    try:
        store = artifactstore.open(url, cache_dir=Path(cache) / str(worker))
        refs = []
        for i in range(5):
            f = Path(cache) / f"w{worker}-{i}.bin"
            f.write_bytes(f"worker {worker} version {i}".encode())
            barrier.wait(60)  # every round contested: all eight commit at once
            refs.append(store.log_artifact(f, name="shared", type="model").version)
        store.close()
        results.put((worker, refs, None))
    except BaseException as exc:
        barrier.abort()
        results.put((worker, None, f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
def test_eight_processes_log_forty_versions(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    artifactstore.open(url, create=True).close()
    got = run_workers(_log_five, (url, str(tmp_path)), workers=8, timeout=180)
    claimed = sorted(v for refs in got.values() for v in refs)
    assert claimed == sorted(f"v{n}" for n in range(40))
    with artifactstore.open(url, cache_dir=tmp_path / "check") as store:
        versions = store.versions("shared")
        assert [v.version for v in versions] == [f"v{n}" for n in range(40)]
        contents = set()
        for v in versions:
            (entry,) = v.files()
            with v.open(entry.path) as f:
                contents.add(f.read())
        assert len(contents) == 40


@pytest.mark.slow
def test_one_byte_change_in_100k_files_writes_only_that(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for d in range(100):
        folder = data / f"part-{d:03d}"
        folder.mkdir(parents=True)
        for i in range(1000):
            (folder / f"{i:04d}.txt").write_bytes(b"row %d %d\n" % (d, i))
    with artifactstore.open(str(tmp_path / "store"), cache_dir=tmp_path / "c") as store:
        store.log_artifact(data, name="big", type="dataset")
        target = data / "part-042" / "0007.txt"
        target.write_bytes(target.read_bytes()[:-1] + b"!")
        before = store.objects.stats.blobs_new
        v1 = store.log_artifact(data, name="big", type="dataset")
        new_blobs = store.objects.stats.blobs_new - before
        assert v1.version == "v1"
        # the changed file's one chunk, its folder node, the root node, the manifest root
        assert new_blobs == 4
        assert [(c.path, c.kind) for c in v1.diff(store.artifact("big:v0"))] == [
            ("part-042/0007.txt", "modified")]


_DOWNLOADER = """
import sys, artifactstore
store = artifactstore.open(sys.argv[1], cache_dir=sys.argv[3])
store.artifact("many:latest").download(sys.argv[2])
"""


def _in_progress(folder: Path) -> Path | None:
    """The temp file or staging folder a download is writing in ``folder``, if any."""
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(TEMP_MARK) and (p.is_file() or any(p.iterdir())):
                return p
    return None


@pytest.mark.slow
@pytest.mark.parametrize("into", ["new folder", "folder with files"])
def test_killed_download_resumes_with_no_leftovers(tmp_path: Path, into: str) -> None:
    # Into a new folder the download writes a staging folder beside it and renames
    # it at the end; into one holding files, a temp file per file (download.py).
    url = str(tmp_path / "store")
    source = tmp_path / "src"
    source.mkdir()
    for i in range(120):
        (source / f"f{i:03d}.bin").write_bytes(random_bytes(4 * MiB, seed=i))
    with artifactstore.open(url, cache_dir=tmp_path / "c") as store:
        store.log_artifact(source, name="many", type="dataset")
    work = tmp_path / "work"
    out = work / "out"
    if into == "folder with files":
        out.mkdir(parents=True)
        (out / "notes.txt").write_text("mine")
    watched = work if into == "new folder" else out
    with subprocess.Popen([sys.executable, "-c", _DOWNLOADER, url, str(out),
                           str(tmp_path / "c2")]) as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if _in_progress(watched) is not None:
                break  # mid-way: a file is being written
            time.sleep(0.001)  # polling a condition with a deadline
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the download finished before the kill"
    if into == "new folder":
        assert not out.exists()  # the target appears complete or not at all
        assert _in_progress(work) is not None
    else:
        assert len(list(out.glob("f*.bin"))) < 120
    with artifactstore.open(url, cache_dir=tmp_path / "c3") as store:
        store.artifact("many:latest").download(out)
        assert store.artifact("many:latest").verify(out) == 120
    assert [p.name for p in work.rglob("*") if p.name.startswith(TEMP_MARK)] == []
    expected = {p.name for p in source.iterdir()}
    if into == "folder with files":
        expected.add("notes.txt")
    assert {p.name for p in out.iterdir()} == expected


def test_missing_extra_names_the_install_command(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from artifactstore.cli import main\n"
        "sys.exit(main(['ls', '--store', 's3://bucket/prefix']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 9
    assert "pip install 'artifactstore[s3]'" in done.stderr
    assert done.stderr.count("\n") == 1
