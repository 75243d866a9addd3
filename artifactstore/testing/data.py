"""Test data on disk: trees of small files (built on :mod:`artifactstore.core.synthetic`)."""

from __future__ import annotations

from pathlib import Path

from artifactstore.core.synthetic import RandomStream, csv_rows, edit_scattered, random_bytes

__all__ = ["RandomStream", "csv_rows", "edit_scattered", "random_bytes", "write_small_files"]


def write_small_files(root: Path, count: int, min_size: int, max_size: int, seed: int) -> int:
    """Write ``count`` pseudo-random files with sizes in [min_size, max_size]; returns bytes."""
    total = 0
    span = max_size - min_size + 1
    for i in range(count):
        size = min_size + int.from_bytes(random_bytes(4, seed, i * 4), "little") % span
        path = root / f"{i // 1000:03d}" / f"file-{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(size, seed + 1 + i))
        total += size
    return total
