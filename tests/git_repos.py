"""Real git repositories in tmp for the code-capture tests, isolated from the machine.

The machine's and user's git config never apply (``GIT_CONFIG_GLOBAL`` empty, no
system file) and commits get a fixed author, so results do not depend on who runs
the suite.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def isolate_git(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for who in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{who}_NAME", "t")
        monkeypatch.setenv(f"{who}_EMAIL", "t@example.com")


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; its stdout, stripped (raises on failure)."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def committed_repo(path: Path, files: dict[str, str]) -> Path:
    """A repository at ``path`` on branch main with ``files`` in one commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path
