"""Reading W&B's run log (``run-<id>.wandb`` of an offline run directory): the records
``wandb sync`` would upload, in order.

The file (W&B's ``datastore`` format) is a 7-byte header (``:W&B``, magic ``0xBEE1``,
version 0) followed by LevelDB's log format: blocks of 32 KiB holding records of a
7-byte header (CRC-32 of the type byte and the data, little-endian length, type: 1 full,
2 first, 3 middle, 4 last) and data; a block's tail shorter than a header is padding.
Each whole record is a ``wandb.proto.wandb_internal_pb2.Record`` (protobuf), parsed with
the wandb package's own definitions (needed only here: ``pip install wandb``). A record
whose CRC does not match is refused naming the file and its offset.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artifactstore.core.errors import IntegrityError, InvalidInputError

__all__ = ["read_records"]

_HEADER = b":W&B"
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _chunks(path: Path) -> Iterator[bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read it ({exc.strerror})") from None
    if data[:4] != _HEADER or len(data) < 7:
        raise InvalidInputError(f"{path}: not a W&B run log (no ':W&B' header)")
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:
            pos += _BLOCK - pos % _BLOCK  # padding at a block's end
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if crc == 0 and length == 0 and kind == 0:  # a zero-filled tail
            pos += 7
            continue
        body = data[pos + 7:pos + 7 + length]
        if len(body) < length or zlib.crc32(bytes([kind]) + body) & 0xFFFFFFFF != crc:
            raise IntegrityError(f"{path}: the record at byte {pos} fails its CRC-32 (the "
                                 "run log was changed or damaged); nothing was imported")
        pos += 7 + length
        if kind in (_FULL, _FIRST):
            pending = body
        else:
            pending += body
        if kind in (_FULL, _LAST):
            yield pending
            pending = b""


def read_records(path: Path) -> list[Any]:
    """Every record of the run log at ``path``, parsed, in order."""
    try:
        from wandb.proto import wandb_internal_pb2
    except ImportError:
        raise InvalidInputError("import-from wandb reads W&B's records with the wandb "
                                "package: pip install wandb") from None
    records = []
    for raw in _chunks(path):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        try:
            record.ParseFromString(raw)
        except Exception:  # protobuf's DecodeError: a record that is no Record
            raise InvalidInputError(f"{path}: a record is not a W&B record") from None
        records.append(record)
    return records
