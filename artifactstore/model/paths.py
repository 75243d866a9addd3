"""Paths of files inside an artifact (docs/design.md, "Trees").

Vocabulary: a *path* is a relative POSIX path such as ``images/cat.jpg``; its
*segments* (or *names*) are the parts between slashes. Paths are checked when a
tree is built and again when one is read, because they are later joined onto a
user's download folder: a ``..`` segment or an absolute path would write outside
it, and a backslash or NUL means different things to different filesystems.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from artifactstore.core.errors import InvalidInputError

__all__ = [
    "MAX_NAME_BYTES", "MAX_PATH_BYTES", "PathGuard", "join_under", "name_problem", "path_key",
    "validate_path",
]

MAX_PATH_BYTES: Final = 4096
"""Longest path, in UTF-8 bytes (Linux PATH_MAX)."""

MAX_NAME_BYTES: Final = 255
"""Longest segment, in UTF-8 bytes (NAME_MAX of ext4, APFS, NTFS)."""


def _shown(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 100 else shown[:97] + "..."


def name_problem(name: str) -> str | None:
    """The rule one path segment breaks, or None if it is a valid name.

    Tree readers use this on every name they decode, so a damaged or hostile
    node cannot smuggle ``..`` or a ``/`` into a path.
    """
    if not name:
        return "empty segments ('a//b', a leading or trailing '/') are not allowed"
    if name in (".", ".."):
        return "'.' and '..' segments are not allowed (a download would leave its folder)"
    if "/" in name:
        return "a name cannot contain '/'"
    if "\\" in name:
        return "backslashes are not allowed (a path separator on Windows)"
    if "\x00" in name:
        return "NUL characters are not allowed"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "a path must be valid UTF-8 (it holds a lone surrogate)"
    if size > MAX_NAME_BYTES:
        return f"a segment is {size} bytes of UTF-8, over the {MAX_NAME_BYTES}-byte limit"
    return None


def validate_path(path: str) -> str:
    """Return ``path`` unchanged if it is a valid relative POSIX path in an artifact.

    Refused (InvalidInputError naming the path and the rule): empty paths,
    absolute paths, ``.`` and ``..`` segments, empty segments (``a//b``, a
    trailing ``/``), NUL, backslashes, more than :data:`MAX_PATH_BYTES` bytes
    of UTF-8, a segment over :data:`MAX_NAME_BYTES` bytes.
    """
    # Why so strict: these paths are joined onto download folders, so '..' or an
    # absolute path would write outside them; the checks hold on every OS.
    if type(path) is not str:
        raise InvalidInputError(f"a path in an artifact is a str, not {type(path).__name__}")
    if not path:
        raise InvalidInputError("a path in an artifact cannot be empty")
    if path.startswith("/"):
        raise InvalidInputError(
            f"path {_shown(path)} is absolute: paths in an artifact are relative "
            "(a download would write outside its folder)"
        )
    for name in path.split("/"):
        problem = name_problem(name)
        if problem is not None:
            raise InvalidInputError(f"path {_shown(path)} is not allowed: {problem}")
    size = len(path.encode("utf-8"))  # every segment encoded above
    if size > MAX_PATH_BYTES:
        raise InvalidInputError(
            f"path {_shown(path)} is {size} bytes of UTF-8, over the {MAX_PATH_BYTES}-byte limit"
        )
    return path


class PathGuard:
    """:func:`join_under` for many paths under one ``root``: the root and each parent
    folder are resolved once (a restore of 20,000 files in 100 folders resolves 100
    folders, not 20,000 paths)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._base = root.resolve()
        self._checked: set[Path] = set()

    def join(self, path: str, *, created_here: bool = False) -> Path:
        """``root / path``, checked; ``created_here``: every folder under the root was
        made by the caller, which opens files with O_EXCL|O_NOFOLLOW, so no link can
        be in the way and the target itself needs no look."""
        validate_path(path)
        target = self._root / path
        parent = target.parent
        if parent not in self._checked:
            if not parent.resolve().is_relative_to(self._base):
                raise InvalidInputError(
                    f"path {_shown(path)} leads outside {str(self._root)!r} through a "
                    "symbolic link on disk: remove the link or download to another folder"
                )
            self._checked.add(parent)
        if created_here:
            return target
        if os.path.islink(target) and not target.resolve().is_relative_to(self._base):
            raise InvalidInputError(
                f"{str(target)!r} is a symbolic link to outside {str(self._root)!r}: "
                "remove the link or download to another folder"
            )
        return target

    def forget(self, folder: Path) -> None:
        """``folder`` was just created (or changed): resolve it again next time."""
        self._checked.discard(folder)


def join_under(root: Path, path: str) -> Path:
    """``root / path`` for a valid ``path``, refusing to leave ``root`` through a symlink.

    A symlinked directory already on disk (``root/data -> /etc``) would make a
    valid path like ``data/passwd`` write outside ``root``, so the target's
    parent directory is resolved and must lie within the resolved ``root``; a
    target that is itself a symlink must resolve within ``root`` too.
    """
    validate_path(path)
    target = root / path
    base = root.resolve()
    if not target.parent.resolve().is_relative_to(base):
        raise InvalidInputError(
            f"path {_shown(path)} leads outside {str(root)!r} through a symbolic link "
            "on disk: remove the link or download to another folder"
        )
    if target.is_symlink() and not target.resolve().is_relative_to(base):
        raise InvalidInputError(
            f"{str(target)!r} is a symbolic link to outside {str(root)!r}: "
            "remove the link or download to another folder"
        )
    return target


def path_key(path: str) -> list[str]:
    """Sort key of path order (str order of segments is their UTF-8 byte order)."""
    return path.split("/")
