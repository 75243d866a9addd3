"""One small function per command: call the library, print for people, return for --json."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from artifactstore.cli._common import MiB, say

if TYPE_CHECKING:  # each command imports what it uses (cli/main.py: start-up)
    from artifactstore.demo.tour import DemoStep


def init(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.backends import open_backend_stack
    from artifactstore.objects.config import StoreConfig, create_or_load
    from artifactstore.repository.access import PRIVATE_BY_DEFAULT
    from artifactstore.repository.opening import resolve_url

    url = resolve_url(args.url or args.store)
    features = () if args.public else (PRIVATE_BY_DEFAULT,)
    backend = open_backend_stack(url, create=True)
    try:
        c, created = create_or_load(backend, StoreConfig.new(optional_features=features))
    finally:
        backend.close()
    private = PRIVATE_BY_DEFAULT in c.optional_features
    mode = ("new projects are private (encrypted) by default" if private
            else "new projects are public by default")
    say(args, f"{'created' if created else 'existing (not changed):'} store {url}\n"
              f"  id {c.store_id}, format {c.format}, created {c.created_at}\n  {mode}")
    return {"url": url, "store_id": c.store_id, "format": c.format, "created": created,
            "private_by_default": private}


def info(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.repository.access import PRIVATE_BY_DEFAULT
    from artifactstore.repository.opening import open_objects, resolve_url

    url = resolve_url(args.store)
    store = open_objects(url)
    index = store.index
    c = store.config
    result = {
        "url": url, "store_id": c.store_id, "format": c.format, "created_at": c.created_at,
        "chunker": c.chunker.to_dict(), "pack_target": c.pack_target,
        "compression": c.compression.to_dict(),
        "private_by_default": PRIVATE_BY_DEFAULT in c.optional_features,
        "packs": len(index.packs), "blobs": len(index),
    }
    store.close()
    say(args, "\n".join(f"{k:18} {v}" for k, v in result.items()))
    return result


def demo(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.demo.tour import run_demo

    def show(step: DemoStep) -> None:
        stored = f"stored {step.stored / MiB:6.1f} MiB" if step.size else " " * 18
        say(args, f"  {step.what:38} {stored}  {step.seconds:5.2f} s  {step.detail}")

    say(args, "artifactstore demo: log, version, alias, get, verify")
    result = run_demo(args.store, dataset_mib=args.dataset_mib, model_mib=args.model_mib,
                      report=show)
    logical = int(result["logical_bytes"])  # type: ignore[call-overload]
    stored = int(result["stored_bytes"])  # type: ignore[call-overload]
    say(args, f"  versions: {result['versions']}")
    say(args, f"  {logical / MiB:.0f} MiB logged, {stored / MiB:.1f} MiB stored "
              f"(deduplication and compression saved {1 - stored / logical:.0%})")
    return result
