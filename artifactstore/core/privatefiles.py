"""Folders and files on this machine that only their user may read (docs/security.md).

Vocabulary: a **private folder** is mode 0700 and a **private file** 0600 (or
0400 for an entry that is read-only by design), whatever the umask. Everything
artifactstore keeps under the user's cache, state and config locations is
private: file cache entries, stat cache, catalog (with SQLite's ``-wal`` and
``-shm``), copies of records, index caches, and what the client knows of a store
(``known/``). Why: file names, artifact names and contents of private projects
are in there in plaintext, and a shared machine's default umask (022) would let
every other user read them.

A folder this module creates, at any depth, is created private; an existing one
between the caller's ``root`` and the folder asked for is tightened (group and
other bits removed) when it belongs to this user, so that caches made by older
versions become private the next time they are opened.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = [
    "CONFIG_DIR_ENV", "FILE_MODE", "FOLDER_MODE", "config_dir", "private_file", "private_folder",
    "tighten", "write_private_file",
]

CONFIG_DIR_ENV = "ARTIFACTSTORE_CONFIG_DIR"
FOLDER_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = 0o077


def config_dir() -> Path:
    """The per-user config folder: ``$ARTIFACTSTORE_CONFIG_DIR``, else
    ``$XDG_CONFIG_HOME/artifactstore``, else ``~/.config/artifactstore``. It holds the
    user's identity (``local/identity.py``) and team-server tokens (``backends/credentials.py``)."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "artifactstore"


def private_folder(folder: Path, *, root: Path | None = None) -> Path:
    """Make ``folder`` (and any missing parent) a private folder; returns it.

    Folders from ``root`` (default: ``folder`` itself) down to ``folder`` that
    already exist are tightened. Raises ``OSError`` when one cannot be made.
    """
    missing: list[Path] = []
    at = folder
    while not at.is_dir():
        missing.append(at)
        if at.parent == at:
            break
        at = at.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent creator: tightened below
            path.mkdir(mode=FOLDER_MODE)
        os.chmod(path, FOLDER_MODE)  # mkdir's mode is filtered through the umask
    chain = [folder]
    if root is not None and root in folder.parents:  # never above root: /tmp is not ours
        chain += folder.parents[: folder.parents.index(root) + 1]
    for path in chain:
        tighten(path)
    return folder


def private_file(path: Path) -> Path:
    """Create the empty file ``path`` if missing, private; tighten it if it exists.

    For files another library creates and writes (SQLite): created first with
    0600, it keeps that mode, and SQLite gives its ``-wal`` and ``-shm`` the mode
    of the database file.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        _tighten_fd(fd)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(Path(f"{path}{suffix}"))
    return path


def write_private_file(path: Path, data: bytes, *, root: Path | None = None) -> None:
    """Replace ``path`` with ``data`` atomically, as a private file in a private folder
    (made from ``root`` down, see :func:`private_folder`). Raises ``OSError``."""
    private_folder(path.parent, root=root)
    # mkstemp creates 0600 with O_EXCL: never readable by others, not even briefly.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def tighten(path: Path) -> None:
    """Remove group and other bits from ``path`` if this user owns it (absent: nothing).

    A folder tightened keeps everything below it private, whatever their modes."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return
    if st.st_mode & _OTHERS and st.st_uid == os.geteuid():
        with contextlib.suppress(OSError):  # read-only media: nothing to protect there
            os.chmod(path, st.st_mode & 0o7700, follow_symlinks=False)


def _tighten_fd(fd: int) -> None:
    st = os.fstat(fd)
    if st.st_mode & _OTHERS and st.st_uid == os.geteuid():
        os.fchmod(fd, st.st_mode & 0o7700)
