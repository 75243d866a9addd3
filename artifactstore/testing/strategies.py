"""Hypothesis strategies shared by the property and state-machine tests.

Only tests import this module: Hypothesis is a test extra, not a dependency of
the package. Vocabulary:

- **segment**: one component of a stored path, from a tiny alphabet (``a b . -``
  and two non-ASCII letters) so that siblings, shared prefixes and conflicts
  between a file and a folder of the same name are common.
- **pool names**: artifact and alias names drawn from a few fixed, valid names,
  so that a state machine's steps keep meeting the same artifacts and aliases.
- **seeded bytes**: pseudo-random bytes named by ``(length, seed)``; they shrink
  to short, zero-seeded inputs, which a plain ``st.binary`` of thousands of
  bytes does poorly.
- **flat file tree**: ``{file name: content}`` for a version, every content
  smaller than the smallest chunk (one chunk per distinct content), drawn from
  a small pool so that versions share files.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from hypothesis import strategies as st

__all__ = [
    "ALIASES",
    "ARTIFACTS",
    "alias_names",
    "artifact_names",
    "flat_file_trees",
    "json_values",
    "metadata",
    "msgpack_values",
    "path_segments",
    "paths",
    "scalars",
    "seeded_bytes",
    "utc_times",
]

T = TypeVar("T")

#: a few valid artifact names: "a" is a prefix of "ab", as keys must tell apart
ARTIFACTS = ("a", "ab", "model")
#: a few valid aliases
ALIASES = ("prod", "staging")


# -- names and paths -------------------------------------------------------------------


def path_segments() -> st.SearchStrategy[str]:
    """One path component: 1-3 characters of ``ab.-é日``, never ``.`` or ``..``."""
    return st.text(alphabet="ab.-é日", min_size=1, max_size=3).filter(
        lambda s: s not in {".", ".."})


def paths(max_depth: int = 4) -> st.SearchStrategy[str]:
    """A relative ``/``-separated path of 1..``max_depth`` segments."""
    return st.lists(path_segments(), min_size=1, max_size=max_depth).map("/".join)


def artifact_names(pool: Sequence[str] = ARTIFACTS) -> st.SearchStrategy[str]:
    """An artifact name from ``pool``."""
    return st.sampled_from(tuple(pool))


def alias_names(pool: Sequence[str] = ALIASES) -> st.SearchStrategy[str]:
    """An alias name from ``pool``."""
    return st.sampled_from(tuple(pool))


# -- values ----------------------------------------------------------------------------


def scalars(*, allow_nan: bool = False, max_text: int | None = 40,
            max_binary: int = 40) -> st.SearchStrategy[Any]:
    """Every scalar canonical msgpack stores: nil, bool, int64/uint64, float, str, bin."""
    return (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
            | st.floats(allow_nan=allow_nan) | st.text(max_size=max_text)
            | st.binary(max_size=max_binary))


def msgpack_values(max_leaves: int = 40) -> st.SearchStrategy[Any]:
    """Nested lists and maps (str or bin keys) of :func:`scalars`, as records hold them."""
    return st.recursive(
        scalars(),
        lambda inner: (st.lists(inner, max_size=6)
                       | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8), inner,
                                         max_size=6)),
        max_leaves=max_leaves,
    )


def json_values(reserved: Sequence[str] = ("$bytes", "$float"),
                max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Values an export manifest carries: str keys (none in ``reserved``), any float
    (NaN and infinities included), bytes."""
    return st.recursive(
        scalars(allow_nan=True, max_text=None, max_binary=20),
        lambda children: (st.lists(children, max_size=4)
                          | st.dictionaries(st.text(max_size=8).filter(
                              lambda k: k not in reserved), children, max_size=4)),
        max_leaves=max_leaves,
    )


def metadata(max_size: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """A version's or run's metadata: a map with str keys of nested values."""
    return st.dictionaries(st.text(max_size=8), msgpack_values(max_leaves=8),
                           max_size=max_size)


def utc_times(first: datetime = datetime(2000, 1, 1),
              last: datetime = datetime(2200, 1, 1)) -> st.SearchStrategy[datetime]:
    """An aware UTC datetime between ``first`` and ``last`` (naive bounds)."""
    return st.datetimes(min_value=first, max_value=last).map(lambda t: t.replace(tzinfo=UTC))


# -- contents --------------------------------------------------------------------------


def seeded_bytes(max_size: int, min_size: int = 0) -> st.SearchStrategy[bytes]:
    """``random.Random(seed).randbytes(length)`` for a drawn length and 32-bit seed."""
    return st.builds(lambda length, seed: random.Random(seed).randbytes(length),
                     st.integers(min_size, max_size), st.integers(0, 2**32))


def flat_file_trees(pool: Sequence[T], names: Sequence[str] = ("x.bin", "y.bin", "z.txt"),
                    ) -> st.SearchStrategy[dict[str, T]]:
    """``{name: content}`` of 1..len(names) files in one folder, contents from ``pool``
    (bytes, or indices into a pool of contents, which keeps failing examples short)."""
    return st.dictionaries(st.sampled_from(tuple(names)), st.sampled_from(tuple(pool)),
                           min_size=1, max_size=len(names))
