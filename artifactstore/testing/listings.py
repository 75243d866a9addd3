"""A memory backend that records what it was asked to list (tests of listing counts)."""

from __future__ import annotations

from collections.abc import Iterator

from artifactstore.backends.memory import MemoryBackend

__all__ = ["ListingRecorder"]


class ListingRecorder(MemoryBackend):
    """A memory backend that remembers the prefixes it was asked to list."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.listed: list[str] = []

    def list(self, prefix: str = "") -> Iterator[str]:
        self.listed.append(prefix)
        return super().list(prefix)
