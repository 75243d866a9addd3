"""Golden stores: frozen stores under ``tests/data/`` that every later version must read.

A maker script writes files into a new store and records each file's reference (digest,
size, chunk ids and lengths) in a JSON manifest beside it; the tests read the manifest
back and check that the store still returns those exact bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from artifactstore.core.digest import Digest
from artifactstore.objects.blobrefs import ChunkRef, FileRef
from artifactstore.objects.packs import read_trailer
from artifactstore.objects.store import ObjectStore

__all__ = ["blob_envelopes", "read_file_refs", "write_files"]


def write_files(store: ObjectStore, files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """Write each file into ``store``; the manifest entries of their references."""
    refs = {}
    for name, data in files.items():
        ref = store.write_bytes(data)
        refs[name] = {"digest": ref.digest.hex, "size": ref.size,
                      "chunks": [[c.id.hex, c.length] for c in ref.chunks]}
    return refs


def read_file_refs(manifest: Path) -> dict[str, FileRef]:
    """The file references a maker recorded in ``manifest`` (its ``files`` map)."""
    files = json.loads(manifest.read_text())["files"]
    return {name: FileRef(Digest.from_hex(f["digest"]), f["size"],
                          tuple(ChunkRef(Digest.from_hex(c), n) for c, n in f["chunks"]))
            for name, f in files.items()}


def blob_envelopes(root: Path) -> dict[bytes, bytes]:
    """Every blob's envelope in the plain domain of the local store at ``root``, by blob
    id: how a writer's output is compared with a golden store's (where a pack is cut is
    the writer's choice, design §5, so packs are compared blob by blob)."""
    blobs = {}
    for pack in (root / "objects" / "plain" / "packs").glob("*/*"):
        data = pack.read_bytes()
        for entry in read_trailer(data, what=pack.name):
            blobs[entry.id.raw] = data[entry.offset : entry.offset + entry.length]
    return blobs
