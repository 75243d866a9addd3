"""Media files back into Python objects: PIL images and numpy arrays.

Images need Pillow and numpy, WAV clips numpy only (the standard ``wave`` module
reads them); both are the ``[media]`` extra.
"""

from __future__ import annotations

import io
import wave
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import require

__all__ = ["to_numpy", "to_pil"]

_PICTURES = ("png", "jpeg", "gif")


def to_pil(data: bytes, fmt: str) -> Any:
    """A PNG, JPEG or GIF file (an image, a mask or a PNG plot) as a PIL image."""
    if fmt not in _PICTURES:
        raise InvalidInputError(f"a {fmt} file is not a picture; read() gives its bytes")
    pil = require("PIL.Image", "media", "images", "Pillow")
    image = pil.open(io.BytesIO(data))
    image.load()
    return image


def to_numpy(data: bytes, fmt: str) -> Any:
    """A picture as an ``HxW[xC]`` uint8 array, a WAV clip as ``N x channels`` int16."""
    np = require("numpy", "media", "arrays of media")
    if fmt == "wav":
        with wave.open(io.BytesIO(data), "rb") as clip:
            if clip.getsampwidth() != 2:
                raise InvalidInputError("only 16-bit WAV clips become arrays; read() the bytes")
            frames = clip.readframes(clip.getnframes())
            return np.frombuffer(frames, dtype="<i2").reshape(-1, clip.getnchannels())
    if fmt in _PICTURES:
        return np.asarray(to_pil(data, fmt))
    raise InvalidInputError(f"a {fmt} file has no array form; read() gives its bytes")
