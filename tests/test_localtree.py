"""Logging a local folder: the symbolic link policy, unreadable entries (localtree.py).

Each case runs through the CLI and checks the exit code, a one-line message, no
traceback, and that a refused log leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from artifactstore.core.errors import InvalidInputError
from artifactstore.repository.artifact import Artifact

import artifactstore
from artifactstore.cli import main


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> str:
    """A private-by-default store made by ``init`` (a refused log must not create a project)."""
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("ARTIFACTSTORE_PASSPHRASE", raising=False)
    assert main(["init", str(tmp_path / "store")]) == 0
    capsys.readouterr()
    return str(tmp_path / "store")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "top.txt").write_text("top\n")
    (root / "sub" / "deep.txt").write_text("deep\n")
    (tmp_path / "secret.txt").write_text("outside secret\n")
    return root


def _log(capsys: pytest.CaptureFixture[str], url: str, *argv: str,
         as_json: bool = True) -> tuple[int, str, str]:
    code = main(["log", "d", *argv, "--store", url, *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _files(url: str) -> dict[str, bytes]:
    with artifactstore.open(url) as store:
        version = store.artifact("d:latest")
        return {e.path: version.open(e.path).read() for e in version.files()}


def _snapshot(url: str) -> dict[str, int]:
    """Every file of the store (temp files included) and its size."""
    return {str(p.relative_to(url)): p.stat().st_size for p in Path(url).rglob("*")
            if p.is_file()}


def _refused(capsys: pytest.CaptureFixture[str], url: str, folder: Path, *names: str,
             flags: tuple[str, ...] = ()) -> str:
    before = _snapshot(url)
    code, out, err = _log(capsys, url, str(folder), *flags, as_json=False)
    assert code == InvalidInputError.exit_code, err
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("artifactstore: error: ")
    for name in names:
        assert name in err
    assert _snapshot(url) == before  # no project, pack, index or temp file
    return err


def test_a_link_to_a_file_inside_is_stored_as_that_file(
        url: str, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data / "again.txt").symlink_to("sub/deep.txt")
    code, out, _ = _log(capsys, url, str(data))
    assert code == 0
    assert json.loads(out)["skipped"] == []
    assert _files(url) == {"again.txt": b"deep\n", "sub/deep.txt": b"deep\n", "top.txt": b"top\n"}


def test_a_link_to_a_folder_inside_is_not_followed_and_is_listed(
        url: str, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data / "alias").symlink_to(data / "sub")
    code, out, err = _log(capsys, url, str(data))
    assert code == 0
    assert json.loads(out)["skipped"] == [
        {"path": str(data / "alias"), "reason": "link to a folder inside (sub)"}]
    assert f"skipped {data / 'alias'}" in err
    assert sorted(_files(url)) == ["sub/deep.txt", "top.txt"]


@pytest.mark.parametrize("target", ["file", "parent", "absolute-folder"])
def test_links_that_leave_the_folder_are_refused_unless_followed(
        url: str, data: Path, tmp_path: Path, target: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    pointed = {"file": tmp_path / "secret.txt", "parent": Path(".."),
               "absolute-folder": tmp_path}[target]
    (data / "leak").symlink_to(pointed)
    err = _refused(capsys, url, data, str(data / "leak"), "--follow-links")
    assert "leave it" in err
    code, out, _ = _log(capsys, url, str(data))
    assert code == 2
    assert json.loads(out)["error"] == "InvalidInputError"
    if target == "file":  # followed on request: its content, under the link's name
        code, _, _ = _log(capsys, url, str(data), "--follow-links")
        assert code == 0
        assert _files(url)["leak"] == b"outside secret\n"
    else:  # the folder holds the logged folder itself: following it is a loop
        _refused(capsys, url, data, "link loop", flags=("--follow-links",))


def test_etc_passwd_is_not_uploaded(url: str, data: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    (data / "passwd").symlink_to("/etc/passwd")
    _refused(capsys, url, data, "passwd")
    content = Path("/etc/passwd").read_bytes()
    assert not any(content[:32] in p.read_bytes() for p in Path(url).rglob("*") if p.is_file())


@pytest.mark.parametrize("case", ["dangling", "loop", "self"])
def test_dangling_and_looping_links_are_refused_or_skipped_with_the_flag(
        url: str, data: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    if case == "dangling":
        (data / "bad").symlink_to(data / "missing.txt")
        reason = "dangling link"
    elif case == "loop":
        (data / "bad").symlink_to(data / "bad2")
        (data / "bad2").symlink_to(data / "bad")
        reason = "link loop"
    else:
        (data / "bad").symlink_to("bad")
        reason = "link loop"
    err = _refused(capsys, url, data, str(data / "bad"), reason, "--skip-unreadable")
    assert "cannot log" in err
    code, out, err = _log(capsys, url, str(data), "--skip-unreadable")
    assert code == 0
    skipped = [s["path"] for s in json.loads(out)["skipped"]]
    assert str(data / "bad") in skipped
    assert f"skipped {data / 'bad'}" in err
    assert sorted(_files(url)) == ["sub/deep.txt", "top.txt"]


def test_many_bad_entries_are_counted_and_the_first_named(
        url: str, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(12):
        (data / f"bad{n:02}").symlink_to(data / f"missing{n}")
    err = _refused(capsys, url, data, "12 entries", "bad00", "bad04", "and 7 more")
    assert "bad05" not in err


def test_special_files_are_skipped_and_listed(url: str, data: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(data / "pipe")
    code, out, _ = _log(capsys, url, str(data))
    assert code == 0
    assert json.loads(out)["skipped"] == [
        {"path": str(data / "pipe"), "reason": "not a file (FIFO, socket, device)"}]


def test_a_file_argument_that_is_a_link_is_followed(
        url: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The user named it: like cp, the command logs what it points to, under its name.
    (tmp_path / "named.txt").symlink_to(tmp_path / "secret.txt")
    code, _, _ = _log(capsys, url, str(tmp_path / "named.txt"))
    assert code == 0
    assert _files(url) == {"named.txt": b"outside secret\n"}


def test_the_api_refuses_before_opening_a_project(url: str, data: Path) -> None:
    (data / "leak").symlink_to("/etc/passwd")
    with artifactstore.open(url) as store:
        before = _snapshot(url)
        with pytest.raises(InvalidInputError, match="leave it"):
            store.log_artifact(data, "d", type="dataset")
        assert _snapshot(url) == before
    art = Artifact("d", type="dataset")
    assert art.add_dir(data, follow_outside_links=True) == ["leak", "sub/deep.txt", "top.txt"]


# -- unreadable entries: root reads everything, so the CLI runs without that power ----


@pytest.fixture
def powerless() -> list[str]:
    """A command prefix that runs as root but without CAP_DAC_OVERRIDE/READ_SEARCH, so
    file modes apply to it as to any user."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to drop the power to read anything")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def _cli(prefix: list[str], home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(home / "config"),
           "ARTIFACTSTORE_CACHE_DIR": str(home / "cache")}
    return subprocess.run([*prefix, sys.executable, "-m", "artifactstore", *argv], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_unreadable_entries_are_refused_or_skipped_with_the_flag(
        tmp_path: Path, powerless: list[str], kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "config"))
    data = tmp_path / "data"
    (data / "closed").mkdir(parents=True)
    (data / "open.txt").write_text("open\n")
    (data / "closed" / "inner.txt").write_text("inner\n")
    (data / "secret.txt").write_text("secret\n")
    bad = data / ("secret.txt" if kind == "file" else "closed")
    os.chmod(bad, 0)
    store = tmp_path / "store"
    done = _cli([], tmp_path, "init", str(store))
    assert done.returncode == 0, done.stderr
    before = {str(p) for p in store.rglob("*")}
    done = _cli(powerless, tmp_path, "log", "d", str(data), "--store", str(store))
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.startswith(f"artifactstore: error: cannot log 1 entry of {data}: {bad}")
    assert done.stderr.count("\n") == 1
    assert {str(p) for p in store.rglob("*")} == before
    done = _cli(powerless, tmp_path, "log", "d", str(data), "--store", str(store),
                "--skip-unreadable", "--json")
    assert done.returncode == 0, done.stderr
    assert [s["path"] for s in json.loads(done.stdout)["skipped"]] == [str(bad)]
    assert f"artifactstore: skipped {bad}" in done.stderr
    with artifactstore.open(str(store)) as opened:
        logged = [e.path for e in opened.artifact("d:v0").files()]
    assert logged == (["closed/inner.txt", "open.txt"] if kind == "file"
                      else ["open.txt", "secret.txt"])
