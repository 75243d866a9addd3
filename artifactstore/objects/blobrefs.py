"""Value objects that name stored content.

Vocabulary: a :class:`ChunkRef` names one stored chunk and its plaintext
length; a :class:`FileRef` is what writing a file returns: the file's digest
(plain BLAKE3 of all its bytes, what ``b3sum`` prints), its size and its chunks
in order. Manifests store these; readers turn them back into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from artifactstore.core.digest import Digest
from artifactstore.core.errors import InvalidInputError

__all__ = ["ChunkRef", "FileRef", "WriteStats"]


@dataclass(frozen=True, slots=True)
class ChunkRef:
    id: Digest
    length: int


@dataclass(frozen=True, slots=True)
class FileRef:
    digest: Digest
    size: int
    chunks: tuple[ChunkRef, ...]

    def __post_init__(self) -> None:
        if sum(c.length for c in self.chunks) != self.size:
            raise InvalidInputError(
                f"file {self.digest.hex}: chunk lengths do not add up to its size {self.size}"
            )


@dataclass(slots=True)
class WriteStats:
    """Counters of one object store's writes since it was opened."""

    bytes_in: int = 0
    blobs_new: int = 0
    blobs_deduplicated: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0
    packs_written: int = 0
    indexes_written: int = 0
