"""Opening a store never writes; creating one is explicit (issue 14.3, design §3).

Read commands and read APIs on a missing store fail with exit 13 and create nothing;
``open`` creates a missing local store and a missing project on the first write only;
the per-user default store is created private with a one-time notice; a store on a
read-only bind mount is fully readable and refuses ``log`` with exit 8.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from artifactstore.core.errors import NotFoundError, ReadOnlyError, StoreNotFoundError
from artifactstore.repository.access import PRIVATE_BY_DEFAULT
from cli_calls import cli

import artifactstore
from artifactstore.backends import LocalBackend
from artifactstore.objects.config import load

READ_COMMANDS = [
    ("ls",),
    ("ls", "data"),
    ("show", "data"),
    ("get", "data", "--dir", "{out}"),
    ("diff", "data:v0", "data:v1"),
    ("verify",),
    ("verify", "data"),
    ("lineage", "data"),
    ("audit", "data"),
    ("export", "data", "{out}"),
    ("alias", "history", "data", "best"),
    ("runs", "ls"),
    ("project", "show"),
    ("info",),
    ("delete", "data:v0"),
    ("gc",),
]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user whose per-user default store, identity and caches live under ``tmp_path``."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)  # no artifactstore.toml or .artifactstore above it
    return tmp_path


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=lambda a: "-".join(a[:2]))
def test_a_read_command_on_a_missing_store_exits_13_and_creates_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    missing = tmp_path / "typo"
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, *(a.format(out=out) for a in argv), "--store", str(missing))
    assert code == StoreNotFoundError.exit_code == 13
    assert err == f"artifactstore: error: no store at {missing}; create it with " \
                  f"'artifactstore init {missing}'\n"
    assert stdout == ""
    assert not missing.exists()
    assert not out.exists()


def test_read_commands_on_the_missing_default_store_create_nothing(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("ls",), ("show", "data"), ("verify",), ("project", "show")):
        code, _, err = cli(capsys, *argv)
        assert code == 13, argv
        assert "artifactstore init" in err
    assert not (home / "data").exists()


def test_use_on_a_missing_store_raises_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    with pytest.raises(StoreNotFoundError, match="artifactstore init"):
        artifactstore.use("data:latest", url=str(missing))
    assert not missing.exists()


def test_open_creates_a_missing_local_store_on_the_first_write(tmp_path: Path) -> None:
    where = tmp_path / "lazy"
    (tmp_path / "f.txt").write_bytes(b"first")
    with artifactstore.open(str(where)) as store:
        assert not where.exists()
        with pytest.raises(StoreNotFoundError):
            store.artifacts()
        with pytest.raises(StoreNotFoundError):
            store.artifact("data:latest")
        assert not where.exists()
        version = store.log_artifact(tmp_path / "f.txt", name="data")
        assert version.created
        assert store.artifacts() == ["data"]
    assert load(LocalBackend(where, create=False)).store_id
    with artifactstore.open(str(where), create=False) as again:
        assert again.artifact("data:latest").open("f.txt").read() == b"first"


def test_open_with_create_false_on_a_missing_store_raises(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        artifactstore.open(str(tmp_path / "none"), create=False)
    with pytest.raises(StoreNotFoundError):
        artifactstore.open("memory://open-none", create=False)
    assert not (tmp_path / "none").exists()


_FIRST_WRITER = """
import os, sys, pathlib, time, artifactstore
where, me, data = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
pathlib.Path(where + ".ready-" + me).touch()
while not os.path.exists(where + ".go"):  # start together: wait for the parent's signal
    time.sleep(0.001)  # a poll, not a spin: two cores run both writers and the parent
with artifactstore.open(where) as store:
    store.log_artifact(data, name="data-" + me)
