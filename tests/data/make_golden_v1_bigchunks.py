"""How tests/data/golden-v1-bigchunks/ was made (run once; the output is frozen in git).

A format-1 store whose config has ``big_chunks`` (design §2.2, issue 20), with a small
profile so the store stays small: its big text file is cut with the big-chunk
chunker and sealed with the profile's zstd parameters. Do NOT regenerate it to make a
test pass; a format change needs a new golden store next to this one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from artifactstore.backends import open_backend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.synthetic import csv_rows, random_bytes
from artifactstore.objects.bigchunks import BigChunks
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Compression
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.golden import write_files

root = Path(sys.argv[1])
big = BigChunks(
    chunker=ChunkerParams(min_size=8192, avg_size=32768, max_size=131072),
    compression=Compression(params=(("chain_log", 14), ("hash_log", 16), ("min_match", 7),
                                    ("search_log", 1), ("strategy", 2),
                                    ("target_length", 0), ("window_log", 22))),
    min_file=65536, probe=4096, top16_percent=50,
)
store = ObjectStore.open(
    open_backend(str(root / "golden-v1-bigchunks")),
    create=StoreConfig.new(chunker=ChunkerParams(min_size=1024, avg_size=4096,
                                                 max_size=16384), pack_target=65536,
                           big_chunks=big),
    cache_dir=root / "cache",
)
files = {
    "big.csv": csv_rows(200_000, seed=3),
    "noise.bin": random_bytes(70_000, seed=4),
    "small.csv": csv_rows(20_000, seed=5),
}
with store:
    refs = write_files(store, files)
(root / "golden-v1-bigchunks.json").write_text(
    json.dumps({"files": refs}, indent=1, sort_keys=True) + "\n"
)
