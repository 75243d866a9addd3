"""Staging folders: a whole version is downloaded into a new folder beside its target,
which is renamed to the target at the end (the target appears complete or not at all).

A staging folder is named ``<TEMP_MARK><pid>-<random>-<target name>`` next to the
target; one left by a killed or failed download (its process gone, or this process no
longer writing it) is taken over by the next download into the same target, its files
checked like those of a folder written in place. Temp files of a download in place
carry the writer's pid too (:func:`remove_abandoned_temps`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

from artifactstore.core.errors import ConflictError
from artifactstore.core.localproc import process_exists

__all__ = ["TEMP_MARK", "publish", "release_stage", "remove_abandoned_temps",
           "staging_folder"]

TEMP_MARK = ".artifactstore-tmp-"
#: staging folders this process is writing (others of its pid were left by a failure)
_ACTIVE_STAGES: set[Path] = set()
_STAGES_LOCK = threading.Lock()


def staging_folder(root: Path) -> tuple[Path, bool] | None:
    """A staging folder for a whole download into ``root`` and whether it is fresh
    (empty, ours); None where ``root`` holds files (write in place, file by file).

    A staging folder a killed or failed download left for the same ``root`` (its
    process is gone, or it is this one and no longer uses it) is taken over, not
    fresh: its files are checked like those of a folder in place.
    """
    if os.path.islink(root) or (root.exists() and (not root.is_dir() or any(root.iterdir()))):
        return None
    root = root.resolve()
    parent = root.parent
    if root == parent:
        return None  # the file system's root
    parent.mkdir(parents=True, exist_ok=True)
    if root.exists():
        cwd = Path.cwd().resolve()
        if root == cwd or root in cwd.parents:
            return None  # replacing the working folder would strand its users
        if os.path.ismount(root) or root.stat().st_dev != parent.stat().st_dev:
            return None  # an empty mount point: a rename cannot replace it
    stage = parent / f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}-{root.name}"
    if len(stage.name) > 255:
        return None
    with _STAGES_LOCK:
        for left in parent.glob(f"{TEMP_MARK}*"):
            if _abandoned_stage(left, root.name):
                try:
                    left.rename(stage)
                except OSError:
                    continue  # another download took it over first
                _ACTIVE_STAGES.add(stage)
                return stage, False
        try:
            stage.mkdir()
        except OSError:
            return None  # no write access beside ``root``: write in place
        _ACTIVE_STAGES.add(stage)
    return stage, True


def _abandoned_stage(folder: Path, name: str) -> bool:
    pid_text, _, rest = folder.name[len(TEMP_MARK):].partition("-")
    if rest.partition("-")[2] != name or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        if folder in _ACTIVE_STAGES:
            return False
    elif process_exists(pid):
        return False
    return folder.is_dir() and not folder.is_symlink()


def publish(stage: Path, root: Path) -> None:
    """Rename the finished staging folder to ``root`` (which is absent or empty)."""
    with contextlib.suppress(OSError):
        stage.chmod(root.stat().st_mode & 0o7777)  # an empty root the user made
    try:
        os.rename(stage, root)
    except OSError as exc:
        raise ConflictError(
            f"{root} was filled by someone else during the download ({exc.strerror}); "
            f"the downloaded files are in {stage}: move them or download again"
        ) from None


def release_stage(stage: Path) -> None:
    """This process no longer writes ``stage`` (published, or left for a next try)."""
    with _STAGES_LOCK:
        _ACTIVE_STAGES.discard(stage)


def remove_abandoned_temps(folder: Path) -> None:
    """Delete temp files left by a download that was killed (its process is gone).

    Temp names carry the writer's pid, so a download still running in another
    process keeps its file.
    """
    for temp in folder.glob(f"{TEMP_MARK}*"):
        pid_text = temp.name[len(TEMP_MARK):].split("-", 1)[0]
        if pid_text.isdigit() and not process_exists(int(pid_text)):
            with contextlib.suppress(OSError):
                temp.unlink()
