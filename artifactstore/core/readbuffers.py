"""Read buffers reused once nothing views them (the chunker's big reads of a file).

Why: a file being logged is read 8 MiB at a time and cut into chunks that are views of
each read; the views wait in packs until a pack is sealed (packs.py). A fresh ``bytes``
per read meant fresh memory per read: every page of a 256 MiB file was faulted in once
more (~65,000 minor faults, ~0.1-0.2 CPU s of a table's add on this machine's kernel).
Reading into buffers that were read into before touches pages already mapped.

Vocabulary: a buffer is **viewed** while any ``memoryview`` of it (a chunk waiting in a
pack, a read being hashed on another thread) exists. A ``bytearray`` refuses to change
its size while viewed (``BufferError``); :meth:`ReadBuffers.take` asks exactly that,
by shrinking a kept buffer by its last byte and putting it back, so it hands out
only a buffer no view can see: the bytes a chunk view shows never change under it.
Whoever holds a view decides how long its buffer stays out of the pool; nothing has
to tell the pool that it let go.
"""

from __future__ import annotations

__all__ = ["ReadBuffers", "viewed"]


def viewed(buffer: bytearray) -> bool:
    """Whether a ``memoryview`` of ``buffer`` exists (it then cannot change size)."""
    try:
        last = buffer.pop()  # refused before anything changes while views exist
    except BufferError:
        return True
    buffer.append(last)  # within its allocation: no copy, no new memory
    return False


class ReadBuffers:
    """Buffers of ``size`` bytes for reads, at most ``keep`` of them tracked for reuse.

    :meth:`take` returns a tracked buffer that nothing views, else a new one (tracked
    if fewer than ``keep`` are). Other tracked buffers found idle are given back then
    (freed: nothing else refers to them), as a fresh read's buffer would be when its
    last chunk was sealed: an idle buffer kept for later would add to the memory peak
    of the work beside the reads (the packs being sealed), while one freed and made
    again costs its page faults once more. A buffer beyond ``keep`` is referenced by
    its views only and freed with the last of them. Not thread-safe: one reader takes
    buffers; the views may live on any thread.
    """

    __slots__ = ("_kept", "keep", "keep_idle", "made", "size")

    def __init__(self, size: int, keep: int, *, keep_idle: bool = False) -> None:
        if size < 1 or keep < 0:
            raise ValueError(f"ReadBuffers needs size >= 1 and keep >= 0, not {size}, {keep}")
        self.size = size
        self.keep = keep
        #: idle tracked buffers stay for later reads instead of being freed: where the
        #: work beside the reads holds few buffers (chunks sealed as they come), so the
        #: ``keep`` buffers are the peak anyway and each one made again is its page
        #: faults and zero-fill once more
        self.keep_idle = keep_idle
        self._kept: list[bytearray] = []
        #: buffers made (new memory) so far; ``take`` calls minus this were reuses
        self.made = 0

    def take(self) -> bytearray:
        """A buffer of :attr:`size` bytes that no view sees (its content is stale)."""
        chosen = None
        kept = []
        for buffer in self._kept:
            if viewed(buffer):
                kept.append(buffer)
            elif chosen is None:
                chosen = buffer
                kept.append(buffer)
            elif self.keep_idle:
                kept.append(buffer)
        # (by identity: equal bytearrays compare equal, so list.remove would not do)
        self._kept = kept
        if chosen is not None:
            return chosen
        buffer = bytearray(self.size)
        self.made += 1
        if len(self._kept) < self.keep:
            self._kept.append(buffer)
        return buffer

    def release(self) -> None:
        """Forget the kept buffers (each is freed when its last view is)."""
        self._kept.clear()
