"""What every media value shares (docs/design.md §12.7).

Vocabulary:

- **media value**: an object of this folder (``Image``, ``Audio``, ...) given to
  ``run.log()``. It knows how to turn itself into bytes; it stores nothing.
- **rendering** (:class:`Rendered`): what a value becomes when logged under a key at
  a step: its **reference** (the map the metrics row holds in its place) and the
  **files** it needs stored (path in the run's media artifact -> bytes).
- **media file reference**: a reference with ``path``, ``digest`` (plain BLAKE3 hex
  of the file), ``size`` and ``format``; **inline** references (histograms, short
  texts) carry their values and need no file.

A file's path is ``<key>/<step:012d>-<digest[:16]>.<ext>``: the logging key with its
``/`` kept as folders, so equal bytes logged at one key and step share one file.
"""

from __future__ import annotations

import importlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import InvalidInputError, MissingExtraError
from artifactstore.model.paths import validate_path

__all__ = [
    "FILE_TYPES", "FORMATS", "MAX_BINS", "MAX_INLINE_TEXT", "MediaValue", "Rendered",
    "canonical_json", "check_caption", "file_reference", "is_file_reference", "is_reference",
    "media_path", "plain", "require",
]  # fmt: skip

#: the ``_type`` of references that name a file of the run's media artifact
FILE_TYPES: Final = frozenset({"image", "audio", "video", "html", "table", "plot", "text"})
#: every ``_type`` a reference may have
TYPES: Final = FILE_TYPES | {"histogram"}
#: file formats and the extension their files get
FORMATS: Final = {
    "png": "png", "jpeg": "jpg", "gif": "gif", "wav": "wav", "mp3": "mp3", "ogg": "ogg",
    "flac": "flac", "mp4": "mp4", "webm": "webm", "html": "html", "json": "json",
    "svg": "svg", "vega-lite": "vl.json", "txt": "txt",
}  # fmt: skip
#: histograms hold at most this many bins (design §12.7)
MAX_BINS: Final = 512
#: texts up to this many bytes of UTF-8 stay in the row; longer ones become a file
MAX_INLINE_TEXT: Final = 4096
#: captions longer than this are refused (they travel in every row)
MAX_CAPTION: Final = 4096


def require(module: str, extra: str, what: str, package: str | None = None) -> ModuleType:
    """Import the optional ``module`` or raise one line naming the extra that brings it,
    e.g. "images need Pillow: pip install 'artifactstore[media]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"{what} need {package or module}: pip install 'artifactstore[{extra}]'"
        ) from None


@dataclass(frozen=True)
class Rendered:
    """A value logged at one key and step: the row's reference and the files it names."""

    reference: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


class MediaValue(ABC):
    """Base of the values ``run.log()`` accepts besides numbers, bools and strings."""

    @abstractmethod
    def render(self, key: str, step: int) -> Rendered:
        """The reference and files of this value logged as ``key`` at ``step``."""


def check_caption(caption: object) -> str | None:
    if caption is None:
        return None
    if not isinstance(caption, str) or len(caption) > MAX_CAPTION:
        raise InvalidInputError(f"a caption is a str of at most {MAX_CAPTION} characters")
    return caption


def media_path(key: str, step: int, digest_hex: str, fmt: str) -> str:
    """``<key>/<step:012d>-<digest[:16]>.<ext>`` (design §12.7), checked as an artifact path."""
    if not isinstance(key, str) or not key:
        raise InvalidInputError("a media key is a non-empty str")
    try:
        return validate_path(f"{key}/{step:012d}-{digest_hex[:16]}.{FORMATS[fmt]}")
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"metric {key!r:.60} cannot name media files: {exc}; use names like 'val/img'"
        ) from None


def file_reference(kind: str, fmt: str, data: bytes, key: str, step: int,
                   **facts: Any) -> Rendered:
    """The rendering of one media file: reference (facts that are None left out) and file."""
    digest = hash_bytes(data).hex
    path = media_path(key, step, digest, fmt)
    reference: dict[str, Any] = {"_type": kind, "path": path, "digest": digest,
                                 "size": len(data), "format": fmt}
    reference.update({k: v for k, v in facts.items() if v is not None})
    return Rendered(reference, {path: data})


def is_reference(value: object) -> bool:
    """Whether ``value`` is a media reference map (inline or file)."""
    return isinstance(value, Mapping) and value.get("_type") in TYPES


def is_file_reference(value: object) -> bool:
    """Whether ``value`` is a reference to a media file (it has a ``path`` to resolve)."""
    return (isinstance(value, Mapping) and value.get("_type") in FILE_TYPES
            and isinstance(value.get("path"), str) and isinstance(value.get("digest"), str))


def plain(value: Any, what: str) -> Any:
    """``value`` as a JSON value: numpy scalars and arrays as Python ones; NaN as None."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise InvalidInputError(f"{what} holds an infinite number; JSON cannot store it")
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v, what) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, what) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return plain(tolist(), what)
    item = getattr(value, "item", None)
    if callable(item):
        return plain(item(), what)
    raise InvalidInputError(f"{what} holds a {type(value).__name__}, which JSON cannot store")


def canonical_json(value: Any) -> bytes:
    """One byte form per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
