"""The object envelope (docs/design.md §4).

Vocabulary: an *envelope* is the 8-byte header (magic, version, kind, flags,
reserved) followed by the *payload*: the plaintext, possibly zstd-compressed.
*Sealing* turns plaintext into envelope bytes; *opening* checks the header and
returns the plaintext.

In an encrypted domain (flag bit 1, design §13.3) the payload is
``key_id || [salt] || AEAD(compressed plaintext)``. Content-addressed kinds
(chunks, chunk lists, tree nodes, manifests) use ``kind || blob id`` as the salt
and do not store it; every other kind stores 32 random bytes. The associated
data is ``header || key_id || binding``, where the binding is the blob id or the
object's key: a valid object moved to another id or key fails to open.
"""

from __future__ import annotations

import enum
import os
import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zstandard

from artifactstore.core.errors import AccessDeniedError, IntegrityError, InvalidInputError

if TYPE_CHECKING:
    from artifactstore.objects.domainkeys import DomainKeys

__all__ = [
    "HEADER_SIZE", "KIND_OF", "MAGIC", "AdaptiveSealer", "Compression", "Kind",
    "compressed", "exact_size", "open_envelope", "open_envelope_into", "seal", "seal_compressed",
    "seal_parts",
]  # fmt: skip

MAGIC = b"ASE1"
VERSION = 1
HEADER_SIZE = 8
_HEADER = struct.Struct("<4sBBBB")

FLAG_ZSTD = 0x01
FLAG_ENCRYPTED = 0x02
_KNOWN_FLAGS = FLAG_ZSTD | FLAG_ENCRYPTED
_SALT_SIZE = 32
#: the AEAD tag after the ciphertext (AES-GCM, ChaCha20-Poly1305: core/crypto.py)
_TAG_SIZE = 16


class Kind(enum.IntEnum):
    """What an envelope holds; recorded in the header, the index and pack trailers."""

    CHUNK = 0x01
    CHUNKLIST = 0x02
    TREE = 0x03
    MANIFEST = 0x04
    #: a chunk stored as a zstd frame against its base chunks (design §4, objects/deltas.py)
    CHUNK_DELTA = 0x05
    PACK_TRAILER = 0x10
    INDEX = 0x11
    CONFIG = 0x12
    VERSION = 0x20
    ALIAS_EVENT = 0x21
    RUN = 0x22
    RUN_EVENT = 0x23
    RUN_METRICS = 0x24
    HEARTBEAT = 0x25
    PROJECT = 0x26
    MEMBER_EVENT = 0x27
    KEY_EPOCH = 0x28
    KEY_SLOT = 0x29
    LIFECYCLE = 0x2A
    GC_RECORD = 0x2B
    PROFILE = 0x2C


#: kinds named by the hash of their plaintext: their salt is derived, not stored
CONTENT_KINDS = frozenset({Kind.CHUNK, Kind.CHUNKLIST, Kind.TREE, Kind.MANIFEST,
                           Kind.CHUNK_DELTA})
#: each kind by its number: a dict lookup, where ``Kind(n)`` is an enum call per blob read
KIND_OF: dict[int, Kind] = {kind.value: kind for kind in Kind}


@dataclass(frozen=True, slots=True)
class Compression:
    """Per-blob compression policy from the store config (design §3)."""

    algorithm: str = "zstd"
    #: 1 for new stores (3 before 2026-11-27): a 256 MiB CSV logs ~20% faster for 1.2%
    #: more bytes (docs/benchmarks.md); a store keeps the level it was made with
    level: int = 1
    min_saving: float = 0.10
    #: zstd parameters that replace the level's (``ZstdCompressionParameters`` fields,
    #: sorted by name), for the chunks of big compressible files (design §2.2): only
    #: writers use them, a zstd frame says how to read itself
    params: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.algorithm not in ("zstd", "none"):
            raise InvalidInputError(
                f"unknown compression {self.algorithm!r}: use 'zstd' or 'none'"
            )
        if not -7 <= self.level <= 22:
            raise InvalidInputError(f"zstd level {self.level} out of range -7..22")
        if not 0.0 <= self.min_saving < 1.0:
            raise InvalidInputError(f"min_saving {self.min_saving} must be in [0, 1)")
        for name, value in self.params:
            if name not in _ZSTD_PARAMS or type(value) is not int:
                raise InvalidInputError(
                    f"unknown zstd parameter {name}={value!r}; known: {sorted(_ZSTD_PARAMS)}"
                )
        if list(self.params) != sorted(self.params) or len(dict(self.params)) != len(self.params):
            raise InvalidInputError("zstd parameters must be sorted by name, each once")

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"algorithm": self.algorithm, "level": self.level,
                                   "min_saving": self.min_saving}
        if self.params:  # absent unless set: older clients refuse unknown fields here
            body["params"] = dict(self.params)
        return body

    @classmethod
    def from_dict(cls, body: dict[str, object]) -> Compression:
        """The policy from a config map (``InvalidInputError``/``TypeError`` if malformed)."""
        fields = dict(body)
        params = fields.pop("params", None) or {}
        if not isinstance(params, dict):
            raise InvalidInputError("zstd parameters must be a map")
        return cls(**fields, params=tuple(sorted(params.items())))  # type: ignore[arg-type]


