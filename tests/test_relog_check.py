"""The check before a streamed log asks ``access`` only of folders that changed since
they were last logged (localtree.check_folder's ``known``, the stat cache's folder rows):
an unchanged re-log of a million files costs a ``stat`` per file, and every refusal the
check makes is kept (a change of permissions moves the file's ctime, so its folder's
signature)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import artifactstore
from artifactstore.cli import main
from artifactstore.core.errors import InvalidInputError
from artifactstore.local.localtree import check_folder
from artifactstore.testing.stores import init_quick_store


def _tree(root: Path) -> Path:
    """Two folders of files and a file at the top, none written within the racy second."""
    past = time.time() - 60
    for rel in ["d1/a.bin", "d1/b.bin", "d2/a.bin", "d2/b.bin", "d2/c.bin", "top.bin"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(100) + rel.encode())
        os.utime(p, (past, past))
    return root


class _Access:
    """``os.access`` watched: the paths asked (value: the answer), and names answered
    "unreadable" as for a user the file mode shuts out (root reads everything)."""

    def __init__(self) -> None:
        self.asked: dict[str, bool] = {}
        self.denied: set[str] = set()
        self._real = os.access

    def __call__(self, path: str, mode: int, *args: object, **kwargs: object) -> bool:
        answer = self._real(path, mode) and Path(path).name not in self.denied
        self.asked[str(path)] = answer
        return answer

    def of(self, root: Path) -> list[str]:
        return [p for p in self.asked if p.startswith(str(root))]


@pytest.fixture
def access(monkeypatch: pytest.MonkeyPatch) -> _Access:
    spy = _Access()
    monkeypatch.setattr(os, "access", spy)
    return spy


def test_a_folder_whose_signature_is_known_is_not_asked_access(
        tmp_path: Path, access: _Access) -> None:
    root = _tree(tmp_path / "data")
    first = check_folder(root)
    assert len(access.asked) == 6
    assert set(first.signatures) == {"d1", "d2"}
    top = os.path.abspath(root)
    rows = {(os.path.join(top, p), p): sig for p, (sig, _) in first.signatures.items()}
    looked: list[tuple[str, str]] = []

    def known(local: str, path: str) -> bytes | None:
        looked.append((local, path))
        return rows.get((local, path))

    access.asked.clear()
    again = check_folder(root, known=known)
    assert again.signatures == first.signatures
    assert sorted(looked) == sorted(rows)  # asked by the key a log's rows are under
    assert list(access.asked) == [str(root / "top.bin")]  # no signature: asked as before
    access.asked.clear()
    os.chmod(root / "d2" / "b.bin", 0o600)  # moves the ctime: d2's signature changes
    changed = check_folder(root, known=known)
    assert changed.signatures["d1"] == first.signatures["d1"]
    assert changed.signatures["d2"] != first.signatures["d2"]
    assert sorted(access.asked) == sorted(str(root / p) for p in
                                   ["d2/a.bin", "d2/b.bin", "d2/c.bin", "top.bin"])


def test_an_unreadable_file_of_a_changed_folder_is_still_refused_or_skipped(
        tmp_path: Path, access: _Access) -> None:
    root = _tree(tmp_path / "data")
    rows = {p: sig for p, (sig, _) in check_folder(root).signatures.items()}

    def known(local: str, path: str) -> bytes | None:
        return rows.get(path)

    access.denied.add("b.bin")
    os.chmod(root / "d2" / "b.bin", 0o000)  # what makes it unreadable moves its ctime
    with pytest.raises(InvalidInputError, match=r"cannot log 1 entry .*d2/b\.bin"):
        check_folder(root, known=known)  # d1's b.bin: unchanged, as a log read it
    skipped = check_folder(root, known=known, skip_unreadable=True)
    assert [str(s.path) for s in skipped.skipped] == [str(root / "d2" / "b.bin")]
    # d2 is signed by the files a log stores: what it skips is not in the signature
    assert skipped.signatures["d2"][1] == 2
    assert skipped.signatures["d1"] == (rows["d1"], 2)
    with pytest.raises(InvalidInputError, match="cannot log 2 entries"):
        check_folder(root)  # without rows, each file is asked


def test_a_cli_re_log_asks_access_only_of_what_changed(
        tmp_path: Path, access: _Access, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache"))
    root = _tree(tmp_path / "data")
    url = str(tmp_path / "store")
    init_quick_store(url)
    log = ["--json", "log", "d", str(root), "--store", url]
    assert main(log) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(access.of(root)) == 6
    access.asked.clear()
    assert main(log) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["created"], again["digest"]) == (False, first["digest"])
    assert access.of(root) == [str(root / "top.bin")]
    access.denied.add("a.bin")
    os.chmod(root / "d1" / "a.bin", 0o000)
    assert main(log) == InvalidInputError.exit_code
    err = capsys.readouterr().err
    assert f"cannot log 1 entry of {root}: {root / 'd1' / 'a.bin'}" in err
    # the API's log of a path opens the stat cache the same way
    with artifactstore.open(url, cache_dir=tmp_path / "cache") as store:
        with pytest.raises(InvalidInputError, match=r"d1/a\.bin"):
            store.log_artifact(root, name="d", type="dataset")
        skipped = store.log_artifact(root, name="d", type="dataset", skip_unreadable=True)
        assert [f.path for f in skipped.files()] == ["d1/b.bin", "d2/a.bin", "d2/b.bin",
                                                      "d2/c.bin", "top.bin"]


def test_a_re_log_after_a_chmod_is_refused_for_a_user_without_the_power_to_read(
        tmp_path: Path) -> None:
    """The real ``access`` (the check's spy above aside): root without the capability to
    read anything, as the link policy's CLI test runs (tests/test_localtree.py)."""
    import shutil

    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to drop the power to read anything")
    env = {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "config"),
           "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache")}
    powerless = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*powerless, sys.executable, "-m", "artifactstore", *argv],
                              env=env, capture_output=True, text=True, timeout=120,
                              check=False)

    root = _tree(tmp_path / "data")
    store = str(tmp_path / "store")
    assert cli("init", store).returncode == 0
    for _ in range(2):  # a log, then a re-log that takes both folders by their rows
        done = cli("log", "d", str(root), "--store", store)
        assert done.returncode == 0, done.stderr
    os.chmod(root / "d2" / "c.bin", 0)
    done = cli("log", "d", str(root), "--store", store)
    assert done.returncode == InvalidInputError.exit_code, done.stderr
    assert f"cannot log 1 entry of {root}: {root / 'd2' / 'c.bin'}" in done.stderr


@pytest.mark.parametrize("where", ["", "d1/"])
def test_a_name_a_stream_could_not_stage_is_refused_by_the_check(tmp_path: Path,
                                                                 where: str) -> None:
    root = _tree(tmp_path / "data")
    (root / f"{where}back\\slash.bin").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="backslash"):
        check_folder(root)
    (root / f"{where}back\\slash.bin").unlink()
    assert set(check_folder(root).signatures) == {"d1", "d2"}
