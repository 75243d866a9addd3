"""Local backend: the conformance suite plus atomicity and temp-file details."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from artifactstore.core.errors import BackendUnavailableError, InvalidInputError

from artifactstore.backends import LocalBackend, open_backend
from artifactstore.backends.local import TEMP_PREFIX
from artifactstore.testing import BackendConformance, BackendSpec


class TestLocalBackend(BackendConformance):
    """The race runs in 8 spawned processes (os.link must be atomic across them)."""

    @pytest.fixture
    def backend_spec(self, local_spec: BackendSpec) -> BackendSpec:
        return local_spec


class TestLocalBackendNoFsync(BackendConformance):
    """fsync=False changes durability only, never the contract."""

    race_keys = 5

    @pytest.fixture
    def backend_spec(self, tmp_path: Path) -> BackendSpec:
        return BackendSpec(f"file://{tmp_path / 'store'}", {"fsync": False})


def test_open_paths_and_file_urls(tmp_path: Path) -> None:
    plain = open_backend(str(tmp_path / "s1"))
    assert isinstance(plain, LocalBackend)
    assert plain.url == (tmp_path / "s1").as_uri()
    via_url = open_backend((tmp_path / "s1").as_uri())
    plain.put("k", b"v")
    assert via_url.get("k") == b"v"


def test_missing_root_without_create(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        LocalBackend(tmp_path / "absent", create=False)


def test_temp_files_are_never_listed(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.put("d/k", b"v")
    (tmp_path / "d" / f"{TEMP_PREFIX}leftover").write_bytes(b"partial")
    (tmp_path / f"{TEMP_PREFIX}top").write_bytes(b"partial")
    assert list(backend.list()) == ["d/k"]
    assert list(backend.list("d/")) == ["d/k"]
    assert list(backend.list("d/.")) == []


def test_temp_prefix_is_reserved(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    with pytest.raises(InvalidInputError, match="reserved"):
        backend.put(f"a/{TEMP_PREFIX}x", b"v")


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)
    backend.put("a/b", b"1")
    backend.put("a/b", b"2")
    assert backend.put_if_absent("a/c", b"3")
    assert not backend.put_if_absent("a/c", b"4")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["b", "c"]


def test_reader_never_sees_a_partial_object(tmp_path: Path) -> None:
    """Concurrent overwrites of a 2 MiB object: every read is one whole version."""
    backend = LocalBackend(tmp_path, fsync=False)
    versions = [bytes([n]) * (2 * 2**20) for n in range(2)]
    backend.put("obj", versions[0])
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            backend.put("obj", versions[n % 2])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(200):
            assert backend.get("obj") in versions
    finally:
        stop.set()
        thread.join()


def test_put_if_absent_fails_cleanly_when_the_directory_is_read_only(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    backend = LocalBackend(tmp_path)
    backend.put("ro/x", b"1")
    (tmp_path / "ro").chmod(0o500)
    try:
        with pytest.raises(Exception, match="permission denied"):
            backend.put_if_absent("ro/y", b"2")
    finally:
        (tmp_path / "ro").chmod(0o700)