#: the zstd parameters a store config may set (``zstandard.ZstdCompressionParameters``)
_ZSTD_PARAMS = frozenset({
    "window_log", "hash_log", "chain_log", "search_log", "min_match", "target_length",
    "strategy",
})


# zstd contexts are not thread-safe; each thread keeps its own per level.
_local = threading.local()


def _compressor(compression: Compression) -> zstandard.ZstdCompressor:
    key = (compression.level, compression.params)
    cache: dict[object, zstandard.ZstdCompressor] = _local.__dict__.setdefault("c", {})
    comp = cache.get(key)
    if comp is None:
        if compression.params:
            tuned = zstandard.ZstdCompressionParameters(**dict(compression.params))
            comp = zstandard.ZstdCompressor(compression_params=tuned)
        else:
            comp = zstandard.ZstdCompressor(level=compression.level)
        cache[key] = comp
    return comp


def _decompressor() -> zstandard.ZstdDecompressor:
    d = _local.__dict__.get("d")
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def _delta_decompressor(dictionary: bytes) -> zstandard.ZstdDecompressor:
    """A decompressor of frames made against ``dictionary`` (raw content, no dict id)."""
    return zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(
        dictionary, dict_type=zstandard.DICT_TYPE_RAWCONTENT))


def seal(
    kind: Kind, plaintext: bytes | memoryview, compression: Compression | None = None,
    *, keys: DomainKeys | None = None, binding: bytes = b"",
) -> bytes:
    """Wrap ``plaintext`` in an envelope, compressed when it pays, encrypted with ``keys``."""
    header, payload = seal_parts(kind, plaintext, compression, keys=keys, binding=binding)
    return header + payload


def seal_parts(
    kind: Kind, plaintext: bytes | memoryview, compression: Compression | None = None,
    *, keys: DomainKeys | None = None, binding: bytes = b"",
) -> tuple[bytes, bytes | memoryview]:
    """``seal`` as ``(header, payload)``, so a pack can append them without a copy.

    An uncompressed, unencrypted payload is ``plaintext`` itself, not a copy.
    ``binding`` is the blob id (content kinds) or the object's key (others).
    """
    flags = 0
    payload: bytes | memoryview = plaintext
    if compression is not None and compression.algorithm == "zstd" and len(plaintext) >= 64:
        packed = _compressor(compression).compress(plaintext)
        if len(packed) <= len(plaintext) * (1.0 - compression.min_saving):
            # kept as it is only without encryption (else the ciphertext replaces it)
            payload = packed if keys is not None else exact_size(packed)
            flags |= FLAG_ZSTD
    return _wrapped(kind, flags, payload, keys, binding)


def compressed(header: bytes) -> bool:
    """Whether the envelope that starts with ``header`` holds a zstd payload."""
    return bool(header[6] & FLAG_ZSTD)  # the flags byte: after magic, version, kind


def exact_size(packed: bytes) -> bytes:
    """``packed`` (a zstd output) in an allocation of its own length.

    Why: python-zstandard's ``compress`` returns a bytes object that keeps the
    allocation of the frame's worst case (``ZSTD_compressBound``, about the input's
    length) however small the frame is. Held until a pack is written, a 100-byte delta
    frame of a 700 KiB chunk kept 700 KiB: a public store's edited 256 MiB table peaked
    at 370 MiB (issue 20, session 15). The copy costs one memcpy of the frame.
    """
    return bytes(memoryview(packed))


def seal_compressed(kind: Kind, frame: bytes, *, keys: DomainKeys | None = None,
                    binding: bytes = b"") -> tuple[bytes, bytes | memoryview]:
    """:func:`seal_parts` of a payload already compressed (a zstd ``frame``: a delta
    chunk's, objects/deltas.py), as ``(header, payload)``."""
    return _wrapped(kind, FLAG_ZSTD, frame, keys, binding)


