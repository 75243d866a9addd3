"""The blob ids one commit session wrote or deduplicated (design §15).

Split from objects/store.py: the write session's memory-light id list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["SessionBlobs"]


class SessionBlobs:
    """The blob ids a commit session wrote or deduplicated, 32 bytes each in one buffer.

    Why not a set: a million ids in a set of ``bytes`` are about 100 MB, here 32 MB. An
    id may be listed more than once (a chunk in two files): checking it twice is cheap.
    """

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data = bytearray()

    def add(self, raw: bytes) -> None:
        self._data += raw

    def update(self, ids: Iterable[bytes]) -> None:
        data = self._data
        for raw in ids:
            data += raw

    def __len__(self) -> int:
        return len(self._data) // 32

    def __iter__(self) -> Iterator[bytes]:
        data = bytes(self._data)  # a snapshot: adding during the walk is harmless
        return (data[i:i + 32] for i in range(0, len(data), 32))
