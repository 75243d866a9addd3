"""``Text`` and ``Html`` logged in a run (docs/design.md §12.7).

A text of at most 4 KiB of UTF-8 stays in the metrics row (``{"_type": "text",
"text": ...}``); a longer one becomes a ``txt`` file. An ``Html`` page is always a
file (``format: html``): from a str, bytes, or a file path (``pathlib.Path``).
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import (
    MAX_INLINE_TEXT,
    MediaValue,
    Rendered,
    check_caption,
    file_reference,
)
from artifactstore.media.sniff import read_file

__all__ = ["Html", "Text"]


class Text(MediaValue):
    """A text: ``Text("the model said ...", caption=None)``."""

    def __init__(self, text: str, caption: str | None = None) -> None:
        if not isinstance(text, str):
            raise InvalidInputError(f"Text takes a str, got {type(text).__name__}")
        try:
            self.data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(
                "Text must be valid UTF-8 (it holds a lone surrogate)"
            ) from None
        self.text = text
        self.caption = check_caption(caption)

    def render(self, key: str, step: int) -> Rendered:
        if len(self.data) <= MAX_INLINE_TEXT:
            reference: dict[str, Any] = {"_type": "text", "text": self.text}
            if self.caption is not None:
                reference["caption"] = self.caption
            return Rendered(reference)
        return file_reference("text", "txt", self.data, key, step, caption=self.caption)


class Html(MediaValue):
    """An HTML page: ``Html("<p>hi</p>")``, ``Html(b"...")`` or ``Html(Path("page.html"))``."""

    def __init__(self, data: str | bytes | os.PathLike[str], caption: str | None = None) -> None:
        if isinstance(data, PurePath | os.PathLike):
            self.data = read_file(data, "HTML")
        elif isinstance(data, bytes):
            self.data = data
        elif isinstance(data, str):
            self.data = data.encode("utf-8", errors="strict")
        else:
            raise InvalidInputError(
                f"Html takes a str, bytes or a pathlib.Path, got {type(data).__name__}"
            )
        self.caption = check_caption(caption)

    def render(self, key: str, step: int) -> Rendered:
        return file_reference("html", "html", self.data, key, step, caption=self.caption)
