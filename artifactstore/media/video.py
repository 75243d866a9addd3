"""``Video``: a clip logged in a run (docs/design.md §12.7).

From an MP4, WebM or GIF file stored as it is, or from numpy frames ``[T, H, W, C]``
(``uint8``, C = 3) encoded with PyAV (FFmpeg's libraries, the ``[video]`` extra):
H.264 in MP4 by default, VP9 in WebM with ``format="webm"``.
"""

from __future__ import annotations

import io
import os
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import MediaValue, Rendered, check_caption, file_reference, require
from artifactstore.media.sniff import file_format, image_size, read_file

__all__ = ["Video", "encode_video"]

_CODECS = {"mp4": "libx264", "webm": "libvpx-vp9"}


def encode_video(frames: Any, fps: float, fmt: str) -> bytes:
    """``[T, H, W, 3]`` uint8 frames as an MP4 (H.264) or WebM (VP9) file."""
    np = require("numpy", "media", "videos from arrays")
    av = require("av", "video", "videos from arrays", "PyAV")
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[3] != 3 or 0 in arr.shape or arr.dtype != np.uint8:
        raise InvalidInputError(
            f"video frames are uint8 [T, H, W, 3], got {arr.dtype} {tuple(arr.shape)}"
        )
    # yuv420p needs even sides: pad one row or column by repeating the edge
    height, width = arr.shape[1] + arr.shape[1] % 2, arr.shape[2] + arr.shape[2] % 2
    if (height, width) != arr.shape[1:3]:
        arr = np.pad(arr, ((0, 0), (0, height - arr.shape[1]), (0, width - arr.shape[2]),
                           (0, 0)), mode="edge")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(_CODECS[fmt], rate=_rate(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in arr:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _rate(fps: float) -> Any:
    from fractions import Fraction  # here: only encoding needs it

    return Fraction(fps).limit_denominator(1001)


class Video(MediaValue):
    """A clip: ``Video(frames, fps=4, format="mp4", caption=None)`` or ``Video(path)``."""

    def __init__(self, data_or_path: Any, fps: float = 4, format: str | None = None,
                 caption: str | None = None) -> None:
        self.caption = check_caption(caption)
        self.frames: int | None = None
        self.fps: float | None = None
        self.width: int | None = None
        self.height: int | None = None
        if isinstance(data_or_path, str | os.PathLike):
            data = read_file(data_or_path, "video")
            fmt = file_format(data)
            if fmt not in ("mp4", "webm", "gif"):
                raise InvalidInputError(
                    f"video file {os.fspath(data_or_path)!r} is not MP4, WebM or GIF"
                )
            size = image_size(data, fmt)
            if size is not None:
                self.width, self.height = size
            self.data, self.format = data, fmt
            return
        if not hasattr(data_or_path, "shape"):
            raise InvalidInputError(
                f"Video takes numpy frames or a file path, got {type(data_or_path).__name__}"
            )
        fmt = format or "mp4"
        if fmt not in _CODECS:
            raise InvalidInputError(f"a video from frames is 'mp4' or 'webm', got {fmt!r:.20}")
        if not isinstance(fps, int | float) or isinstance(fps, bool) or not 0 < fps <= 1000:
            raise InvalidInputError(f"fps is a number in (0, 1000], got {fps!r:.20}")
        self.data, self.format = encode_video(data_or_path, fps, fmt), fmt
        shape = data_or_path.shape
        self.frames, self.height, self.width = int(shape[0]), int(shape[1]), int(shape[2])
        self.fps = float(fps)

    def render(self, key: str, step: int) -> Rendered:
        return file_reference("video", self.format, self.data, key, step, frames=self.frames,
                              fps=self.fps, width=self.width, height=self.height,
                              caption=self.caption,
                              duration=None if self.frames is None or not self.fps
                              else round(self.frames / self.fps, 6))
