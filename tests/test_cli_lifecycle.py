"""The delete, restore, gc, purge and retention commands: output, JSON and exit codes."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_calls import cli, cli_json

from artifactstore.testing.stores import init_quick_store


@pytest.fixture
def url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    store = str(tmp_path / "store")
    init_quick_store(store)
    for i in range(3):
        f = tmp_path / f"data-{i}.bin"
        f.write_bytes(os.urandom(60_000))
        assert cli(capsys, "log", "d", str(f), "--type", "dataset", "--store", store)[0] == 0
    return store


def test_delete_ls_deleted_and_restore(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli_json(capsys, "delete", "d:v2", "--reason", "bad", "--store", url)
    assert code == 0
    assert out["events"][0]["versions"] == ["v2"]
    code, out = cli_json(capsys, "ls", "d", "--store", url)
    assert [v["version"] for v in out["versions"]] == ["v0", "v1"]
    code, out = cli_json(capsys, "ls", "--deleted", "--store", url)
    rows = [(r["ref"], r["reason"], r["purged"]) for r in out["deleted"]]
    assert rows == [("d:v2", "bad", False)]
    code, _, err = cli(capsys, "get", "d:v2", "--store", url)
    assert code == 3
    assert "restore" in err
    code, out = cli_json(capsys, "restore", "d:v2", "--store", url)
    assert code == 0
    assert out["events"][0]["action"] == "restore"
    code, out = cli_json(capsys, "show", "d", "--store", url)
    assert out["version"] == "v2"
    assert cli(capsys, "delete", "--whole-project", "--store", url)[0] == 0
    code, out = cli_json(capsys, "restore", "--whole-project", "--store", url)
    assert code == 0
    assert len(out["events"]) == 3
    assert cli(capsys, "restore", "--store", url)[0] == 2


def test_delete_refuses_aliased_versions_unless_forced(url: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "alias", "set", "d:v1", "staging", "--store", url)[0] == 0
    code, _, err = cli(capsys, "delete", "d:v1", "--store", url)
    assert code == 10
    assert "staging" in err
    assert "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert cli(capsys, "delete", "d:v1", "--force", "--store", url)[0] == 0
    code, _, err = cli(capsys, "delete", "d:v9", "--store", url)
    assert code == 3
    code, _, err = cli(capsys, "delete", "--store", url)
    assert code == 2


def test_gc_dry_run_then_gc(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "delete", "d:v0", "--store", url)[0] == 0
    code, dry = cli_json(capsys, "gc", "--dry-run", "--grace", "0", "--store", url)
    assert code == 0
    assert dry["dry_run"]
    assert dry["bytes_freed"] >= 60_000
    code, done = cli_json(capsys, "gc", "--grace", "0", "--store", url)
    assert code == 0
    assert done["bytes_freed"] >= 60_000
    assert done["domains"]["plain"]["packs_deleted"] >= 1
    code, out, _ = cli(capsys, "gc", "--grace", "0", "--store", url)
    assert code == 0
    assert "freed 0 B" in out
    code, _, err = cli(capsys, "gc", "--grace", "soon", "--store", url)
    assert code == 2
    assert "not a duration" in err


def test_purge_and_retention(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli_json(capsys, "purge", "d:v1", "--reason", "takedown", "--store", url)
    assert code == 0
    assert out["absent"]
    assert out["blobs_wiped"] >= 1
    assert out["reason"] == "takedown"
    code, _, err = cli(capsys, "restore", "d:v1", "--store", url)
    assert code == 2
    assert "purge" in err
    with pytest.raises(SystemExit) as exited:  # --reason is required (argparse)
        cli(capsys, "purge", "d:v0", "--store", url)
    assert exited.value.code == 2
    assert cli(capsys, "alias", "set", "d:v0", "keep", "--store", url)[0] == 0
    code, out = cli_json(capsys, "retention", "0", "--artifact", "d", "--store", url)
    assert code == 0
    assert out["ttl"] == 0.0
    code, out = cli_json(capsys, "gc", "--grace", "0", "--store", url)
    assert out["expired"] == ["d:v2"]
    code, out = cli_json(capsys, "ls", "d", "--store", url)
    assert [v["version"] for v in out["versions"]] == ["v0"]


def _log(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path, name: str) -> None:
    f = tmp_path / f"{name}.bin"
    f.write_bytes(os.urandom(1000))
    assert cli(capsys, "log", name, str(f), "--store", url)[0] == 0


def _state(capsys: pytest.CaptureFixture[str], url: str) -> tuple[object, ...]:
    """Everything a delete may change: live versions, aliases, deleted versions."""
    names = cli_json(capsys, "ls", "--store", url)[1]["artifacts"]
    versions = {n: [(v["version"], v["aliases"]) for v in
                    cli_json(capsys, "ls", n, "--store", url)[1]["versions"]] for n in names}
    return versions, cli_json(capsys, "ls", "--deleted", "--store", url)[1]["deleted"]


@pytest.mark.parametrize("what", [("--whole-project",), ("d", "--artifact")])
def test_a_delete_with_one_protected_alias_deletes_nothing(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], what: tuple[str, ...]
) -> None:
    """Issue 15, point 3: every refusal is checked before the first change. The
    artifacts sorted before the protected one (a, and d's own aliased v0) and the
    alias --force would remove stay as they were."""
    _log(capsys, url, tmp_path, "a")
    _log(capsys, url, tmp_path, "z")
    for ref, alias in (("a:v0", "best"), ("d:v0", "raw"), ("z:v0", "prod")):
        assert cli(capsys, "alias", "set", ref, alias, "--store", url)[0] == 0
    prod = "z:prod" if what[0] == "--whole-project" else "d:staging"
    if prod == "d:staging":
        assert cli(capsys, "alias", "set", "d:v2", "staging", "--store", url)[0] == 0
    assert cli(capsys, "alias", "protect", prod, "--store", url)[0] == 0
    before = _state(capsys, url)
    code, _, err = cli(capsys, "delete", *what, "--force", "--store", url)
    assert code == 10
    assert "nothing was deleted" in err
    assert f"'artifactstore alias unprotect {prod}'" in err
    assert len(err.strip().splitlines()) == 1
    assert _state(capsys, url) == before
    assert cli(capsys, "alias", "unprotect", prod, "--store", url)[0] == 0
    assert cli(capsys, "delete", *what, "--force", "--store", url)[0] == 0
    assert _state(capsys, url) != before


def _on_a_terminal(*argv: str) -> tuple[int, str]:
    """``artifactstore *argv`` as a real process whose stdout and stderr are a
    pseudo-terminal: its exit code and everything it drew."""
    main_fd, sub_fd = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "artifactstore", *argv],
                            stdin=subprocess.DEVNULL, stdout=sub_fd, stderr=sub_fd)
    os.close(sub_fd)
    drawn = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # EIO: the process exited and closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(main_fd)
    return proc.wait(timeout=60), drawn.decode()


@pytest.mark.parametrize("command", [("purge", "d:v0", "--reason", "test"),
                                     ("gc", "--grace", "0")])
def test_the_commit_window_wait_counts_down_on_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    """Issue 15, point 5: purge and gc --grace 0 count the commit window down on a
    terminal (a 2.5 s window here, not the real 120 s), and say nothing of it with
    --quiet."""
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=2.5)
    for name in ("d", "e"):
        _log(capsys, url, tmp_path, name)
        _log(capsys, url, tmp_path, name)
    for quiet, ref in ((False, "d"), (True, "e")):
        if command[0] == "gc":
            assert cli(capsys, "delete", f"{ref}:v0", "--store", url)[0] == 0
            argv = [*command, "--store", url]
        else:
            argv = [command[0], f"{ref}:v0", *command[2:], "--store", url]
        code, drawn = _on_a_terminal(*argv, *(["--quiet"] if quiet else []))
        assert code == 0, drawn
        counted = re.findall(r"waiting (\d+) s for in-flight commits", drawn)
        if quiet:
            assert drawn == ""
        else:
            assert len(set(counted)) >= 2, drawn  # it counts, not one static line
            assert counted == sorted(counted, reverse=True)
            assert "waited 3 s for in-flight commits" in drawn
