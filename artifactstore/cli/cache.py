"""Commands over the local file cache: cache info, cache clean."""

from __future__ import annotations

import argparse
from typing import Any

from artifactstore.cli._common import add_action, say
from artifactstore.core.sizes import human_size
from artifactstore.local.filecache import CacheInfo, FileCache, parse_size


def _describe(info: CacheInfo) -> dict[str, Any]:
    return {"root": str(info.root), "entries": info.entries, "bytes": info.bytes,
            "max_bytes": info.max_bytes}


def cache_info(args: argparse.Namespace) -> dict[str, Any]:
    info = FileCache().info()
    say(args, f"{info.root}: {info.entries} files, {human_size(info.bytes)} "
              f"of {human_size(info.max_bytes)}")
    return _describe(info)


def cache_clean(args: argparse.Namespace) -> dict[str, Any]:
    keep = getattr(args, "keep", None) or 0
    cache = FileCache()
    before = cache.info()
    after = cache.clean(keep_bytes=keep)
    # Other processes may insert meanwhile; never report negative removals.
    removed, freed = max(0, before.entries - after.entries), max(0, before.bytes - after.bytes)
    say(args, f"removed {removed} files ({human_size(freed)}); {after.entries} files, "
              f"{human_size(after.bytes)} remain in {after.root}")
    return {**_describe(after), "removed_entries": removed, "removed_bytes": freed}


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``cache`` command; ``add(name, handler, help)`` returns a subparser and
    ``common`` holds the global options every subcommand accepts."""
    p = add("cache", None, "show or shrink the local cache of downloaded files")
    cache = p.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    add_action(cache, common, "info", cache_info, "where the cache is and what it holds")
    a = add_action(cache, common, "clean", cache_clean,
                   "remove least-recently-used files until at most --keep remain")
    a.add_argument("--keep", type=parse_size, default=None, metavar="BYTES",
                   help="bytes to keep, e.g. 2G (default 0: empty the cache)")
