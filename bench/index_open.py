"""The merged index alone: open it from a client's cache file and look up absent ids.

``python -m bench.index_open PATH.idx`` (run it with the code to measure first on
PYTHONPATH): CPU seconds to open, microseconds per lookup over the first 10,000 absent
ids (each block of the table is checked on first touch) and over 10,000 more (steady),
and the process's RSS growth. Issue 20, "Read-only commands at scale".
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.objects.index import MergedIndex


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    start_rss, started = _rss_mib(), time.process_time()
    index = MergedIndex(path)
    opened = time.process_time() - started
    rounds = []
    for tag in (b"a", b"b"):
        probes = [Digest(hash_bytes(tag + b"%d" % i).raw) for i in range(10_000)]
        started = time.process_time()
        found = sum(1 for p in probes if index.lookup(p) is not None)
        rounds.append((time.process_time() - started) / len(probes) * 1e6)
        assert found == 0
    print(f"{len(index)} blobs: open {opened:.3f} CPU s; lookup {rounds[0]:.1f} us (first "
          f"10,000), {rounds[1]:.1f} us (steady); RSS +{_rss_mib() - start_rss:.0f} MiB, "
          f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
