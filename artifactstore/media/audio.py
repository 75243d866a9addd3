"""``Audio``: a sound clip logged in a run (docs/design.md §12.7).

From a numpy array (``N`` samples, or ``N x channels``; float in [-1, 1] or int16)
with its ``sample_rate``, written as 16-bit PCM WAV with the standard library's
``wave`` module (numpy, the ``[media]`` extra, reads the array); or a WAV, MP3, OGG
or FLAC file stored as it is.
"""

from __future__ import annotations

import io
import os
import wave
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import MediaValue, Rendered, check_caption, file_reference, require
from artifactstore.media.sniff import file_format, read_file

__all__ = ["Audio", "encode_wav"]


def encode_wav(array: Any, sample_rate: int) -> bytes:
    """A numpy clip as 16-bit PCM WAV bytes."""
    np = require("numpy", "media", "audio clips")
    arr = np.asarray(array)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or not 1 <= arr.shape[1] <= 64:
        raise InvalidInputError(
            f"an audio array is N samples or N x channels, got shape {tuple(arr.shape)}"
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or np.abs(arr).max() > 1:
            raise InvalidInputError("a float audio clip holds values in [-1, 1]")
        arr = np.round(arr * 32767).astype("<i2")
    elif arr.dtype == np.int16:
        arr = arr.astype("<i2")
    else:
        raise InvalidInputError(f"an audio array is float in [-1, 1] or int16, got {arr.dtype}")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(int(arr.shape[1]))
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(np.ascontiguousarray(arr).tobytes())
    return buffer.getvalue()


def wav_facts(data: bytes) -> tuple[int, float] | None:
    """``(sample_rate, duration)`` of a WAV file's header; None if it cannot be read."""
    try:
        with wave.open(io.BytesIO(data), "rb") as clip:
            rate = clip.getframerate()
            return rate, round(clip.getnframes() / rate, 6) if rate else 0.0
    except (wave.Error, EOFError):
        return None


class Audio(MediaValue):
    """A sound clip: ``Audio(array, sample_rate=16000, caption=None)`` or ``Audio(path)``."""

    def __init__(self, data_or_path: Any, sample_rate: int | None = None,
                 caption: str | None = None) -> None:
        self.caption = check_caption(caption)
        self.sample_rate: int | None
        self.duration: float | None
        if isinstance(data_or_path, str | os.PathLike):
            data = read_file(data_or_path, "audio")
            fmt = file_format(data)
            if fmt not in ("wav", "mp3", "ogg", "flac"):
                raise InvalidInputError(
                    f"audio file {os.fspath(data_or_path)!r} is not WAV, MP3, OGG or FLAC"
                )
            facts = wav_facts(data) if fmt == "wav" else None
            self.sample_rate, self.duration = facts if facts else (sample_rate, None)
            self.data, self.format = data, fmt
            return
        if not hasattr(data_or_path, "shape"):
            raise InvalidInputError(
                f"Audio takes a numpy array or a file path, got {type(data_or_path).__name__}"
            )
        if type(sample_rate) is not int or not 1 <= sample_rate <= 1_000_000:
            raise InvalidInputError("Audio from an array needs sample_rate, an int in Hz")
        self.data, self.format = encode_wav(data_or_path, sample_rate), "wav"
        self.sample_rate, self.duration = wav_facts(self.data) or (sample_rate, None)

    def render(self, key: str, step: int) -> Rendered:
        return file_reference("audio", self.format, self.data, key, step,
                              sample_rate=self.sample_rate, duration=self.duration,
                              caption=self.caption)
