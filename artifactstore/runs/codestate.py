"""Code state: which code a run ran, read from the user's git work tree.

Vocabulary:

- **code state**: the facts a run records about the user's code: the ``commit``
  (full SHA of ``HEAD``), the ``branch``, the ``remote`` URL and whether the
  work tree is ``dirty``. Every field is ``None`` when it cannot be known: no
  git, not a repository, an unborn ``HEAD``, a detached ``HEAD`` (branch only),
  a git error or a timeout. Capturing never fails a run.
- **code patch**: the bytes that turn a checkout of ``commit`` into the work
  tree as it was: ``git apply`` at the repository root reproduces tracked
  changes (deletions, renames, mode changes, binary files) and untracked,
  non-ignored text files. Untracked files that are binary or too large are
  left out and listed with the reason.

Privacy: by default a run stores only the SHA, branch, remote and dirty flag,
and the remote URL loses any user name and password first
(``https://user:token@host/x`` is stored as ``https://host/x``). File contents
are stored only when the user asks for them (``save_code``), through
:func:`capture_code_patch`. The work tree's local path (``root``) is never
stored.

Capturing must not modify the user's repository: git runs with
``GIT_OPTIONAL_LOCKS=0`` (so ``status`` does not refresh ``.git/index``), the
tracked diff comes from the plumbing ``diff-index`` (porcelain ``git diff``
rewrites the index when it finds stale stat data), and nothing is added or
hashed into the object database.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from artifactstore.core.errors import IntegrityError

__all__ = ["CodePatch", "CodeState", "capture_code_patch", "capture_code_state", "git_output"]

GIT_TIMEOUT: Final = 30.0  # seconds per git call
TRACKED_CHANGES: Final = "<tracked changes>"  # the ``skipped`` entry for the tracked diff
_SNIFF_BYTES: Final = 8192  # a NUL byte in this prefix makes a file binary, as git decides
# Why: the patch must apply whatever the user configured: no color codes, no external
# diff tool or textconv output, and the a/ b/ prefixes git apply expects even with
# diff.noprefix or diff.mnemonicPrefix set.
_DIFF_FLAGS: Final = (
    "--binary",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CodeState:
    """The state of the user's code; see the module docstring for each field."""

    commit: str | None  # full hex SHA of HEAD
    branch: str | None  # None when detached
    remote: str | None  # URL without credentials
    dirty: bool | None  # tracked changes or untracked, non-ignored files
    root: str | None  # absolute path of the work tree's top level; never stored

    @property
    def captured(self) -> bool:
        """Whether a commit was found (a repository with at least one commit)."""
        return self.commit is not None

    def to_record(self) -> dict[str, Any]:
        """The stored form: commit, branch, remote, dirty (not the local ``root``)."""
        return {
            "commit": self.commit,
            "branch": self.branch,
            "remote": self.remote,
            "dirty": self.dirty,
        }

    @classmethod
    def from_record(cls, body: Mapping[str, Any]) -> CodeState:
        """Read a stored code state; missing keys are None, wrong types IntegrityError."""
        if not isinstance(body, Mapping):
            raise IntegrityError(f"code state is malformed: {type(body).__name__}, not a map")
        return cls(
            commit=_field(body, "commit", str),
            branch=_field(body, "branch", str),
            remote=_field(body, "remote", str),
            dirty=_field(body, "dirty", bool),
            root=None,
        )


def _field(body: Mapping[str, Any], name: str, kind: type[_T]) -> _T | None:
    value = body.get(name)
    if value is not None and type(value) is not kind:
        raise IntegrityError(
            f"code state is malformed: field {name!r} is {type(value).__name__}, "
            f"expected {kind.__name__} or nil"
        )
    return value


@dataclass(frozen=True, slots=True)
class CodePatch:
    """Work-tree changes against ``CodeState.commit``, for ``git apply`` at the root."""

    patch: bytes  # tracked diff, then one diff per included untracked file
    untracked: tuple[str, ...]  # untracked files in the patch: repo-relative, sorted
    skipped: tuple[tuple[str, str], ...]  # (path or TRACKED_CHANGES, reason) left out


