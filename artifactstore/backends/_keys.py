"""Key and range argument checks shared by the backends.

``check_key`` (in :mod:`artifactstore.backends.base`) validates whole keys;
this module adds the checks for listing prefixes, which may end in a partial
segment (``packs/ab`` matches ``packs/abc…``), for byte ranges, and the walk over an
S3-style paged listing that both S3 read paths share (:func:`paged_keys`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from artifactstore.backends.base import check_key, is_key
from artifactstore.core.errors import BackendError, InvalidInputError

__all__ = ["Page", "check_prefix", "check_range", "paged_keys", "split_prefix"]

#: one listing page: the object names it holds and the next page's token (None: the end)
Page = tuple[list[str], str | None]


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


def paged_keys(first: Page, next_page: Callable[[str], Page], *, root: str, prefix: str,
               after: str | None, url: str) -> Iterator[str]:
    """The store keys of a paged, sorted listing (S3's ``ListObjectsV2``), checked.

    ``first`` is the first page, ``next_page(token)`` fetches the next; ``root`` is the
    store's key prefix in the bucket (stripped from each name). Names outside ``root``
    and ``prefix``, at or before ``after``, or not valid keys are skipped. A listing out
    of order or a repeated continuation token is a ``BackendError`` naming ``url``: a
    server looping on one token would otherwise never end.
    """
    strip = len(root)
    names, token = first
    last = ""
    tokens: set[str] = set()
    while True:
        for name in names:
            key = name[strip:]
            if not (name.startswith(root) and key.startswith(prefix)
                    and (after is None or key > after) and is_key(key)):
                continue
            if key <= last:
                raise BackendError(
                    f"list {prefix!r} on {url}: the endpoint returned {key!r} "
                    f"after {last!r}; S3 listings are sorted, check the endpoint")
            last = key
            yield key
        if token is None:
            return
        if token in tokens:
            raise BackendError(f"list {prefix!r} on {url}: the endpoint repeated "
                               "a continuation token; check the endpoint")
        tokens.add(token)
        names, token = next_page(token)
