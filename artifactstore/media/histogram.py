"""``Histogram``: a distribution logged in a run, inline in the row (docs/design.md §12.7).

From values (a numpy array or a sequence; non-finite values are left out), binned
into ``num_bins`` equal bins with numpy (the ``[media]`` extra), or from precomputed
``np_histogram=(counts, edges)`` (no extra needed). The reference is
``{"_type": "histogram", "bins": [edge, ...], "counts": [n, ...]}``, at most 512 bins.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import MAX_BINS, MediaValue, Rendered, plain, require

__all__ = ["Histogram"]


class Histogram(MediaValue):
    """``Histogram(values, num_bins=64)`` or ``Histogram(np_histogram=(counts, edges))``."""

    def __init__(self, sequence: Any = None, *, np_histogram: Sequence[Any] | None = None,
                 num_bins: int = 64) -> None:
        if (sequence is None) == (np_histogram is None):
            raise InvalidInputError("Histogram takes values or np_histogram=(counts, edges)")
        if type(num_bins) is not int or not 1 <= num_bins <= MAX_BINS:
            raise InvalidInputError(f"num_bins is an int in 1-{MAX_BINS}, got {num_bins!r:.20}")
        if np_histogram is not None:
            if not isinstance(np_histogram, Sequence) or len(np_histogram) != 2:
                raise InvalidInputError("np_histogram is a pair (counts, edges)")
            counts = plain(np_histogram[0], "np_histogram")
            edges = plain(np_histogram[1], "np_histogram")
        else:
            np = require("numpy", "media", "histograms of values")
            values = np.asarray(sequence, dtype=float).ravel()
            values = values[np.isfinite(values)]
            found, bins = np.histogram(values, bins=num_bins)
            counts, edges = found.tolist(), bins.tolist()
        if (not isinstance(counts, list) or not isinstance(edges, list)
                or not 1 <= len(counts) <= MAX_BINS or len(edges) != len(counts) + 1):
            raise InvalidInputError(
                f"a histogram has 1-{MAX_BINS} counts and one more edge than counts"
            )
        if not all(_number(c) and c >= 0 for c in counts):
            raise InvalidInputError("histogram counts are numbers >= 0")
        if not all(_number(e) for e in edges) or any(a > b for a, b in itertools.pairwise(edges)):
            raise InvalidInputError("histogram edges are finite numbers in increasing order")
        self.counts: list[int | float] = [int(c) if float(c).is_integer() else float(c)
                                          for c in counts]
        self.bins: list[float] = [float(e) for e in edges]

    def render(self, key: str, step: int) -> Rendered:
        return Rendered({"_type": "histogram", "bins": self.bins, "counts": self.counts})


def _number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
