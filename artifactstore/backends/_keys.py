"""Key and range argument checks shared by the backends.

``check_key`` (in :mod:`artifactstore.backends.base`) validates whole keys;
this module adds the checks for listing prefixes, which may end in a partial
segment (``packs/ab`` matches ``packs/abc…``), and for byte ranges.
"""

from __future__ import annotations

from artifactstore.backends.base import check_key
from artifactstore.core.errors import InvalidInputError

__all__ = ["check_prefix", "check_range", "split_prefix"]


def check_prefix(prefix: str) -> str:
    """Accept ``""``, whole-segment prefixes (``a/``) and partial ones (``a/b``).

    Why: every complete segment of a prefix is joined onto paths like a key,
    so it gets the same protection against ``..``, absolute paths and empty
    segments. The last, partial segment only filters names, yet still may not
    hold a separator, a backslash or NUL.
    """
    if not prefix:
        return prefix
    if prefix.startswith("/"):
        raise InvalidInputError(f"invalid listing prefix {prefix!r}: prefixes are relative")
    head, _, last = prefix.rpartition("/")
    if head:
        check_key(head)
    if "\\" in last or "\x00" in last:
        raise InvalidInputError(f"invalid listing prefix {prefix!r}: no backslash or NUL")
    return prefix


def split_prefix(prefix: str) -> tuple[str, str]:
    """Split a prefix into its whole-segment directory part and the partial rest.

    ``"a/b/c"`` -> ``("a/b", "c")``; ``"a/"`` -> ``("a", "")``; ``"ab"`` -> ``("", "ab")``.
    """
    head, _, last = prefix.rpartition("/")
    return head, last


def check_range(start: int, length: int) -> None:
    """Reject negative offsets or lengths (a caller bug, not a backend failure)."""
    if start < 0 or length < 0:
        raise InvalidInputError(
            f"invalid byte range start={start} length={length}: both must be >= 0"
        )
