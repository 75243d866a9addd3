"""How tests/data/golden-v1/ was made (run once; the output is frozen in git).

Do NOT regenerate it to make a test pass: the point of a golden store is that
stores written by older releases keep reading. A format change needs a new
golden store next to this one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from artifactstore.backends import open_backend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.synthetic import csv_rows, random_bytes
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.golden import write_files

root = Path(sys.argv[1])
store = ObjectStore.open(
    open_backend(str(root / "golden-v1")),
    create=StoreConfig.new(chunker=ChunkerParams(min_size=1024, avg_size=4096,
                                                 max_size=16384), pack_target=16384),
    cache_dir=root / "cache",
)
files = {
    "empty": b"",
    "tiny.txt": b"hello artifactstore\n",
    "noise.bin": random_bytes(40_000, seed=1),
    "table.csv": csv_rows(30_000, seed=2),
}
with store:
    refs = write_files(store, files)
    tree = store.put_blob(Kind.TREE, b"a tree node")
(root / "golden-v1.json").write_text(
    json.dumps({"files": refs, "tree": tree.hex}, indent=1, sort_keys=True) + "\n"
)
