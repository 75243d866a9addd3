"""System tools the tests need, installed with apt-get when missing (Debian, as root).

The test set-up installs what a test needs instead of skipping it (the team's rule):
Debian's ``chromium`` for the browser tests, ``graphviz`` for the DOT exports. A
machine that is not a root Debian one gets :class:`ToolUnavailable` with the line to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Final

__all__ = ["APT_TIMEOUT", "ToolUnavailable", "ensure_tool"]

APT_TIMEOUT: Final = 1800.0  # seconds: a first Chromium install downloads ~100 MB


class ToolUnavailable(RuntimeError):
    """The tool could not be found or installed here; the message says why."""


def ensure_tool(names: Sequence[str], package: str, *, install: bool = True) -> str:
    """The path of the first of ``names`` on PATH; when none is, ``package`` is installed
    with apt-get (root only) and looked for again."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if not install:
        raise ToolUnavailable(f"{names[0]} is not installed: apt-get install -y {package}")
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolUnavailable(f"{names[0]} is not installed and this is not a root Debian "
                              f"machine: install the '{package}' package first")
    # Why the lock timeout: another session or test process may be installing too.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run([*apt, "install", package], env=env, capture_output=True, text=True,
                          check=False, timeout=APT_TIMEOUT)
    if done.returncode != 0:  # the package lists may be missing or stale: update, retry
        subprocess.run([*apt, "update"], env=env, capture_output=True, check=False,
                       timeout=APT_TIMEOUT)
        done = subprocess.run([*apt, "install", package], env=env, capture_output=True,
                              text=True, check=False, timeout=APT_TIMEOUT)
    for name in names:
        found = shutil.which(name)
        if done.returncode == 0 and found:
            return found
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    raise ToolUnavailable(f"apt-get install {package} failed: {tail[0]}")
