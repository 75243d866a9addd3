"""The earlier versions of a file kept in git (for DVC's ``.dvc`` files): ``git log`` and
``git show`` run as subprocesses in the repository, oldest commit first."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artifactstore.transfer.foreign.checked import ForeignReport
from artifactstore.transfer.foreign.yamlfiles import parse_yaml

__all__ = ["git_versions"]

_TIMEOUT = 60


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_versions(root: Path, path: str, report: ForeignReport
                 ) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(commit, commit time, parsed YAML)`` of each commit that changed ``path``,
    oldest first; none (and a note in ``report``) outside a git repository."""
    log = _git(root, "log", "--reverse", "--format=%H %cI", "--", path)
    if log is None:
        report.notes.append(f"{root}: no git history to read (not a git repository, or "
                            "git is missing): only the current outputs were imported")
        return
    for line in log.splitlines():
        commit, _, at = line.partition(" ")
        text = _git(root, "show", f"{commit}:{path}")
        if text is None:  # deleted in that commit
            continue
        yield commit, at, parse_yaml(text, f"{path} at git commit {commit[:12]}")
