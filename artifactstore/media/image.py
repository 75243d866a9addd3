"""``Image``: a picture logged in a run (docs/design.md §12.7).

From a numpy array (``HxW``, ``HxWx1``, ``HxWx3`` or ``HxWx4``; ``uint8``, or float
in [0, 1]), a PIL image (both encoded as PNG with Pillow, the ``[media]`` extra), or
a PNG, JPEG or GIF file stored as it is. Optional annotations as W&B writes them:
``boxes`` (``{name: {"box_data": [...], "class_labels": {...}}}``, kept as JSON facts)
and ``masks`` (``{name: {"mask_data": HxW ints, "class_labels": {...}}}``, each mask
stored as a PNG file of the same run and named in the facts).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import (
    MediaValue,
    Rendered,
    check_caption,
    file_reference,
    plain,
    require,
)
from artifactstore.media.sniff import file_format, image_size, read_file

__all__ = ["Image", "encode_png"]


def encode_png(array: Any, what: str = "images") -> tuple[bytes, int, int]:
    """A numpy image as PNG bytes, with its width and height."""
    np = require("numpy", "media", what)
    pil = require("PIL.Image", "media", what, "Pillow")
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidInputError(
            f"an image array is HxW, HxWx1, HxWx3 or HxWx4, got shape {tuple(arr.shape)}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidInputError(f"an image array cannot be empty, got shape {tuple(arr.shape)}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise InvalidInputError(
                "a float image holds values in [0, 1]; scale it or pass uint8"
            )
        arr = np.round(arr * 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise InvalidInputError(
            f"an image array is uint8 or float in [0, 1], got {arr.dtype}"
        )
    buffer = io.BytesIO()
    pil.fromarray(np.ascontiguousarray(arr)).save(buffer, format="PNG")
    return buffer.getvalue(), int(arr.shape[1]), int(arr.shape[0])


def _pil_png(image: Any) -> tuple[bytes, int, int]:
    require("PIL.Image", "media", "images", "Pillow")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    width, height = image.size
    return buffer.getvalue(), int(width), int(height)


class Image(MediaValue):
    """A picture: ``Image(array_or_pil_or_path, caption=None, masks=None, boxes=None)``."""

    def __init__(self, data_or_path: Any, caption: str | None = None, *,
                 masks: Mapping[str, Mapping[str, Any]] | None = None,
                 boxes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.caption = check_caption(caption)
        self.width: int | None
        self.height: int | None
        value = data_or_path
        if isinstance(value, str | os.PathLike):
            data = read_file(value, "image")
            fmt = file_format(data)
            if fmt not in ("png", "jpeg", "gif"):
                raise InvalidInputError(
                    f"image file {os.fspath(value)!r} is not PNG, JPEG or GIF; convert it first"
                )
            size = image_size(data, fmt)
            self.format = fmt
            self.data = data
            self.width, self.height = size if size is not None else (None, None)
        elif hasattr(value, "save") and hasattr(value, "size") and hasattr(value, "mode"):
            self.data, self.width, self.height = _pil_png(value)
            self.format = "png"
        elif hasattr(value, "shape") and hasattr(value, "dtype"):
            self.data, self.width, self.height = encode_png(value)
            self.format = "png"
        else:
            raise InvalidInputError(
                f"Image takes a numpy array, a PIL image or a file path, "
                f"got {type(value).__name__}"
            )
        self.boxes = None if boxes is None else plain(dict(boxes), "boxes")
        self.masks = {str(name): _mask(name, spec) for name, spec in (masks or {}).items()}

    def render(self, key: str, step: int) -> Rendered:
        files: dict[str, bytes] = {}
        masks: dict[str, Any] = {}
        for name, (png, labels) in sorted(self.masks.items()):
            mask = file_reference("image", "png", png, key, step)
            files.update(mask.files)
            masks[name] = {**mask.reference, "class_labels": labels}
        main = file_reference("image", self.format, self.data, key, step, width=self.width,
                              height=self.height, caption=self.caption, boxes=self.boxes,
                              masks=masks or None)
        files.update(main.files)
        return Rendered(main.reference, files)


def _mask(name: object, spec: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    if not isinstance(spec, Mapping) or "mask_data" not in spec:
        raise InvalidInputError(
            f"mask {name!r:.40} is a mapping with 'mask_data' (HxW ints 0-255) and "
            "optionally 'class_labels'"
        )
    np = require("numpy", "media", "masks")
    data = np.asarray(spec["mask_data"])
    if data.ndim != 2 or data.dtype.kind not in "iub" or (data.size and (
            data.min() < 0 or data.max() > 255)):
        raise InvalidInputError(f"mask {name!r:.40}: mask_data is HxW ints in 0-255")
    png, _, _ = encode_png(data.astype(np.uint8), "masks")
    labels = {str(k): str(v) for k, v in dict(spec.get("class_labels") or {}).items()}
    return png, labels
