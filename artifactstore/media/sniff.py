"""What a media file is, from its first bytes: format, and an image's size.

Files given by path are stored as they are; their format (and an image's width and
height) is read from the header here, so logging a file needs no optional library.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from artifactstore.core.errors import InvalidInputError, NotFoundError

__all__ = ["file_format", "image_size", "read_file"]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF87a", "gif"),
    (b"GIF89a", "gif"), (b"ID3", "mp3"), (b"\xff\xfb", "mp3"), (b"OggS", "ogg"),
    (b"fLaC", "flac"), (b"\x1aE\xdf\xa3", "webm"),
)  # fmt: skip


def read_file(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of the file at ``path``; one-line errors for what users get wrong."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{what} file {os.fspath(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{what} file {os.fspath(path)!r} is a folder") from None
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {what} file {os.fspath(path)!r}: {exc.strerror or exc}"
        ) from None


def file_format(data: bytes) -> str | None:
    """``png``, ``jpeg``, ``gif``, ``wav``, ``mp3``, ``ogg``, ``flac``, ``mp4``, ``webm``
    or None when the header is none of these."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[4:8] == b"ftyp":
        return "mp4"
    return None


def image_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG, GIF or JPEG header; None when not found."""
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if fmt == "gif" and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if fmt == "jpeg":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments to the first start-of-frame marker, which holds the size."""
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return int(width), int(height)
        at += 2 + length
    return None
