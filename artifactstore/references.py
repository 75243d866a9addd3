"""Reference entries: objects recorded by URI instead of copied into the store.

Vocabulary: at log time a reference is *described*: its size, its ETag (S3),
generation (GCS) or mtime-based tag (local files), its version id, and with
``checksum`` its BLAKE3 digest, read once. At download time it is *fetched*
from its source and checked against that description, so a source that changed
since logging is an error that says so, never silently different data.

Supported: ``s3://``, ``gs://``, ``https://``, ``file://`` and ``memory://`` URIs,
through the same backends as stores (credentials and endpoints of S3/GCS
references come from the options the store was opened with; plain ``http://`` only
on loopback unless ``allow_insecure_http``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend, ObjectInfo
from artifactstore.core.digest import Hasher
from artifactstore.core.errors import ConfigurationError, IntegrityError, InvalidInputError
from artifactstore.model.tree import ReferenceEntry

__all__ = ["describe_reference", "fetch_reference"]

_SCHEMES = ("s3", "gs", "gcs", "https", "http", "file", "memory")
_BLOCK = 8 << 20


def _open(uri: str, options: dict[str, Any]) -> tuple[Backend, str]:
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in _SCHEMES:
        raise ConfigurationError(
            f"reference {uri!r}: supported schemes are s3://, gs://, https://, file:// "
            "and memory://"
        )
    base, _, key = rest.rstrip("/").rpartition("/")
    if not key or (scheme not in ("file", "memory") and not base):
        raise InvalidInputError(f"reference {uri!r} does not name an object")
    if scheme == "file":
        return open_backend("/" + base.lstrip("/"), create=False), key
    if scheme in ("https", "http"):
        web = {k: v for k, v in options.items() if k == "allow_insecure_http"}
        return open_backend(f"{scheme}://{base}", **web), key
    cloud = scheme in ("s3", "gs", "gcs")
    return open_backend(f"{scheme}://{base}", **(options if cloud else {})), key


def describe_reference(path: str, uri: str, *, checksum: bool,
                       options: dict[str, Any]) -> ReferenceEntry:
    backend, key = _open(uri, options)
    try:
        info = backend.stat(key)
        digest = None
        if checksum:
            hasher = Hasher()
            for block in _blocks(backend, key, info):
                hasher.update(block)
            digest = hasher.digest()
    finally:
        backend.close()
    return ReferenceEntry(path=path, uri=uri, size=info.size, etag=info.etag,
                          version_id=info.version_id, digest=digest)


def fetch_reference(entry: ReferenceEntry, options: dict[str, Any]) -> Iterator[bytes]:
    """The referenced bytes, checked against what was recorded at log time."""
    backend, key = _open(entry.uri, options)
    try:
        info = backend.stat(key)
        if (entry.size is not None and info.size != entry.size) or (
            entry.etag is not None and info.etag != entry.etag
        ):
            raise IntegrityError(
                f"reference {entry.path} ({entry.uri}) changed since it was logged "
                f"(size {entry.size} -> {info.size}, tag {entry.etag} -> {info.etag}): "
                "log a new version to use its new content"
            )
        hasher = Hasher()
        for block in _blocks(backend, key, info):
            hasher.update(block)
            yield block
        if entry.digest is not None and hasher.digest() != entry.digest:
            raise IntegrityError(
                f"reference {entry.path} ({entry.uri}) no longer matches the digest "
                "recorded when it was logged: its source changed"
            )
    finally:
        backend.close()


def _blocks(backend: Backend, key: str, info: ObjectInfo) -> Iterator[bytes]:
    for start in range(0, info.size, _BLOCK):
        block = backend.get_range(key, start, min(_BLOCK, info.size - start))
        if not block:
            raise IntegrityError(f"{key} ended early while reading it: it is changing")
        yield block
