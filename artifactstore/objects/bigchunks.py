"""Big chunks for big compressible files (docs/design.md §2.2, issue 20).

Vocabulary: the *big-chunk profile* (:class:`BigChunks`, the config's
``big_chunks`` map) is a second set of chunker parameters and a zstd policy for
files that are at least ``min_file`` bytes long and look like text: in the first
``probe`` bytes, the 16 most frequent byte values make up at least ``top16_percent``
percent of the bytes. A CSV (digits, commas, a few words) scores ~85%, English
~65%, float32 weights ~30%, compressed or random data ~6%.

Why: zstd compresses a 1 MiB chunk of a CSV ~4% better than a 64 KiB one and
spends less time per byte doing it (one frame set-up instead of sixteen), while an
edit still stores only the chunks it touches (a few MiB). The rule reads only the
file's own bytes, with integer arithmetic, so every client cuts the same file the
same way (deduplication), whatever its zstd version; compressing a sample would not
be stable across zstd versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import FormatError, InvalidInputError
from artifactstore.objects.envelope import Compression

__all__ = ["BigChunks", "looks_compressible"]

#: zstd "fast" with a 2^12-entry hash table (16 KiB, in L1) and 7-byte minimum matches:
#: on the suite's CSV ~30% less CPU than the "dfast" of stores made before session 14
#: (hash_log 16, chain_log 14) for ~10% more bytes; literals stay Huffman-coded
#: (``target_length`` 0). chain_log is unused by "fast" (docs/benchmarks.md, "Table add
#: v1, compression after deltas (issue 20)")
_TEXT_ZSTD = (("chain_log", 6), ("hash_log", 12), ("min_match", 7), ("search_log", 1),
              ("strategy", 1), ("target_length", 0), ("window_log", 22))


def _default_chunker() -> ChunkerParams:
    return ChunkerParams(min_size=256 << 10, avg_size=512 << 10, max_size=2 << 20)


def _default_compression() -> Compression:
    return Compression(level=1, params=_TEXT_ZSTD)


@dataclass(frozen=True, slots=True)
class BigChunks:
    """How a store cuts and compresses its big compressible files."""

    chunker: ChunkerParams = field(default_factory=_default_chunker)
    compression: Compression = field(default_factory=_default_compression)
    #: files shorter than this keep the store's chunker (and are not probed)
    min_file: int = 4 << 20
    probe: int = 64 << 10
    top16_percent: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.probe <= self.min_file:
            raise InvalidInputError(f"probe {self.probe} must be in [1, min_file]")
        if not 0 <= self.top16_percent <= 100:
            raise InvalidInputError(f"top16_percent {self.top16_percent} must be in [0, 100]")

    def applies(self, head: bytes | memoryview, size_at_least: int) -> bool:
        """Whether a file of at least ``size_at_least`` bytes starting with ``head`` (its
        first ``min_file`` bytes, or all of it) is cut with this profile."""
        if size_at_least < self.min_file:
            return False
        return looks_compressible(memoryview(head)[: self.probe], self.top16_percent)

    def to_dict(self) -> dict[str, object]:
        return {"chunker": self.chunker.to_dict(), "compression": self.compression.to_dict(),
                "min_file": self.min_file, "probe": self.probe,
                "top16_percent": self.top16_percent}

    @classmethod
    def from_dict(cls, body: object) -> BigChunks:
        """The profile from a config map; anything malformed is a ``FormatError``."""
        if not isinstance(body, Mapping) or set(body) != {
                "chunker", "compression", "min_file", "probe", "top16_percent"}:
            raise FormatError("config's big_chunks map is malformed: the store is damaged")
        try:
            return cls(chunker=ChunkerParams.from_dict(body["chunker"]),
                       compression=Compression.from_dict(dict(body["compression"])),
                       min_file=int(body["min_file"]), probe=int(body["probe"]),
                       top16_percent=int(body["top16_percent"]))
        except (TypeError, ValueError, InvalidInputError) as exc:
            raise FormatError(f"config's big_chunks map is damaged: {exc}") from None


def looks_compressible(sample: bytes | memoryview, top16_percent: int) -> bool:
    """Whether the 16 most frequent byte values make up ``top16_percent``% of ``sample``."""
    data = bytes(sample)
    if not data:
        return False
    counts = sorted((data.count(b) for b in set(data)), reverse=True)
    return sum(counts[:16]) * 100 >= top16_percent * len(data)
