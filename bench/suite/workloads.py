"""Deterministic workloads: version folders ``v1..vN`` of a model, a table and images.

Each version is a full folder snapshot ``<work>/<workload>/v<i>/``: a tool adds the
folder as it is at that version, as a user re-adding a changed data set would. Every
folder is a real copy (no hardlinks), so no tool can skip a version's bytes through
file metadata it cached for another folder: each one reads every version in full.

At ``scale`` 1 (sizes and counts are multiplied by it; MiB = 2**20 bytes):

- **model**: ``model.bin``, 512 MiB of float32 (seeded random mantissas, exponents
  clustered as in trained weights, so zstd finds a little to save); v2 rewrites 5%
  of it in scattered 64 KiB blocks; v3 appends 64 MiB.
- **table**: ``table.csv``, ~256 MiB of rows; v2 appends 2% rows; v3 inserts 1% rows
  mid-file; v4 changes one column in 1% of rows (scattered).
- **images**: 20,000 files of 8-32 KiB of random bytes in 100 folders; v2 adds
  1,000, rewrites 200 and deletes 100.

Data comes only from ``random.Random(seed)`` streams, never from the code under test.
A workload folder holds ``workload.json`` when complete and is reused when its seed
and scale match.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
SEED = 20261126
NAMES = ("model", "table", "images")
_BLOCK = 8 * MIB


@dataclass(frozen=True)
class Workload:
    """A generated workload: its version folders, in order, and their sizes."""

    name: str
    versions: tuple[Path, ...]
    nbytes: tuple[int, ...]
    files: tuple[int, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.versions)


def generate(name: str, work: Path, scale: float, seed: int = SEED) -> Workload:
    """The workload ``name`` under ``work/name``, generated unless already there."""
    makers: dict[str, Callable[[Path, float, int], int]] = {
        "model": _make_model, "table": _make_table, "images": _make_images}
    if name not in makers:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(NAMES)}")
    root = work / name
    marker = root / "workload.json"
    if marker.exists():
        doc = json.loads(marker.read_text())
        if doc.get("seed") == seed and doc.get("scale") == scale:
            return _describe(name, root, int(doc["versions"]))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    count = makers[name](root, scale, seed)
    marker.write_text(json.dumps({"seed": seed, "scale": scale, "versions": count}))
    return _describe(name, root, count)


def files_of(root: Path) -> list[Path]:
    """Every regular file under ``root``, relative, sorted."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def _describe(name: str, root: Path, count: int) -> Workload:
    versions = tuple(root / f"v{i}" for i in range(1, count + 1))
    listed = [files_of(v) for v in versions]
    sizes = tuple(sum((v / f).stat().st_size for f in fs) for v, fs in zip(versions, listed,
                                                                             strict=True))
    return Workload(name, versions, sizes, tuple(len(fs) for fs in listed))


# -- model -------------------------------------------------------------------

# Top byte of a little-endian float32: the sign and the 7 high exponent bits. Weights of
# a trained network mostly lie within 2**-9..2**-3, so a few exponents dominate.
_EXP_HIGH = [0x3C] * 64 + [0x3B] * 32 + [0x3D] * 16 + [0x3A] * 8 + [0x39] * 4 + [0x3E] * 2 \
    + [0x38] * 2
_TOP_BYTE = bytes((i & 0x80) | _EXP_HIGH[i & 0x7F] for i in range(256))


def float32_bytes(rng: random.Random, n: int) -> bytes:
    """``n`` bytes (a multiple of 4) of float32 weights: random but weight-like."""
    raw = bytearray(rng.randbytes(n))
    raw[3::4] = bytes(raw[3::4]).translate(_TOP_BYTE)
    return bytes(raw)


def _write_floats(f: object, rng: random.Random, size: int) -> None:
    write = f.write  # type: ignore[attr-defined]
    for offset in range(0, size, _BLOCK):
        write(float32_bytes(rng, min(_BLOCK, size - offset)))


