"""What this machine keeps about stores besides file contents, and how it is cleaned.

Under the cache folder (``$ARTIFACTSTORE_CACHE_DIR``, else ``~/.cache/artifactstore``)
each kind of local metadata has a folder with one sub-folder per store
(``<store id>-<location hash>``):

- ``refs``: copies of create-only records (project records, members, key epochs, the
  head version records), so a re-log reads them from disk;
- ``index``: the store's index objects, so opening a store does not fetch them again;
- ``catalog``: the SQLite catalog of versions, aliases and runs that queries read;
- ``stat``: the stat cache that lets unchanged files be re-logged without reading them.

All four are rebuilt from the store when missing, so they may be removed at any time
(a process using one keeps its open files; the next one rebuilds): ``artifactstore
cache clean --metadata`` removes them, all or those of stores unused for a while.
``known`` (pins and high-water marks: what this machine saw, the memory that detects a
rolled-back or replaced store) is never removed by cleaning; it is a few hundred bytes
per store and project.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["METADATA_KINDS", "MetadataUsage", "clean_metadata", "metadata_usage"]

#: the rebuildable kinds, each a folder of per-store folders under the cache root
METADATA_KINDS: Final = ("refs", "index", "catalog", "stat")


@dataclass(frozen=True, slots=True)
class MetadataUsage:
    """Bytes, files and per-store folders of each kind (``known`` counted, never cleaned)."""

    bytes: dict[str, int]
    files: dict[str, int]
    stores: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.bytes.values())


def _walk(folder: Path) -> tuple[int, int, float]:
    """Bytes, files and the newest modification time under ``folder``."""
    size = count = 0
    newest = 0.0
    for base, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(base, name))
                size += st.st_size
                count += 1
                newest = max(newest, st.st_mtime)
    return size, count, newest


def _stores(root: Path, kind: str) -> list[Path]:
    try:
        return sorted(p for p in (root / kind).iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


def metadata_usage(root: Path) -> MetadataUsage:
    """What the metadata under the cache folder ``root`` takes, by kind."""
    sizes: dict[str, int] = {}
    files: dict[str, int] = {}
    stores: dict[str, int] = {}
    for kind in (*METADATA_KINDS, "known"):
        folders = _stores(root, kind)
        walked = [_walk(folder) for folder in folders]
        sizes[kind] = sum(w[0] for w in walked)
        files[kind] = sum(w[1] for w in walked)
        stores[kind] = len(folders)
    return MetadataUsage(sizes, files, stores)


def clean_metadata(root: Path, *, unused_for: float | None = None,
                   now: float | None = None) -> MetadataUsage:
    """Remove the rebuildable metadata under ``root``: every store's, or with
    ``unused_for`` (seconds) only the per-store folders nothing under has changed in
    that long. ``known`` stays. Returns what was removed (folders that vanish or
    cannot be removed meanwhile are skipped)."""
    moment = time.time() if now is None else now
    sizes = dict.fromkeys(METADATA_KINDS, 0)
    files = dict.fromkeys(METADATA_KINDS, 0)
    stores = dict.fromkeys(METADATA_KINDS, 0)
    for kind in METADATA_KINDS:
        for folder in _stores(root, kind):
            size, count, newest = _walk(folder)
            if unused_for is not None and moment - newest < unused_for:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                sizes[kind] += size
                files[kind] += count
                stores[kind] += 1
    return MetadataUsage(sizes, files, stores)
