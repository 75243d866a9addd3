"""Synthetic data: pseudo-random streams, scattered edits and realistic CSV.

Used by the demo, the test suite and ``bench/``. Bytes come from BLAKE3's extended output
keyed by a seed, so they are incompressible, reproducible and cheap (several
GB/s), and a stream of any length needs no disk.
"""

from __future__ import annotations

import io

import blake3

__all__ = ["RandomStream", "csv_rows", "edit_scattered", "random_bytes"]


def random_bytes(size: int, seed: int = 0, offset: int = 0) -> bytes:
    """``size`` pseudo-random bytes at ``offset`` of the stream named by ``seed``."""
    return blake3.blake3(seed.to_bytes(8, "little")).digest(length=size, seek=offset)


class RandomStream(io.RawIOBase):
    """A readable stream of ``size`` pseudo-random bytes that holds nothing in memory."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self._size = size
        self._seed = seed
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        buffer[:n] = random_bytes(n, self._seed, self._pos)
        self._pos += n
        return n


def edit_scattered(data: bytearray, fraction: float, block: int, seed: int) -> int:
    """Overwrite ``fraction`` of ``data`` in ``block``-sized blocks spread evenly.

    Returns the number of bytes rewritten. The new bytes are pseudo-random, so
    every touched block differs from the original.
    """
    blocks = len(data) // block
    count = max(1, int(blocks * fraction))
    stride = blocks / count
    for i in range(count):
        start = int(i * stride) * block
        data[start : start + block] = random_bytes(block, seed, start)
    return count * block


def csv_rows(size: int, seed: int = 0) -> bytes:
    """About ``size`` bytes of a realistic tabular CSV (ids, times, labels, floats).

    Every row is distinct (id and time columns count up); the measurement columns
    are drawn from a pool of random rows so that generating hundreds of MiB stays
    fast. Chunks compress independently, so the pool does not flatter zstd.
    """
    import random

    rng = random.Random(seed)
    labels = ["cat", "dog", "bird", "fish", "horse", "cow"]
    pool = [
        f"{rng.choice(labels)},{rng.random():.4f},{rng.gauss(0, 1):.6f},"
        f"{rng.uniform(-100, 100):.3f},{rng.randint(0, 50)}\n"
        for _ in range(100_000)
    ]
    parts = ["id,timestamp,label,score,feature_a,feature_b,count\n"]
    total = len(parts[0])
    i = 0
    start = 1_700_000_000
    while total < size:
        batch = [f"{i + k},{start + 7 * (i + k)},{pool[rng.randrange(100_000)]}"
                 for k in range(10_000)]
        i += 10_000
        chunk = "".join(batch)
        parts.append(chunk)
        total += len(chunk)
    return "".join(parts).encode()[:size]