def _wrapped(kind: Kind, flags: int, payload: bytes | memoryview, keys: DomainKeys | None,
             binding: bytes) -> tuple[bytes, bytes | memoryview]:
    if keys is None:
        return _HEADER.pack(MAGIC, VERSION, int(kind), flags, 0), payload
    header = _HEADER.pack(MAGIC, VERSION, int(kind), flags | FLAG_ENCRYPTED, 0)
    if kind in CONTENT_KINDS:
        stored, salt = b"", bytes([kind]) + binding
    else:
        stored = salt = os.urandom(_SALT_SIZE)
    # No copy of the payload: the prefix goes with the header part, so a pack
    # appends the ciphertext as it came out of the cipher.
    sealed = keys.cipher.seal(salt, payload, header + keys.key_id + binding)
    return header + keys.key_id + stored, sealed


class AdaptiveSealer:
    """Seals a run of blobs (a pack's), giving up on compression where it never pays.

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
        self, kind: Kind, plaintext: bytes | memoryview, *, keys: DomainKeys | None = None,
        binding: bytes = b"",
    ) -> tuple[bytes, bytes | memoryview]:
        if self._skip > 0:
            self._skip -= 1
            return seal_parts(kind, plaintext, None, keys=keys, binding=binding)
        header, payload = seal_parts(kind, plaintext, self._compression, keys=keys,
                                     binding=binding)
        if compressed(header):
            self._misses = 0
        else:
            self._misses += 1
            if self._misses >= self._give_up_after:
                self._skip = self._probe_every - 1
        return header, payload


def open_envelope(
    data: bytes | memoryview, *, expected_kind: Kind | None, raw_length: int | None, what: str,
    keys: DomainKeys | None = None, binding: bytes = b"", dictionary: bytes | None = None,
) -> tuple[Kind, bytes]:
    """Check the header and return ``(kind, plaintext)``.

    ``raw_length`` bounds decompression (a hostile object cannot expand without
    limit) and is checked exactly when given. ``what`` names the object in errors.
    With ``keys`` the object must be encrypted under them and bound to
    ``binding``; without, it must not be encrypted. A ``CHUNK_DELTA`` opens only with
    its ``dictionary`` (its bases' plaintexts joined, objects/deltas.py).
    """
    kind, flags = _checked_header(data, expected_kind, what)
    if kind is Kind.CHUNK_DELTA and (dictionary is None or not flags & FLAG_ZSTD):
        raise IntegrityError(f"{what} is a delta chunk: it opens only with its base chunks")
    payload: bytes | memoryview = memoryview(data)[HEADER_SIZE:]
    if flags & FLAG_ENCRYPTED or keys is not None:
        # the decrypted bytes are new: returned as they are when not compressed (a
        # restore of 400 MiB of small files copied them twice more, holding the GIL)
        payload = _decrypt(data, kind, flags, keys, binding, what)
    if flags & FLAG_ZSTD:
        limit = raw_length if raw_length is not None else 1 << 31
        try:
            declared = zstandard.frame_content_size(payload)
            if declared > limit:
                raise IntegrityError(
                    f"{what} declares {declared} bytes of content, expected {limit}"
                )
            if kind is Kind.CHUNK_DELTA:
                assert dictionary is not None
                plaintext = _delta_decompressor(dictionary).decompress(
                    payload, max_output_size=limit)
            else:
                plaintext = _decompressor().decompress(payload, max_output_size=limit)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{what} does not decompress: {exc}") from None
    else:
        plaintext = payload if type(payload) is bytes else bytes(payload)
    if raw_length is not None and len(plaintext) != raw_length:
        raise IntegrityError(
            f"{what} has {len(plaintext)} bytes of content, the index says {raw_length}"
        )
    return kind, plaintext


def open_envelope_into(
    data: bytes | memoryview, out: memoryview, scratch: bytearray, *, expected_kind: Kind,
    what: str, keys: DomainKeys | None = None, binding: bytes = b"",
) -> bytearray:
    """:func:`open_envelope` writing the plaintext into ``out``, which is exactly its
    length (the index's raw length), with no buffer allocated per object: decrypted
    into ``scratch`` (returned, grown when too small: pass it again), decompressed
    straight into ``out``. Same checks and errors; ``out``'s bytes are the plaintext
    only if this returned (after a failure they are garbage, never to be used)."""
    kind, flags = _checked_header(data, expected_kind, what)
    if kind is Kind.CHUNK_DELTA:  # callers open deltas with open_envelope and the bases
        raise IntegrityError(f"{what} is a delta chunk: it opens only with its base chunks")
    payload = memoryview(data)[HEADER_SIZE:]
    if flags & FLAG_ENCRYPTED or keys is not None:
        payload, scratch = _decrypt_into(data, kind, flags, keys, binding, what, scratch)
    if not flags & FLAG_ZSTD:
        if len(payload) != len(out):
            raise IntegrityError(
                f"{what} has {len(payload)} bytes of content, the index says {len(out)}"
            )
        out[:] = payload
        return scratch
    try:
        declared = zstandard.frame_content_size(payload)
        if declared == -1:  # a frame that does not say its size (our writers' always do)
            plaintext = _decompressor().decompress(payload, max_output_size=len(out))
            if len(plaintext) != len(out):
                raise IntegrityError(f"{what} has {len(plaintext)} bytes of content, the "
                                     f"index says {len(out)}")
            out[:] = plaintext
            return scratch
        if declared != len(out):
            raise IntegrityError(
                f"{what} declares {declared} bytes of content, the index says {len(out)}"
            )
        # Straight into ``out``: the frame says its size, so one call usually fills it.
        reader = _decompressor().stream_reader(payload, read_across_frames=False)
        done = 0
        while done < len(out):
            got = reader.readinto(out[done:])
            if not got:
                raise IntegrityError(f"{what} does not decompress: the frame is truncated")
            done += got
        if reader.readinto(bytearray(1)):  # more than it declared: not what was sealed
            raise IntegrityError(f"{what} decompresses past its declared size")
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{what} does not decompress: {exc}") from None
    return scratch


def _checked_header(data: bytes | memoryview, expected_kind: Kind | None,
                    what: str) -> tuple[Kind, int]:
    if len(data) < HEADER_SIZE:
        raise IntegrityError(f"{what} is truncated ({len(data)} bytes): run 'artifactstore verify'")
    magic, version, kind_no, flags, reserved = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or reserved != 0 or flags & ~_KNOWN_FLAGS:
        raise IntegrityError(f"{what} has a damaged or unknown envelope header")
    kind = KIND_OF.get(kind_no)  # a dict, not an enum call: once per blob read
    if kind is None:
        raise IntegrityError(f"{what} has unknown kind {kind_no}")
    if expected_kind is not None and kind != expected_kind:
        raise IntegrityError(f"{what} holds a {kind.name}, expected {expected_kind.name}")
    return kind, flags


def _decrypt(data: bytes | memoryview, kind: Kind, flags: int, keys: DomainKeys | None,
             binding: bytes, what: str) -> bytes:
    salt, sealed, aad = _sealed(data, kind, flags, keys, binding, what)
    assert keys is not None  # _sealed refused None
    # the sealed bytes as a view: the cipher reads any buffer (no copy of the payload)
    return keys.cipher.open(salt, sealed, aad, what=what)


def _decrypt_into(data: bytes | memoryview, kind: Kind, flags: int, keys: DomainKeys | None,
                  binding: bytes, what: str, scratch: bytearray,
                  ) -> tuple[memoryview, bytearray]:
    salt, sealed, aad = _sealed(data, kind, flags, keys, binding, what)
    assert keys is not None
    size = len(sealed) - _TAG_SIZE
    if size < 0:
        raise IntegrityError(f"{what} is truncated")
    if len(scratch) < size:
        scratch = bytearray(max(size, 2 * len(scratch)))
    view = memoryview(scratch)[:size]
    keys.cipher.open_into(salt, sealed, aad, view, what=what)
    return view, scratch


def _sealed(data: bytes | memoryview, kind: Kind, flags: int, keys: DomainKeys | None,
            binding: bytes, what: str) -> tuple[bytes, memoryview, bytes]:
    """The salt, the sealed bytes and the associated data of an encrypted envelope."""
    if keys is None:
        raise AccessDeniedError(
            f"{what} is encrypted; open its project with an identity that holds the key"
        )
    if not flags & FLAG_ENCRYPTED:
        # Why: an attacker with write access could otherwise plant plaintext objects
        # (a forged version record) in a private project.
        raise IntegrityError(f"{what} is not encrypted in an encrypted domain: it was planted")
    view = memoryview(data)[HEADER_SIZE:]
    key_id_size = len(keys.key_id)
    if bytes(view[:key_id_size]) != keys.key_id:
        if kind in CONTENT_KINDS or kind in (Kind.PACK_TRAILER, Kind.INDEX):
            # These live in the folder named by their key id: another id is damage.
            raise IntegrityError(f"{what} names another key id: it is damaged")
        raise AccessDeniedError(
            f"{what} is encrypted under another key (key id {bytes(view[:key_id_size]).hex()}); "
            "it belongs to another project or key epoch"
        )
    rest = view[key_id_size:]
    if kind in CONTENT_KINDS:
        salt = bytes([kind]) + binding
    else:
        if len(rest) < _SALT_SIZE:
            raise IntegrityError(f"{what} is truncated")
        salt, rest = bytes(rest[:_SALT_SIZE]), rest[_SALT_SIZE:]
    header = bytes(memoryview(data)[:HEADER_SIZE])
    return salt, rest, header + keys.key_id + binding