def _make_model(root: Path, scale: float, seed: int) -> int:
    block = 64 << 10
    # Whole 64 KiB blocks, so v2's rewrites are aligned and the file stays float32.
    size = max(16, round(512 * MIB * scale / block)) * block
    v1, v2, v3 = (root / f"v{i}" for i in (1, 2, 3))
    for v in (v1, v2, v3):
        v.mkdir()
    with open(v1 / "model.bin", "wb") as f:
        _write_floats(f, random.Random(seed), size)
    rng = random.Random(seed + 1)
    shutil.copyfile(v1 / "model.bin", v2 / "model.bin")
    nblocks = size // block
    with open(v2 / "model.bin", "r+b") as f:
        for index in sorted(rng.sample(range(nblocks), max(1, round(nblocks * 0.05)))):
            f.seek(index * block)
            f.write(float32_bytes(rng, block))
    shutil.copyfile(v2 / "model.bin", v3 / "model.bin")
    with open(v3 / "model.bin", "ab") as f:
        _write_floats(f, rng, max(4, round(64 * MIB * scale / 4) * 4))
    return 3


# -- table -------------------------------------------------------------------

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
          "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
          "sierra", "tango", "uniform", "victor", "whiskey", "xray")
_CATEGORIES = ("books", "garden", "toys", "music", "tools", "sports", "food", "health")
_HEADER = "id,date,user,category,amount,score,flag,comment\n"


def _row(rng: random.Random, i: int) -> str:
    r = rng.random
    return (f"{i},2024-{1 + int(r() * 12):02d}-{1 + int(r() * 28):02d},user{int(r() * 50000)},"
            f"{_CATEGORIES[int(r() * 8)]},{r() * 1000:.2f},{r():.6f},{int(r() * 2)},"
            f"{' '.join(rng.choices(_WORDS, k=4))}\n")


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir()
    with open(path, "w", encoding="ascii", newline="") as f:
        f.write(_HEADER)
        f.writelines(lines)


def _make_table(root: Path, scale: float, seed: int) -> int:
    target = max(64 << 10, round(256 * MIB * scale))
    rng = random.Random(seed)
    lines: list[str] = []
    total = len(_HEADER)
    while total < target:
        lines.append(_row(rng, len(lines)))
        total += len(lines[-1])
    n = len(lines)
    next_id = n
    _write_lines(root / "v1" / "table.csv", lines)
    extra = max(1, round(n * 0.02))
    lines += [_row(rng, next_id + k) for k in range(extra)]
    next_id += extra
    _write_lines(root / "v2" / "table.csv", lines)
    mid, extra = len(lines) // 2, max(1, round(n * 0.01))
    lines[mid:mid] = [_row(rng, next_id + k) for k in range(extra)]
    _write_lines(root / "v3" / "table.csv", lines)
    for k in rng.sample(range(len(lines)), max(1, round(len(lines) * 0.01))):
        cols = lines[k].split(",")
        cols[5] = f"{rng.random():.6f}"  # the score column
        lines[k] = ",".join(cols)
    _write_lines(root / "v4" / "table.csv", lines)
    return 4


# -- images ------------------------------------------------------------------


def _image(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(8 << 10, 32 << 10))


def _make_images(root: Path, scale: float, seed: int) -> int:
    count = max(10, round(20_000 * scale))
    folders = min(100, count)
    rng = random.Random(seed)

    def path(i: int) -> Path:
        return Path(f"d{i % folders:03d}") / f"img{i:06d}.jpg"

    v1, v2 = root / "v1", root / "v2"
    for d in range(folders):
        (v1 / f"d{d:03d}").mkdir(parents=True)
    for i in range(count):
        (v1 / path(i)).write_bytes(_image(rng))
    shutil.copytree(v1, v2)
    deleted = rng.sample(range(count), max(1, round(100 * scale)))
    for i in deleted:
        (v2 / path(i)).unlink()
    kept = sorted(set(range(count)) - set(deleted))
    for i in rng.sample(kept, max(1, round(200 * scale))):
        (v2 / path(i)).write_bytes(_image(rng))
    for i in range(count, count + max(1, round(1000 * scale))):
        (v2 / path(i)).write_bytes(_image(rng))
    return 2