def _git(
    cwd: str | os.PathLike[str] | None, *args: str, ok: tuple[int, ...] = (0,)
) -> bytes | None:
    """Run git; its stdout, or None if git is missing, fails or times out."""
    env = {**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # not installed, bad cwd, timeout
        return None
    return done.stdout if done.returncode in ok else None


def git_output(cwd: str | os.PathLike[str] | None, *args: str) -> bytes | None:
    """The stdout of ``git *args`` run in ``cwd`` under the rules above (no locks, no
    prompt, C locale), or None when git is missing, fails or times out."""
    return _git(cwd, *args)


#: the flags that make ``git diff`` output plain, applicable patches (see _DIFF_FLAGS)
DIFF_FLAGS: Final = _DIFF_FLAGS


def _line(output: bytes | None) -> str | None:
    """The one line of text a git command printed, or None."""
    if not output:
        return None
    return os.fsdecode(output.removesuffix(b"\n")) or None


def capture_code_state(cwd: str | os.PathLike[str] | None = None) -> CodeState:
    """The code state of the work tree holding ``cwd`` (default: the current directory).

    Never raises for a missing git, a directory outside any repository, an unborn
    ``HEAD``, git errors or timeouts: the unknown fields are None.
    """
    root = _line(_git(cwd, "rev-parse", "--show-toplevel"))
    if root is None:
        return CodeState(commit=None, branch=None, remote=None, dirty=None, root=None)
    commit = _line(_git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"))
    ref = _line(_git(root, "symbolic-ref", "--quiet", "HEAD"))
    branch = ref.removeprefix("refs/heads/") if ref and ref.startswith("refs/heads/") else None
    status = _git(root, "status", "--porcelain", "-z", "--untracked-files=normal", "--no-renames")
    return CodeState(
        commit=commit,
        branch=branch,
        remote=_remote_url(root, branch),
        dirty=None if status is None else bool(status),
        root=root,
    )


def _remote_url(root: str, branch: str | None) -> str | None:
    """The URL of the branch's remote, else "origin", else the first remote."""
    names = os.fsdecode(_git(root, "remote") or b"").splitlines()
    if not names:
        return None
    upstream = _line(_git(root, "config", "--get", f"branch.{branch}.remote")) if branch else None
    name = upstream if upstream in names else "origin" if "origin" in names else names[0]
    url = _line(_git(root, "config", "--get", f"remote.{name}.url"))
    return None if url is None else _without_credentials(url)


def _without_credentials(url: str) -> str:
    """``url`` without the user info of ``scheme://user:password@host/...``.

    Why: remotes often embed access tokens and run records are shared; over
    http(s) a bare user name is often the token itself, so all user info goes.
    An ssh user name (``ssh://git@host/x``) is kept: it is not a secret.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url  # a path or scp-like "git@host:path", which cannot carry a password
    ends = [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0]
    end = min(ends, default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    keep = f"{user}@" if user and "ssh" in scheme.lower() else ""
    return f"{scheme}://{keep}{host}{rest[end:]}"


def capture_code_patch(
    state: CodeState, *, max_file_bytes: int = 1 << 20, max_total_bytes: int = 16 << 20
) -> CodePatch | None:
    """The patch from ``state.commit`` to the work tree as it is now.

    None when ``state`` is not captured, or git fails to diff or list the changes.
    Untracked files are left out when binary or larger than ``max_file_bytes``;
    past ``max_total_bytes`` the tracked diff is kept if it fits and untracked
    files, in sorted order, are left out as needed. A tracked diff that does not
    fit leaves the patch empty.
    """
    if state.commit is None or state.root is None:
        return None
    root = state.root
    tracked = _git(root, "diff-index", "-p", "-M", *_DIFF_FLAGS, state.commit, "--")
    listing = _git(root, "ls-files", "--others", "--exclude-standard", "-z")
    if tracked is None or listing is None:
        return None
    too_big = f"patch larger than {max_total_bytes} bytes"
    skipped: list[tuple[str, str]] = []
    budget = max_total_bytes - len(tracked)
    if budget < 0:
        skipped.append((TRACKED_CHANGES, too_big))
        tracked, budget = b"", -1  # no untracked file fits either
    parts, included = [tracked], []
    for path in sorted(os.fsdecode(name) for name in listing.split(b"\0") if name):
        found = _untracked_diff(root, path, max_file_bytes, budget, too_big)
        if isinstance(found, str):
            skipped.append((path, found))
        else:
            parts.append(found)
            included.append(path)
            budget -= len(found)
    return CodePatch(b"".join(parts), tuple(included), tuple(skipped))


def _untracked_diff(
    root: str, path: str, max_file_bytes: int, budget: int, too_big: str
) -> bytes | str:
    """The diff that creates untracked ``path``, or the reason to leave it out."""
    if path.endswith("/"):
        return "nested repository"  # ls-files lists a repository inside the tree as "dir/"
    full = os.path.join(root, path)
    try:
        info = os.lstat(full)
        if stat.S_ISREG(info.st_mode):
            if info.st_size > max_file_bytes:
                return f"larger than {max_file_bytes} bytes"
            with open(full, "rb") as file:
                if b"\0" in file.read(_SNIFF_BYTES):
                    return "binary"
        elif not stat.S_ISLNK(info.st_mode):  # git stores a symlink's target, a short text
            return "not a regular file"
    except OSError:
        return "unreadable"
    if info.st_size > budget:  # a diff is never smaller than the file it creates
        return too_big
    # Exit code 1 means "there are differences": the normal case here.
    diff = _git(root, "diff", "--no-index", *_DIFF_FLAGS, "--", "/dev/null", path, ok=(1,))
    if diff is None:
        return "unreadable"
    return too_big if len(diff) > budget else diff
