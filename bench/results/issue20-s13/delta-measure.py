"""How small would the table's stored size be with chunks of a new version compressed
against the previous version's chunk at the same offset (zstd raw-content dictionary)?
Measurement only: what 'delta compression' would give on the suite's table."""
import sys, time, bisect
from pathlib import Path
sys.path.insert(0, "/work/main")
import zstandard, blake3
from bench.suite.workloads import _make_table
from artifactstore.objects.bigchunks import _default_chunker, _TEXT_ZSTD
from artifactstore.core.chunking import chunk_spans

root = Path("/tmp/lead-delta/t")
if not (root / "v4").exists():
    root.mkdir(parents=True, exist_ok=True)
    _make_table(root, 1.0, 20261126)
params = zstandard.ZstdCompressionParameters(**dict(_TEXT_ZSTD))
plain = zstandard.ZstdCompressor(compression_params=params)
seen: dict[bytes, int] = {}
nbase = []
import os
DP = zstandard.ZstdCompressionParameters(**{**dict(_TEXT_ZSTD), 'hash_log': int(os.environ['HL']), 'chain_log': int(os.environ['CL']), 'strategy': int(os.environ['ST'])})
prev = None  # (offsets, chunks) of the previous version
total_plain = total_delta = 0
cpu_plain = cpu_delta = 0.0
for v in ("v1", "v2", "v3", "v4"):
    data = (root / v / "table.csv").read_bytes()
    spans = chunk_spans(data, _default_chunker())
    chunks = [data[o:o + n] for o, n, _ in spans]
    offs = [o for o, _, _ in spans]
    new_plain = new_delta = 0
    for (o, n, _), c in zip(spans, chunks):
        h = blake3.blake3(c).digest()
        if h in seen:
            continue
        t = time.thread_time(); a = len(plain.compress(c)); cpu_plain += time.thread_time() - t
        seen[h] = a
        new_plain += a
        b = a
        if prev is not None:
            poffs, pchunks = prev
            i = max(0, bisect.bisect_right(poffs, o) - 1)
            j = max(i + 1, bisect.bisect_left(poffs, o + n))
            base = b"".join(pchunks[i:j])
            nbase.append(j - i)
            t = time.thread_time()
            d = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            comp = zstandard.ZstdCompressor(dict_data=d, compression_params=DP)
            b = min(a, len(comp.compress(c)))
            cpu_delta += time.thread_time() - t
        new_delta += b
    total_plain += new_plain; total_delta += new_delta
    print(f"{v}: new chunks plain {new_plain/2**20:.1f} MiB, delta {new_delta/2**20:.1f} MiB; "
          f"total plain {total_plain/2**20:.1f}, delta {total_delta/2**20:.1f}; "
          f"cpu plain {cpu_plain:.2f} s, delta extra {cpu_delta:.2f} s", flush=True)
    prev = (offs, chunks)
print("base chunks per delta: max", max(nbase), "mean", sum(nbase)/len(nbase))
