"""What every benchmark of bench/ says about the machine it ran on: CPU, cores, memory,
OS, Python, the versions of the packages it names, and the commit of the artifactstore
being measured (``git describe``; None outside a checkout)."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import artifactstore

__all__ = ["git_describe", "machine_facts"]


def git_describe() -> str | None:
    """The commit of the artifactstore package being measured (``--dirty`` if edited)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"],
                             cwd=Path(artifactstore.__file__).parent, capture_output=True,
                             text=True, check=False).stdout.strip()
    except OSError:
        return None
    return out or None


def _proc(name: str) -> str:
    try:
        return Path("/proc", name).read_text()
    except OSError:
        return ""  # not Linux: the facts say "unknown"


def machine_facts(packages: Iterable[str]) -> dict[str, Any]:
    """The machine and the versions of ``packages`` ("not installed" when absent)."""
    cpuinfo = _proc("cpuinfo").splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo
                if line.startswith("model name")), "unknown")
    ram = next((int(line.split()[1]) * 1024 for line in _proc("meminfo").splitlines()
                if line.startswith("MemTotal:")), 0)
    versions = {}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(ram / (1 << 30), 1),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "packages": versions,
            "git": git_describe()}
