"""Everything artifactstore keeps on this machine is private to its user (privatefiles.py)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from artifactstore.core.privatefiles import private_folder, write_private_file
from artifactstore.local.clientstate import known_dir
from artifactstore.local.identity import PASSPHRASE_ENV

import artifactstore
from artifactstore.cli import main


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # a shared machine's default: new files readable by everyone
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    return tmp_path


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _use_every_cache(store_url: str, cache: Path, data: Path, out: Path) -> dict[str, int]:
    """Modes of everything in ``cache`` while a store uses it, and after (SQLite's
    -wal and -shm exist only while the catalog is open)."""
    with artifactstore.open(store_url, cache_dir=cache, file_cache=True) as store:
        store.log_artifact(data, "d", type="dataset")
        store.log_artifact(data, "d", type="dataset")  # the stat cache answers
        store.artifact("d:latest").download(out)  # file cache entries
        assert store.runs() == []  # the catalog syncs
        known_dir(cache, store.objects.backend.url)
        during = _modes(cache)
    return {**during, **_modes(cache)}


def test_every_local_file_kind_is_private_under_umask_022(
        user: Path, umask_022: None, capsys: pytest.CaptureFixture[str]) -> None:
    data = user / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"private words\n" * 1000)
    (data / "b.bin").write_bytes(os.urandom(3 << 20))  # more than one chunk
    assert main(["init", str(user / "store")]) == 0  # private by default
    cache = user / "cache"
    modes = _use_every_cache(str(user / "store"), cache, data, user / "out")
    kinds = {name.split("/")[0] for name in modes}
    assert {"files", "stat", "catalog", "refs", "index", "known"} <= kinds, kinds
    assert any(name.endswith(".sqlite-wal") for name in modes), "the catalog runs in WAL"
    # the genesis holds epoch 0's slots: a private project's key slots are cached with it
    assert any(name.endswith("/projects/default/project") for name in modes)
    assert any(name.startswith("files/") and name.count("/") == 2 for name in modes)
    assert any(name.startswith("files/versions/") for name in modes)  # the download's note
    wide = {}
    for name, mode in modes.items():
        path = cache / name if name != "." else cache
        entry = (name.startswith("files/") and name.count("/") == 2 and "/tmp/" not in name
                 and not name.startswith("files/versions/"))  # notes: appended, 0600
        expected = 0o700 if path.is_dir() else (0o400 if entry else 0o600)
        if path.exists() and mode != expected:
            wide[name] = oct(mode)
    assert wide == {}
    assert stat.S_IMODE((user / "config" / "identity.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((user / "config").stat().st_mode) == 0o700


def test_wide_caches_of_older_versions_are_tightened_when_opened(
        user: Path, umask_022: None) -> None:
    data = user / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"x" * 100)
    assert main(["init", str(user / "store")]) == 0
    cache = user / "cache"
    _use_every_cache(str(user / "store"), cache, data, user / "out")
    for name in _modes(cache):  # what an older version left: 0755 folders, 0644 files
        path = cache / name
        if not path.name.startswith("."):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    modes = _use_every_cache(str(user / "store"), cache, data, user / "out2")
    # Folders down to each store's own are private again, so nothing below them can be
    # reached by another user (files keep their old mode until rewritten).
    wide = {name: oct(mode) for name, mode in modes.items()
            if name.count("/") <= (0 if name.startswith("files") else 1)
            and (cache / name).is_dir() and mode != 0o700}
    assert wide == {}
    assert len([name for name in modes if name.count("/") == 1]) >= 5


def test_a_private_folder_never_tightens_above_its_root(tmp_path: Path,
                                                        umask_022: None) -> None:
    os.chmod(tmp_path, 0o755)
    write_private_file(tmp_path / "a" / "b" / "f", b"x", root=tmp_path / "a")
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755  # not ours to change
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b" / "f").stat().st_mode) == 0o600
    private_folder(tmp_path / "c", root=tmp_path / "elsewhere")
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
