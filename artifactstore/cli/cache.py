"""Commands over the local caches: cache info, cache clean (file contents, and with
``--metadata`` the rebuildable metadata of stores: local/metadata.py)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from artifactstore.cli._common import add_action, say
from artifactstore.core.errors import InvalidInputError
from artifactstore.core.sizes import human_size

if TYPE_CHECKING:  # imported by the commands that use them (cli/main.py, start-up)
    from artifactstore.local.filecache import CacheInfo
    from artifactstore.local.metadata import MetadataUsage


def parse_size(text: str) -> int:
    """``--keep``'s type (local.filecache's, imported when a command uses it)."""
    from artifactstore.local.filecache import parse_size

    return parse_size(text)


def _describe(info: CacheInfo) -> dict[str, Any]:
    return {"root": str(info.root), "entries": info.entries, "bytes": info.bytes,
            "max_bytes": info.max_bytes}


def _metadata(usage: MetadataUsage) -> dict[str, Any]:
    return {kind: {"bytes": usage.bytes[kind], "files": usage.files[kind],
                   "stores": usage.stores[kind]} for kind in usage.bytes}


def cache_info(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.local.filecache import FileCache
    from artifactstore.local.metadata import metadata_usage
    from artifactstore.objects.store import default_cache_dir

    info = FileCache().info()
    usage = metadata_usage(default_cache_dir())
    say(args, f"{info.root}: {info.entries} files, {human_size(info.bytes)} "
              f"of {human_size(info.max_bytes)}")
    say(args, "metadata: " + ", ".join(f"{kind} {human_size(usage.bytes[kind])}"
                                       for kind in usage.bytes)
              + " ('cache clean --metadata' removes all but known)")
    return {**_describe(info), "metadata": _metadata(usage)}


def cache_clean(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.local.filecache import FileCache
    from artifactstore.local.metadata import METADATA_KINDS, clean_metadata
    from artifactstore.maintenance.lifecycle import parse_duration
    from artifactstore.objects.store import default_cache_dir

    keep = getattr(args, "keep", None) or 0
    cache = FileCache()
    before = cache.info()
    after = cache.clean(keep_bytes=keep)
    # Other processes may insert meanwhile; never report negative removals.
    removed, freed = max(0, before.entries - after.entries), max(0, before.bytes - after.bytes)
    say(args, f"removed {removed} files ({human_size(freed)}); {after.entries} files, "
              f"{human_size(after.bytes)} remain in {after.root}")
    result = {**_describe(after), "removed_entries": removed, "removed_bytes": freed}
    unused_for = getattr(args, "unused_for", None)
    if getattr(args, "metadata", False):
        unused = None if unused_for is None else parse_duration(unused_for)
        gone = clean_metadata(default_cache_dir(), unused_for=unused)
        say(args, f"removed the metadata of {max(gone.stores.values(), default=0)} store(s) "
                  f"({human_size(gone.total)}): " + ", ".join(METADATA_KINDS)
                  + "; it is rebuilt from the store when needed")
        result["removed_metadata"] = _metadata(gone)
    elif unused_for is not None:
        raise InvalidInputError("--unused-for goes with --metadata")
    return result


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
    a.add_argument("--metadata", action="store_true",
                   help="also remove the stores' local metadata (refs, index, catalog, stat; "
                        "rebuilt from the store when needed; pins and high-water marks are "
                        "kept) (default: off)")
    a.add_argument("--unused-for", default=None, metavar="DURATION",
                   help="with --metadata, only that of stores unused this long, e.g. 30d "
                        "(default: every store's)")
