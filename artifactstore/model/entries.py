"""Entries of a tree: files stored in the store and references to data elsewhere.

Implements docs/design.md, "Trees" (entry records). Vocabulary:

- a :class:`FileEntry` is a file whose bytes are stored as chunks: its path in
  the artifact, size, digest (plain BLAKE3 of its bytes, what ``b3sum``
  prints), chunk refs, permission bits and media type;
- a :class:`ReferenceEntry` names data the store does not hold (``s3://``,
  ``gs://``, ``https://``, ``file://``) with what is known to check it later;
- an entry *record* is the msgpack map a tree node stores for an entry: the
  entry's last path segment (``"n"``) and short keys for its fields. A file
  with more than :data:`INLINE_CHUNKS_MAX` chunks keeps its chunk list in
  separate ``CHUNKLIST`` blobs (*parts*), so no node grows with a file's size.
"""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from artifactstore.core.digest import DIGEST_SIZE, Digest, checked_digest
from artifactstore.core.encoding import pack, unpack
from artifactstore.core.errors import IntegrityError, InvalidInputError
from artifactstore.objects.blobrefs import ChunkRef, FileRef
from artifactstore.objects.envelope import Kind

__all__ = [
    "CHUNKLIST_MAX", "CHUNKLIST_MODULUS", "DEFAULT_MEDIA_TYPE", "INLINE_CHUNKS_MAX", "Entry",
    "FileEntry", "GetBlob", "PutBlob", "ReferenceEntry", "decode_entry", "decode_plain_file",
    "digest_field",
    "encode_entry", "guess_media_type", "uint_field",
]  # fmt: skip

PutBlob = Callable[[Kind, bytes], Digest]
GetBlob = Callable[[Digest], bytes]

DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"

INLINE_CHUNKS_MAX: Final = 1000
"""Files with more chunks than this store their chunk list in CHUNKLIST parts."""

CHUNKLIST_MODULUS: Final = 8192
"""A chunk ends a chunk-list part when the first 8 bytes of its id (little endian)
are 0 modulo this: parts are content-defined, so an edit in a huge file rewrites
one or two parts, not every part after the edit (chunk ids are uniform hashes)."""

CHUNKLIST_MAX: Final = 65536
"""Most chunks in one part (about 2.6 MB of msgpack)."""


@functools.cache
def _mime() -> mimetypes.MimeTypes:
    """A private table: the system's mime.types files differ between machines, and the
    media type is part of a node's bytes, so it must not depend on the host. Made on
    first use: making one reads the system's files (~5 ms), which reads never need."""
    return mimetypes.MimeTypes()


#: to build a value whose fields the caller checked, without its constructor's checks
_new_object = object.__new__
_set_field = object.__setattr__


def guess_media_type(path: str) -> str:
    """The media type Python's built-in table gives the name, else octet-stream."""
    name = path.rsplit("/", 1)[-1]
    segments = name.lstrip(".").split(".")  # leading dots make no suffix (".bashrc")
    if len(segments) < 2 or any(c in name for c in ":?#;"):
        return _guess(name)
    # Only the last two suffixes count (an encoding like .gz, then the type), so a
    # million names share a few cached answers (it was 5% of re-logging 100,000 files).
    return _guess_suffixes("x." + ".".join(segments[1:][-2:]))


def _guess(name: str) -> str:
    guessed, _ = _mime().guess_type(name, strict=False)
    return guessed or DEFAULT_MEDIA_TYPE


