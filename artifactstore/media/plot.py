"""``Plot``: a chart logged in a run (docs/design.md §12.7).

A matplotlib figure (anything with ``savefig``: no import of matplotlib here) saved
as SVG (the default) or PNG, or a Vega-Lite spec (a dict), stored as canonical JSON
with ``format: vega-lite``.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Mapping
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import (
    MediaValue,
    Rendered,
    canonical_json,
    check_caption,
    file_reference,
    plain,
)
from artifactstore.media.sniff import image_size

__all__ = ["Plot"]


class Plot(MediaValue):
    """``Plot(figure, format="svg")`` or ``Plot({"$schema": ..., "mark": ...})``."""

    def __init__(self, figure_or_spec: Any, format: str = "svg",
                 caption: str | None = None) -> None:
        self.caption = check_caption(caption)
        self.width: int | None = None
        self.height: int | None = None
        if isinstance(figure_or_spec, Mapping):
            self.data = canonical_json(plain(dict(figure_or_spec), "a Vega-Lite spec"))
            self.format = "vega-lite"
            return
        if not callable(getattr(figure_or_spec, "savefig", None)):
            raise InvalidInputError(
                "Plot takes a matplotlib figure (anything with savefig) or a Vega-Lite spec "
                f"dict, got {type(figure_or_spec).__name__}"
            )
        if format not in ("svg", "png"):
            raise InvalidInputError(f"a figure is saved as 'svg' or 'png', got {format!r:.20}")
        buffer = io.BytesIO()
        # No date and fixed SVG ids in the file: the same figure gives the same bytes, so
        # a plot logged again unchanged is stored once. matplotlib is already imported
        # when there is a figure: it is looked up, not imported.
        metadata = {"Date": None} if format == "svg" else {"Software": None}
        matplotlib = sys.modules.get("matplotlib")
        rc_context = getattr(matplotlib, "rc_context", None)
        fixed = rc_context({"svg.hashsalt": "artifactstore"}) if callable(rc_context) else None
        with fixed if fixed is not None else contextlib.nullcontext():
            figure_or_spec.savefig(buffer, format=format, metadata=metadata)
        self.data, self.format = buffer.getvalue(), format
        if format == "png":
            size = image_size(self.data, "png")
            if size is not None:
                self.width, self.height = size

    def render(self, key: str, step: int) -> Rendered:
        return file_reference("plot", self.format, self.data, key, step, width=self.width,
                              height=self.height, caption=self.caption)
