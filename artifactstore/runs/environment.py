"""What a run records about where it ran, and how it names what it saves.

* :func:`environment`: host, user, Python, platform, argv, pid and (optionally) the
  installed packages, for the run's start record (docs/design.md §12).
* :func:`entry_script` and :func:`code_artifact_name`: the script that started the
  process and the name of the ``code`` artifact saved from it.
* :func:`describe_error`: an error as the one line an end record keeps.
"""

from __future__ import annotations

import getpass
import os
import platform
import sys
from pathlib import Path
from typing import Any

__all__ = ["code_artifact_name", "describe_error", "entry_script", "environment"]

#: the longest error message an end record keeps
ERROR_CHARS = 4096


def environment(packages: bool) -> dict[str, Any]:
    """This process's facts; ``packages``: every installed distribution and version
    (importlib.metadata, only then imported: it costs a scan of site-packages)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    env: dict[str, Any] = {
        "host": platform.node() or "localhost",
        "user": user,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "argv": [str(a) for a in sys.argv],
        "pid": os.getpid(),
        "packages": None,
    }
    if packages:
        import importlib.metadata

        found = {(d.metadata["Name"] or "?", d.version) for d in importlib.metadata.distributions()}
        env["packages"] = [list(p) for p in sorted(found, key=lambda p: p[0].lower())]
    return env


def entry_script() -> Path | None:
    """The script ``python script.py`` ran, or None (an interactive session, ``-c``)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if isinstance(path, str) and os.path.isfile(path):
        return Path(path).resolve()
    return None


def code_artifact_name(stem: str) -> str:
    """``code-<stem>``: the script's name made a valid artifact name."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in stem)
    return f"code-{safe.strip('-._') or 'session'}"[:128]


def describe_error(error: BaseException | str) -> str:
    """``Kind: message`` (or the message given), at most :data:`ERROR_CHARS`."""
    if isinstance(error, str):
        return error[:ERROR_CHARS]
    text = str(error)
    return f"{type(error).__name__}: {text}"[:ERROR_CHARS] if text else type(error).__name__