"""


def test_two_processes_creating_a_store_by_their_first_write_both_succeed(
        tmp_path: Path) -> None:
    where = str(tmp_path / "raced")
    data = tmp_path / "f.bin"
    data.write_bytes(os.urandom(4096))
    with contextlib.ExitStack() as stack:
        procs = [stack.enter_context(subprocess.Popen(
            [sys.executable, "-c", _FIRST_WRITER, where, str(i), str(data)],
            stderr=subprocess.PIPE, text=True)) for i in range(2)]
        while not all(os.path.exists(f"{where}.ready-{i}") for i in range(2)):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        assert not os.path.exists(where)
        Path(where + ".go").touch()
        results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert results == [(0, ""), (0, "")]
    with artifactstore.open(where, create=False) as store:
        assert store.artifacts() == ["data-0", "data-1"]


def test_a_missing_project_is_created_by_its_first_write_not_by_reads(
        tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = tmp_path / "private-store"
    assert cli(capsys, "init", str(where))[0] == 0
    (tmp_path / "f.txt").write_bytes(b"secret content")
    for argv in (("ls",), ("runs", "ls"), ("ls", "--deleted")):
        code, _, err = cli(capsys, *argv, "--store", str(where), "--project", "p")
        assert code == 0, err
    code, _, err = cli(capsys, "project", "show", "--store", str(where), "--project", "p")
    assert code == 3, err  # it does not exist yet (it is not "public")
    with artifactstore.open(str(where), "p") as store:
        assert store.artifacts() == []
    assert not (where / "projects").exists()  # reads created no project
    code, _, err = cli(capsys, "log", "data", str(tmp_path / "f.txt"), "--store", str(where),
                       "--project", "p")
    assert code == 0, err
    code, out, _ = cli(capsys, "project", "show", "--store", str(where), "--project", "p")
    assert "private" in out
    stored = b"".join(p.read_bytes() for p in where.rglob("*") if p.is_file())
    assert b"secret content" not in stored  # the lazily created project is encrypted


def test_a_pending_project_refuses_a_write_that_skips_its_creation(tmp_path: Path) -> None:
    where = str(tmp_path / "s")
    artifactstore.open(where, create=True).close()
    before = _files(tmp_path / "s")
    with artifactstore.open(where, "p") as store:
        with pytest.raises(ReadOnlyError):
            store.refs.lifecycle.append("retention", by="test", artifact=None, ttl=60.0)
        with pytest.raises(ReadOnlyError, match="not created yet"):
            store.objects.backend.put("projects/p/x", b"plaintext")
    assert _files(tmp_path / "s") == before


def test_open_create_false_reads_a_missing_project_empty_and_refuses_writes(
        tmp_path: Path) -> None:
    where = str(tmp_path / "s")
    artifactstore.open(where, create=True).close()
    before = _files(tmp_path / "s")
    (tmp_path / "f.txt").write_bytes(b"x")
    with artifactstore.open(where, "p", create=False) as store:
        assert store.artifacts() == []
        with pytest.raises(NotFoundError, match="artifactstore project create p") as caught:
            store.log_artifact(tmp_path / "f.txt", name="data")
        assert "\n" not in str(caught.value)
    assert _files(tmp_path / "s") == before


def test_the_default_store_is_created_private_by_the_first_write_with_one_notice(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "f.txt").write_bytes(b"mine")
    code, _, err = cli(capsys, "ls")
    assert code == 13
    code, _, err = cli(capsys, "log", "data", str(home / "f.txt"))
    assert code == 0
    default = home / "data" / "artifactstore" / "store"
    notice = [line for line in err.splitlines() if "default store" in line]
    assert len(notice) == 1
    assert str(default) in notice[0]
    assert str(home / "config" / "identity.json") in notice[0]
    assert "identity show" in notice[0]
    assert PRIVATE_BY_DEFAULT in load(LocalBackend(default, create=False)).optional_features
    code, out, _ = cli(capsys, "project", "show")
    assert "private" in out
    (home / "f.txt").write_bytes(b"mine, again")
    code, _, err = cli(capsys, "log", "data", str(home / "f.txt"))
    assert code == 0
    assert "default store" not in err


def test_init_run_creates_the_default_store_private(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = artifactstore.init_run(job_type="train", capture_code=False)
    run.finish()
    assert "default store" in capsys.readouterr().err
    default = home / "data" / "artifactstore" / "store"
    assert PRIVATE_BY_DEFAULT in load(LocalBackend(default, create=False)).optional_features


# -- read-only media ------------------------------------------------------------------


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/ro``: a read-only bind mount of ``tmp_path/src`` (unmounted afterwards)."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root")
    src, dst = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    dst.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(src), str(dst)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount --bind refused here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True)
        yield dst
    finally:
        subprocess.run(["umount", str(dst)], check=True)


def _run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "artifactstore", *argv], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_store_on_read_only_media_is_readable_and_refuses_log_with_exit_8(
        tmp_path: Path, read_only_copy: Path) -> None:
    env = {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "config"),
           "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache-writer"),
           "XDG_CACHE_HOME": str(tmp_path / "xdg-writer")}
    src = tmp_path / "src" / "store"
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"alpha " * 1000)
    assert _run("init", str(src), env=env).returncode == 0
    logged = _run("log", "data", str(data), "--store", str(src), env=env)
    assert logged.returncode == 0, logged.stderr
    store = str(read_only_copy / "store")
    before = _files(tmp_path / "src")
    # A reader with an empty cache (a new machine reading a backup), same identity.
    env = {**env, "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache-reader"),
           "XDG_CACHE_HOME": str(tmp_path / "xdg-reader")}
    for argv in (("ls",), ("ls", "data"), ("show", "data"), ("verify",), ("verify", "data"),
                 ("lineage", "data"), ("audit", "data"), ("runs", "ls"), ("project", "show"),
                 ("info",), ("get", "data", "--dir", str(tmp_path / "got")),
                 ("export", "data", str(tmp_path / "exported"))):
        done = _run(*argv, "--store", store, env=env)
        assert done.returncode == 0, (argv, done.stderr)
    assert (tmp_path / "got" / "a.txt").read_bytes() == b"alpha " * 1000
    (data / "b.txt").write_bytes(b"new")
    refused = _run("log", "data", str(data), "--store", store, env=env)
    assert refused.returncode == ReadOnlyError.exit_code == 8
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith("artifactstore: error: ")
    assert "read-only" in refused.stderr
    assert _files(tmp_path / "src") == before