@functools.lru_cache(maxsize=1024)
def _guess_suffixes(name: str) -> str:
    return _guess(name)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file stored as chunks. ``mode`` keeps permission bits only (``& 0o777``)."""

    path: str
    size: int
    digest: Digest
    chunks: tuple[ChunkRef, ...]
    mode: int = 0o644
    media_type: str = DEFAULT_MEDIA_TYPE

    def __post_init__(self) -> None:
        if type(self.size) is not int or self.size < 0:
            raise InvalidInputError(f"file {self.path!r}: size must be an int >= 0")
        if any(c.length <= 0 for c in self.chunks):
            raise InvalidInputError(f"file {self.path!r}: a chunk cannot be empty")
        if sum(c.length for c in self.chunks) != self.size:
            raise InvalidInputError(
                f"file {self.path!r}: chunk lengths do not add up to its size {self.size}"
            )
        if type(self.mode) is not int or self.mode < 0:
            raise InvalidInputError(f"file {self.path!r}: mode must be an int >= 0")
        object.__setattr__(self, "mode", self.mode & 0o777)
        if not isinstance(self.chunks, tuple):
            object.__setattr__(self, "chunks", tuple(self.chunks))

    @classmethod
    def from_ref(
        cls, path: str, ref: FileRef, *, mode: int = 0o644, media_type: str | None = None
    ) -> FileEntry:
        """An entry for a file the object store wrote; guesses the media type when None."""
        if media_type is None:
            media_type = guess_media_type(path)
        return cls(path, ref.size, ref.digest, ref.chunks, mode, media_type)

    def file_ref(self) -> FileRef:
        """What the object store needs to read the file back."""
        # FileRef's own check (chunk lengths add up to the size) held when this was made
        ref = _new_object(FileRef)
        _set_field(ref, "digest", self.digest)
        _set_field(ref, "size", self.size)
        _set_field(ref, "chunks", self.chunks)
        return ref


@dataclass(frozen=True, slots=True)
class ReferenceEntry:
    """Data kept outside the store, with what is known to check it when fetched."""

    path: str
    uri: str
    size: int | None
    etag: str | None = None
    version_id: str | None = None
    digest: Digest | None = None
    media_type: str = DEFAULT_MEDIA_TYPE

    def __post_init__(self) -> None:
        if type(self.uri) is not str or not self.uri:
            raise InvalidInputError(f"reference {self.path!r}: the URI must be a non-empty str")
        if self.size is not None and (type(self.size) is not int or self.size < 0):
            raise InvalidInputError(f"reference {self.path!r}: size must be None or an int >= 0")


Entry = FileEntry | ReferenceEntry


# -- writing ---------------------------------------------------------------------------


def encode_entry(name: str, entry: Entry, put_blob: PutBlob) -> dict[str, Any]:
    """The record of ``entry`` under ``name``; stores chunk-list parts of huge files."""
    if isinstance(entry, FileEntry):
        # Keys in canonical order (docs/design.md, "Canonical encoding"), so that
        # tree.pack_node can hand records to msgpack as they are (the same bytes).
        record: dict[str, Any] = {
            "n": name, "t": "f", "mt": entry.media_type, "mode": entry.mode, "size": entry.size,
        }  # fmt: skip
        if len(entry.chunks) > INLINE_CHUNKS_MAX:
            record["digest"] = entry.digest.raw
            record["chunklist"] = [
                [
                    put_blob(Kind.CHUNKLIST, _encode_part(part)).raw,
                    len(part),
                    sum(c.length for c in part),
                ]
                for part in _parts(entry.chunks)
            ]
        else:
            record["chunks"] = [[c.id.raw, c.length] for c in entry.chunks]
            record["digest"] = entry.digest.raw
        return record
    if isinstance(entry, ReferenceEntry):
        record = {"n": name, "t": "r", "mt": entry.media_type, "uri": entry.uri}
        if entry.version_id is not None:
            record["vid"] = entry.version_id
        if entry.etag is not None:
            record["etag"] = entry.etag
        record["size"] = entry.size
        if entry.digest is not None:
            record["digest"] = entry.digest.raw
        return record
    raise InvalidInputError(
        f"a tree holds FileEntry and ReferenceEntry values, not {type(entry).__name__}"
    )


def _parts(chunks: tuple[ChunkRef, ...]) -> Iterator[tuple[ChunkRef, ...]]:
    start = 0
    for i, chunk in enumerate(chunks):
        ends = int.from_bytes(chunk.id.raw[:8], "little") % CHUNKLIST_MODULUS == 0
        if ends or i + 1 - start >= CHUNKLIST_MAX:
            yield chunks[start : i + 1]
            start = i + 1
    if start < len(chunks):
        yield chunks[start:]


def _encode_part(part: tuple[ChunkRef, ...]) -> bytes:
    return pack({"version": 1, "chunks": [[c.id.raw, c.length] for c in part]})


# -- reading ---------------------------------------------------------------------------


def decode_plain_file(path: str, record: dict[str, Any]) -> FileEntry | None:
    """:func:`decode_entry` of the common record, a file listing its chunks inline, in
    one pass: None for any other record, valid or not (``decode_entry`` then decodes it
    or says what is wrong). Checks what ``decode_entry`` checks; the entry is built
    without the checks of ``FileEntry``'s constructor, which these include (a restore
    of 20,000 small files spent a fifth of its main thread decoding entries)."""
    try:
        if record["t"] != "f" or "chunklist" in record:
            return None
        size, mode, digest = record["size"], record["mode"], record["digest"]
        media_type, listed = record["mt"], record["chunks"]
    except KeyError:
        return None
    if (
        type(size) is not int or size < 0 or type(mode) is not int or not 0 <= mode <= 0o777
        or type(digest) is not bytes or len(digest) != DIGEST_SIZE
        or type(media_type) is not str or type(listed) is not list
    ):  # fmt: skip
        return None
    chunks = []
    total = 0
    for item in listed:
        if type(item) is not list or len(item) != 2:
            return None
        raw, length = item
        if type(raw) is not bytes or len(raw) != DIGEST_SIZE or type(length) is not int \
                or length <= 0:
            return None
        chunks.append(ChunkRef(checked_digest(raw), length))
        total += length
    if total != size:
        return None
    entry = _new_object(FileEntry)
    _set_field(entry, "path", path)
    _set_field(entry, "size", size)
    _set_field(entry, "digest", checked_digest(digest))
    _set_field(entry, "chunks", tuple(chunks))
    _set_field(entry, "mode", mode)
    _set_field(entry, "media_type", media_type)
    return entry


def decode_entry(path: str, record: dict[str, Any], get_blob: GetBlob, what: str) -> Entry:
    """The entry a file (``"f"``) or reference (``"r"``) record describes.

    ``what`` names the node in errors. Reads chunk-list parts of huge files.
    Every field is checked: stored bytes are untrusted (IntegrityError).
    """
    kind = record.get("t")
    media_type = _field(record, "mt", str, what)
    if kind == "f":
        size = uint_field(record.get("size"), "size", what)
        mode = uint_field(record.get("mode"), "mode", what)
        if mode > 0o777:
            raise IntegrityError(f"{what}: file {path!r} has mode {mode:o}, beyond 0o777")
        digest = digest_field(record.get("digest"), "digest", what)
        if ("chunks" in record) == ("chunklist" in record):
            raise IntegrityError(f"{what}: file {path!r} needs one of 'chunks' or 'chunklist'")
        if "chunks" in record:
            chunks = _chunk_refs(record["chunks"], what)
        else:
            chunks = _read_parts(record["chunklist"], get_blob, what)
        if sum(c.length for c in chunks) != size:
            raise IntegrityError(f"{what}: chunks of {path!r} do not add up to its size {size}")
        return FileEntry(path, size, digest, chunks, mode, media_type)
    if kind == "r":
        uri = _field(record, "uri", str, what)
        if not uri:
            raise IntegrityError(f"{what}: reference {path!r} has an empty URI")
        known = record.get("size")
        return ReferenceEntry(
            path,
            uri,
            None if known is None else uint_field(known, "size", what),
            _optional(record, "etag", what),
            _optional(record, "vid", what),
            None if "digest" not in record else digest_field(record["digest"], "digest", what),
            media_type,
        )
    raise IntegrityError(f"{what}: entry {path!r} has unknown type {kind!r}")


def _read_parts(parts: object, get_blob: GetBlob, what: str) -> tuple[ChunkRef, ...]:
    if type(parts) is not list or not parts:
        raise IntegrityError(f"{what}: 'chunklist' must be a non-empty array")
    chunks: list[ChunkRef] = []
    for part in parts:
        if type(part) is not list or len(part) != 3:
            raise IntegrityError(f"{what}: a chunk-list part must be [id, count, bytes]")
        part_id = digest_field(part[0], "chunklist id", what)
        count, length = uint_field(part[1], "count", what), uint_field(part[2], "bytes", what)
        where = f"chunk list {part_id.hex}"
        body = unpack(get_blob(part_id), what=where)
        if type(body) is not dict or type(body.get("version")) is not int or body["version"] != 1:
            raise IntegrityError(f"{where} is not a version-1 chunk list")
        refs = _chunk_refs(body.get("chunks"), where)
        if len(refs) != count or sum(c.length for c in refs) != length:
            raise IntegrityError(f"{where} does not hold the {count} chunks {what} lists")
        chunks += refs
    return tuple(chunks)


def _chunk_refs(value: object, what: str) -> tuple[ChunkRef, ...]:
    if type(value) is not list:
        raise IntegrityError(f"{what}: a chunk list must be an array")
    refs = []
    for item in value:
        if (
            type(item) is not list or len(item) != 2 or type(item[0]) is not bytes
            or len(item[0]) != DIGEST_SIZE or type(item[1]) is not int or item[1] <= 0
        ):  # fmt: skip
            raise IntegrityError(f"{what}: a chunk must be [id, length > 0]")
        refs.append(ChunkRef(Digest(item[0]), item[1]))
    return tuple(refs)


def _field(record: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = record.get(key)
    if type(value) is not kind:
        raise IntegrityError(f"{what}: field {key!r} must be a {kind.__name__}")
    return value


def _optional(record: dict[str, Any], key: str, what: str) -> str | None:
    value: str | None = None if key not in record else _field(record, key, str, what)
    return value


def uint_field(value: object, field: str, what: str) -> int:
    """``value`` if it is an int >= 0, else IntegrityError naming the field and node."""
    if type(value) is not int or value < 0:
        raise IntegrityError(f"{what}: field {field!r} must be an int >= 0")
    return value


def digest_field(value: object, field: str, what: str) -> Digest:
    """``value`` as a Digest if it is 32 bytes, else IntegrityError naming the field and node."""
    if type(value) is not bytes or len(value) != DIGEST_SIZE:
        raise IntegrityError(f"{what}: field {field!r} must be {DIGEST_SIZE} bytes")
    return Digest(value)
