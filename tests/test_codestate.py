"""Code state and code patches, against real git repositories in ``tmp_path``."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from artifactstore.core.errors import IntegrityError
from artifactstore.runs import codestate
from artifactstore.runs.codestate import (
    TRACKED_CHANGES,
    CodePatch,
    CodeState,
    capture_code_patch,
    capture_code_state,
)

NOTHING = CodeState(commit=None, branch=None, remote=None, dirty=None, root=None)
BINARY = bytes(range(256)) * 4  # has NUL bytes, so git and we treat it as binary


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Git ignores this machine's config and any repository around ``tmp_path``."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "t")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "t@example.com")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_EXTERNAL_DIFF"):
        monkeypatch.delenv(name, raising=False)


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode()


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on branch main with one commit of a few text files and a binary."""
    root = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    write(root / ".gitignore", "*.log\n")
    write(root / "README.md", "# demo\n")
    write(root / "src" / "train.py", "".join(f"line {i}\n" for i in range(50)))
    write(root / "src" / "old name.py", "print('moved')\n")
    write(root / "unstaged.txt", "moved without git mv\n")
    write(root / "gone.txt", "delete me\n")
    write(root / "run.sh", "#!/bin/sh\necho hi\n")
    write(root / "weights.bin", BINARY)
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def files_of(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file outside .git: its bytes and whether it is executable."""
    found = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if relative.parts[0] != ".git" and path.is_file():
            executable = bool(path.stat().st_mode & stat.S_IXUSR)
            found[relative.as_posix()] = (path.read_bytes(), executable)
    return found


def tree_of(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every path under ``root``: bytes (files) and mtime, to prove nothing was written."""
    return {
        str(path): (path.read_bytes() if path.is_file() else b"", path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


def apply_in_clone(repo: Path, commit: str, patch: bytes, tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", "--detach", commit)
    git(clone, "apply", input=patch)
    return clone


# -- code state ----------------------------------------------------------------------


def test_clean_tree(repo: Path) -> None:
    state = capture_code_state(repo / "src")  # from a subdirectory too
    assert state.commit == git(repo, "rev-parse", "HEAD").strip()
    assert state.captured
    assert (state.branch, state.remote, state.dirty) == ("main", None, False)
    assert state.root is not None
    assert os.path.samefile(state.root, repo)
    assert capture_code_patch(state) == CodePatch(b"", (), ())


def test_modified_tracked_file_is_dirty(repo: Path) -> None:
    write(repo / "README.md", "# changed\n")
    assert capture_code_state(repo).dirty is True


def test_untracked_file_is_dirty(repo: Path) -> None:
    git(repo, "config", "status.showUntrackedFiles", "no")  # user config must not hide it
    write(repo / "notes" / "new.txt", "hello\n")
    assert capture_code_state(repo).dirty is True


def test_ignored_file_is_not_dirty(repo: Path) -> None:
    write(repo / "train.log", "loss 0.1\n")
    state = capture_code_state(repo)
    assert state.dirty is False
    assert capture_code_patch(state) == CodePatch(b"", (), ())


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    state = capture_code_state(repo)
    assert state.branch is None
    assert state.commit == git(repo, "rev-parse", "HEAD").strip()


def test_unborn_head(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main", "fresh")
    write(tmp_path / "fresh" / "a.txt", "a\n")
    state = capture_code_state(tmp_path / "fresh")
    assert (state.commit, state.branch, state.dirty) == (None, "main", True)
    assert not state.captured
    assert capture_code_patch(state) is None


def test_outside_a_repository(tmp_path: Path) -> None:
    assert capture_code_state(tmp_path) == NOTHING
    assert capture_code_patch(NOTHING) is None


def test_missing_directory(tmp_path: Path) -> None:
    assert capture_code_state(tmp_path / "nowhere") == NOTHING


def test_git_not_installed(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert capture_code_state(repo) == NOTHING


def test_git_timeout(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(*args: object, **kwargs: object) -> None:
        raise subprocess.TimeoutExpired("git", codestate.GIT_TIMEOUT)

    monkeypatch.setattr(subprocess, "run", hang)  # the module codestate calls
    assert capture_code_state(repo) == NOTHING


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://user:token@example.com/org/x.git", "https://example.com/org/x.git"),
        ("https://ghp_secret@github.com/org/x", "https://github.com/org/x"),
        ("http://u:p%40ss@host:8080/x?y=1", "http://host:8080/x?y=1"),
        ("https://host.example/org/x.git", "https://host.example/org/x.git"),
        ("ssh://git:pw@host/org/x.git", "ssh://git@host/org/x.git"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
        ("/srv/git/x.git", "/srv/git/x.git"),
    ],
)
def test_remote_credentials_are_removed(repo: Path, url: str, stored: str) -> None:
    git(repo, "remote", "add", "origin", url)
    assert capture_code_state(repo).remote == stored


def test_remote_choice(repo: Path) -> None:
    git(repo, "remote", "add", "aaa", "https://a.example/x")
    assert capture_code_state(repo).remote == "https://a.example/x"  # the only one
    git(repo, "remote", "add", "origin", "https://o.example/x")
    assert capture_code_state(repo).remote == "https://o.example/x"  # origin over others
    git(repo, "remote", "add", "up", "https://u.example/x")
    git(repo, "config", "branch.main.remote", "up")
    assert capture_code_state(repo).remote == "https://u.example/x"  # the branch's remote


def test_record_round_trip() -> None:
    state = CodeState(commit="a" * 40, branch="main", remote="https://h/x", dirty=True, root="/r")
    record = state.to_record()
    assert record == {"commit": "a" * 40, "branch": "main", "remote": "https://h/x", "dirty": True}
    assert CodeState.from_record(record) == CodeState(
        commit="a" * 40, branch="main", remote="https://h/x", dirty=True, root=None
    )
    assert CodeState.from_record({}) == NOTHING
    assert NOTHING.to_record() == dict.fromkeys(("commit", "branch", "remote", "dirty"))


@pytest.mark.parametrize(
    "body", [{"commit": 1}, {"branch": b"main"}, {"remote": ["x"]}, {"dirty": 1}, {"dirty": "no"}]
)
def test_record_with_wrong_types(body: dict[str, object]) -> None:
    with pytest.raises(IntegrityError, match="malformed"):
        CodeState.from_record(body)


# -- code patch ----------------------------------------------------------------------


def change_everything(repo: Path) -> None:
    write(repo / "src" / "train.py", "".join(f"line {i * 2}\n" for i in range(60)))
    (repo / "gone.txt").unlink()
    git(repo, "mv", "src/old name.py", "src/new name.py")
    (repo / "unstaged.txt").rename(repo / "moved.txt")
    (repo / "run.sh").chmod(0o755)
    write(repo / "weights.bin", BINARY[::-1] + b"\0more")
    write(repo / "new dir" / "ünïcode name.txt", "héllo\nno newline at end")
    write(repo / "new dir" / "empty", b"")
    write(repo / "a" / "b" / "deep.py", "x = 1\n")
    (repo / "link").symlink_to("README.md")
    write(repo / "train.log", "ignored\n")


USER_CONFIGS = {
    "default": {},
    "hostile": {
        "diff.noprefix": "true",
        "diff.mnemonicPrefix": "true",
        "color.ui": "always",
        "color.diff": "always",
        "diff.external": "false",
        "diff.renames": "copies",
        "diff.relative": "true",
        "core.quotepath": "true",
    },
}


@pytest.mark.parametrize("config", USER_CONFIGS.values(), ids=USER_CONFIGS.keys())
def test_patch_reproduces_the_work_tree(repo: Path, tmp_path: Path, config: dict[str, str]) -> None:
    for key, value in config.items():
        git(repo, "config", key, value)
    change_everything(repo)
    state = capture_code_state(repo / "src")
    assert state.commit is not None
    assert state.dirty is True
    patch = capture_code_patch(state)
    assert patch is not None
    assert patch.untracked == (
        "a/b/deep.py",
        "link",
        "moved.txt",
        "new dir/empty",
        "new dir/ünïcode name.txt",
    )
    assert patch.skipped == ()
    clone = apply_in_clone(repo, state.commit, patch.patch, tmp_path)
    expected = files_of(repo)
    del expected["train.log"]  # ignored files are not the code
    assert files_of(clone) == expected
    assert os.readlink(clone / "link") == "README.md"


def test_skips_binary_and_large_untracked_files(repo: Path, tmp_path: Path) -> None:
    write(repo / "big.txt", "x" * 101)
    write(repo / "fits.txt", "x" * 99 + "\n")
    write(repo / "data.npy", b"\x93NUMPY\0\0")
    git(repo, "init", "-q", "nested")
    state = capture_code_state(repo)
    patch = capture_code_patch(state, max_file_bytes=100)
    assert patch is not None
    assert patch.untracked == ("fits.txt",)
    assert patch.skipped == (
        ("big.txt", "larger than 100 bytes"),
        ("data.npy", "binary"),
        ("nested/", "nested repository"),
    )
    assert state.commit is not None
    clone = apply_in_clone(repo, state.commit, patch.patch, tmp_path)
    assert (clone / "fits.txt").read_bytes() == (repo / "fits.txt").read_bytes()


def test_total_size_limit_drops_untracked_files_first(repo: Path) -> None:
    write(repo / "README.md", "# changed\n")
    for name in ("a.txt", "b.txt", "c.txt"):
        write(repo / name, f"{name}\n" * 5)
    state = capture_code_state(repo)
    whole = capture_code_patch(state)
    assert whole is not None
    assert whole.untracked == ("a.txt", "b.txt", "c.txt")

    limit = len(whole.patch) - 1  # everything but the last file fits
    patch = capture_code_patch(state, max_total_bytes=limit)
    assert patch is not None
    assert patch.untracked == ("a.txt", "b.txt")
    assert patch.skipped == (("c.txt", f"patch larger than {limit} bytes"),)
    assert whole.patch.startswith(patch.patch)

    tiny = capture_code_patch(state, max_total_bytes=10)
    reason = "patch larger than 10 bytes"
    assert tiny == CodePatch(
        b"",
        (),
        ((TRACKED_CHANGES, reason), ("a.txt", reason), ("b.txt", reason), ("c.txt", reason)),
    )


def test_capture_leaves_the_repository_untouched(repo: Path) -> None:
    change_everything(repo)
    # Stale stat data on unchanged files is what makes "git status" and
    # "git diff" rewrite the index when they may.
    for name in ("README.md", ".gitignore"):
        os.utime(repo / name, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = tree_of(repo / ".git")
    state = capture_code_state(repo)
    assert capture_code_patch(state) is not None
    assert tree_of(repo / ".git") == before
    # The check above had something to catch: plain git status does write the index.
    index = repo / ".git" / "index"
    git(repo, "status", "--porcelain")
    assert (index.read_bytes(), index.stat().st_mtime_ns) != before[str(index)]
