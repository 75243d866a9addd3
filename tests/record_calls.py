"""Small record-writing helpers shared by the catalog and journal tests."""

from __future__ import annotations

from artifactstore.core.digest import Digest
from artifactstore.records.refs import NewVersion, Refs


def digest(n: int) -> Digest:
    """A made-up digest numbered ``n`` (no content behind it)."""
    return Digest(n.to_bytes(32, "big"))


def commit(refs: Refs, name: str, n: int) -> None:
    """Commit a version of ``name`` whose manifest and digest are ``digest(n)``."""
    refs.commit_version(NewVersion(name, type="model", manifest=digest(n), digest=digest(n),
                                   size=1, files=1))
