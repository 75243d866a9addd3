"""Finding the store a script or command means when it names none.

Order (docs/guide.md): an explicit URL, else ``$ARTIFACTSTORE_URL``, else an
``artifactstore.toml`` (its ``url``, relative to the file) or a
``.artifactstore/`` folder (the store itself) found from the working directory
upward, else the per-user default local store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from artifactstore.core.errors import ConfigurationError

__all__ = [
    "CONFIG_FILE", "DEFAULT_SOURCE", "LOCAL_DIR", "Location", "default_store_url", "discover",
]

CONFIG_FILE = "artifactstore.toml"
LOCAL_DIR = ".artifactstore"
#: ``Location.source`` of the per-user default store (created private on first write)
DEFAULT_SOURCE = "per-user default"


@dataclass(frozen=True, slots=True)
class Location:
    """Where the store is and how it was found (for messages)."""

    url: str
    project: str | None
    source: str


def default_store_url() -> str:
    """The per-user default local store (``$XDG_DATA_HOME/artifactstore/store``)."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return str(base / "artifactstore" / "store")


def discover(url: str | None = None, *, cwd: Path | None = None) -> Location:
    if url:
        return Location(url, None, "argument")
    env = os.environ.get("ARTIFACTSTORE_URL")
    if env:
        return Location(env, os.environ.get("ARTIFACTSTORE_PROJECT"), "ARTIFACTSTORE_URL")
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        config = folder / CONFIG_FILE
        if config.is_file():
            return _from_config(config)
        if (folder / LOCAL_DIR).is_dir():
            return Location(str(folder / LOCAL_DIR), None, str(folder / LOCAL_DIR))
    return Location(default_store_url(), None, DEFAULT_SOURCE)


def _from_config(path: Path) -> Location:
    import tomllib  # here: ~5 ms to import, and most commands find no config file

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}; fix or remove the file") from None
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f'{path} has no url: add a line like url = "s3://bucket/prefix"')
    if "://" not in url and not os.path.isabs(url):
        url = str((path.parent / url).resolve())
    project = data.get("project")
    if project is not None and not isinstance(project, str):
        raise ConfigurationError(f"{path}: project must be a string")
    return Location(url, project, str(path))
