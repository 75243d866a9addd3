"""How tests/data/golden-v1-deltas/ was made (run once; the output is frozen in git).

A format-1 store with the mandatory feature ``delta-chunks`` (design §3, §4): a big
text file written twice, the second time edited (every 50th row) and written against the
first (its ``previous``), so the second's new chunks are delta chunks whose bases are
the first's chunks, named in the pack trailer and the index object. Small profile, as
golden-v1-bigchunks. Do NOT regenerate it to make a test pass; a format change needs a
new golden store next to this one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from artifactstore.backends import open_backend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.synthetic import csv_rows
from artifactstore.objects.bigchunks import BigChunks
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Compression
from artifactstore.objects.store import ObjectStore

root = Path(sys.argv[1])
big = BigChunks(
    chunker=ChunkerParams(min_size=8192, avg_size=32768, max_size=131072),
    compression=Compression(params=(("chain_log", 14), ("hash_log", 16), ("min_match", 7),
                                    ("search_log", 1), ("strategy", 2),
                                    ("target_length", 0), ("window_log", 22))),
    min_file=65536, probe=4096, top16_percent=50,
)
store = ObjectStore.open(
    open_backend(str(root / "golden-v1-deltas")),
    create=StoreConfig.new(chunker=ChunkerParams(min_size=1024, avg_size=4096,
                                                 max_size=16384), pack_target=65536,
                           big_chunks=big),
    cache_dir=root / "cache",
)
v1 = csv_rows(200_000, seed=3)
lines = v1.split(b"\n")
v2 = b"\n".join(line.replace(b"1", b"7", 1) if i % 50 == 0 else line
                for i, line in enumerate(lines))
refs = {}
with store:
    first = store.write_bytes(v1)
    store.flush()  # bases are indexed chunks (design §4)
    second = store.write_bytes(v2, previous=lambda: first)
for name, ref in (("v1.csv", first), ("v2.csv", second)):
    refs[name] = {"digest": ref.digest.hex, "size": ref.size,
                  "chunks": [[c.id.hex, c.length] for c in ref.chunks]}
(root / "golden-v1-deltas.json").write_text(
    json.dumps({"files": refs}, indent=1, sort_keys=True) + "\n"
)
