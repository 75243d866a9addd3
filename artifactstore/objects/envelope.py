"""The object envelope (docs/design.md §4).

Vocabulary: an *envelope* is the 8-byte header (magic, version, kind, flags,
reserved) followed by the *payload*: the plaintext, possibly zstd-compressed.
*Sealing* turns plaintext into envelope bytes; *opening* checks the header and
returns the plaintext. Encryption (flag bit 1) is added by the privacy work.
"""

from __future__ import annotations

import enum
import struct
import threading
from dataclasses import dataclass

import zstandard

from artifactstore.errors import IntegrityError, InvalidInputError

__all__ = [
    "HEADER_SIZE", "MAGIC", "AdaptiveSealer", "Compression", "Kind", "open_envelope", "seal",
    "seal_parts",
]  # fmt: skip

MAGIC = b"ASE1"
VERSION = 1
HEADER_SIZE = 8
_HEADER = struct.Struct("<4sBBBB")

FLAG_ZSTD = 0x01
FLAG_ENCRYPTED = 0x02
_KNOWN_FLAGS = FLAG_ZSTD


class Kind(enum.IntEnum):
    """What an envelope holds; recorded in the header, the index and pack trailers."""

    CHUNK = 0x01
    CHUNKLIST = 0x02
    TREE = 0x03
    MANIFEST = 0x04
    PACK_TRAILER = 0x10
    INDEX = 0x11
    CONFIG = 0x12
    VERSION = 0x20
    ALIAS_EVENT = 0x21
    RUN = 0x22
    RUN_EVENT = 0x23
    RUN_METRICS = 0x24
    HEARTBEAT = 0x25


@dataclass(frozen=True, slots=True)
class Compression:
    """Per-blob compression policy from the store config (design §3)."""

    algorithm: str = "zstd"
    level: int = 3
    min_saving: float = 0.05

    def __post_init__(self) -> None:
        if self.algorithm not in ("zstd", "none"):
            raise InvalidInputError(
                f"unknown compression {self.algorithm!r}: use 'zstd' or 'none'"
            )
        if not -7 <= self.level <= 22:
            raise InvalidInputError(f"zstd level {self.level} out of range -7..22")
        if not 0.0 <= self.min_saving < 1.0:
            raise InvalidInputError(f"min_saving {self.min_saving} must be in [0, 1)")

    def to_dict(self) -> dict[str, object]:
        return {"algorithm": self.algorithm, "level": self.level, "min_saving": self.min_saving}


# zstd contexts are not thread-safe; each thread keeps its own per level.
_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("c", {})
    comp = cache.get(level)
    if comp is None:
        comp = cache[level] = zstandard.ZstdCompressor(level=level)
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    d = _local.__dict__.get("d")
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def seal(
    kind: Kind, plaintext: bytes | memoryview, compression: Compression | None = None
) -> bytes:
    """Wrap ``plaintext`` in an envelope, compressed when it pays."""
    header, payload = seal_parts(kind, plaintext, compression)
    return header + payload


def seal_parts(
    kind: Kind, plaintext: bytes | memoryview, compression: Compression | None = None
) -> tuple[bytes, bytes | memoryview]:
    """``seal`` as ``(header, payload)``, so a pack can append them without a copy.

    An uncompressed payload is ``plaintext`` itself, not a copy.
    """
    flags = 0
    payload: bytes | memoryview = plaintext
    if compression is not None and compression.algorithm == "zstd" and len(plaintext) >= 64:
        packed = _compressor(compression.level).compress(plaintext)
        if len(packed) <= len(plaintext) * (1.0 - compression.min_saving):
            payload = packed
            flags |= FLAG_ZSTD
    return _HEADER.pack(MAGIC, VERSION, int(kind), flags, 0), payload


class AdaptiveSealer:
    """Seals the blobs of one stream, giving up on compression where it never pays.

    After ``give_up_after`` blobs in a row did not compress (model weights,
    JPEGs, archives), only every ``probe_every``-th blob is tried until one
    compresses again. Trying zstd on incompressible data costs as much as
    hashing it; this keeps compression for compressible stretches of a file.
    """

    def __init__(self, compression: Compression | None, *, give_up_after: int = 4,
                 probe_every: int = 16) -> None:
        self._compression = compression
        self._give_up_after = give_up_after
        self._probe_every = probe_every
        self._misses = 0
        self._skip = 0

    def seal_parts(
        self, kind: Kind, plaintext: bytes | memoryview
    ) -> tuple[bytes, bytes | memoryview]:
        if self._skip > 0:
            self._skip -= 1
            return seal_parts(kind, plaintext, None)
        header, payload = seal_parts(kind, plaintext, self._compression)
        if header[6] & FLAG_ZSTD:
            self._misses = 0
        else:
            self._misses += 1
            if self._misses >= self._give_up_after:
                self._skip = self._probe_every - 1
        return header, payload


def open_envelope(
    data: bytes | memoryview, *, expected_kind: Kind | None, raw_length: int | None, what: str
) -> tuple[Kind, bytes]:
    """Check the header and return ``(kind, plaintext)``.

    ``raw_length`` bounds decompression (a hostile object cannot expand without
    limit) and is checked exactly when given. ``what`` names the object in errors.
    """
    if len(data) < HEADER_SIZE:
        raise IntegrityError(f"{what} is truncated ({len(data)} bytes): run 'artifactstore verify'")
    magic, version, kind_no, flags, reserved = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or reserved != 0 or flags & ~_KNOWN_FLAGS:
        raise IntegrityError(f"{what} has a damaged or unknown envelope header")
    try:
        kind = Kind(kind_no)
    except ValueError:
        raise IntegrityError(f"{what} has unknown kind {kind_no}") from None
    if expected_kind is not None and kind != expected_kind:
        raise IntegrityError(f"{what} holds a {kind.name}, expected {expected_kind.name}")
    payload = memoryview(data)[HEADER_SIZE:]
    if flags & FLAG_ZSTD:
        limit = raw_length if raw_length is not None else 1 << 31
        try:
            declared = zstandard.frame_content_size(payload)
            if declared > limit:
                raise IntegrityError(
                    f"{what} declares {declared} bytes of content, expected {limit}"
                )
            plaintext = _decompressor().decompress(payload, max_output_size=limit)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{what} does not decompress: {exc}") from None
    else:
        plaintext = bytes(payload)
    if raw_length is not None and len(plaintext) != raw_length:
        raise IntegrityError(
            f"{what} has {len(plaintext)} bytes of content, the index says {raw_length}"
        )
    return kind, plaintext
