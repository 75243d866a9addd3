"""The manifest root of a version (design §11): the one blob a version record names.

A blob of kind ``MANIFEST``, canonical msgpack ``{"version": 1, "tree": bin32,
"size": int, "files": int}``: ``tree`` is the root tree node, the version record's
``digest`` is that same tree id. Written by logging and re-encryption, checked by
verify; this module is the only one that knows its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import IntegrityError

__all__ = ["Manifest"]

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    """A version's root: its tree, total size in bytes and number of files."""

    tree: Digest
    size: int
    files: int

    def encode(self) -> bytes:
        return encoding.pack({"version": FORMAT_VERSION, "tree": self.tree.raw,
                              "size": self.size, "files": self.files})

    @classmethod
    def decode(cls, data: bytes, *, what: str = "manifest") -> Manifest:
        """The manifest in ``data``; ``IntegrityError`` naming ``what`` if it is not one."""
        body = encoding.unpack(data, what=what)
        if not isinstance(body, dict) or body.get("version") != FORMAT_VERSION:
            raise IntegrityError(f"{what} is not a version {FORMAT_VERSION} manifest")
        tree, size, files = body.get("tree"), body.get("size"), body.get("files")
        if not (isinstance(tree, bytes) and len(tree) == 32 and isinstance(size, int)
                and isinstance(files, int) and _count(size) and _count(files)):
            raise IntegrityError(f"{what} has a malformed tree, size or files field")
        return cls(Digest(tree), size, files)

    @classmethod
    def check(cls, data: bytes, tree: Digest, *, what: str = "manifest") -> Manifest:
        """The manifest in ``data``, which must name ``tree`` (the version record's digest)."""
        try:
            found = cls.decode(data, what=what)
        except IntegrityError:
            found = None
        if found is None or found.tree != tree:
            raise IntegrityError(f"{what} does not name the version's tree {tree.hex}")
        return found


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
