"""Adapter from an fsspec object-store filesystem (s3fs, gcsfs) to ``Backend``.

Vocabulary: the *root* is ``bucket/prefix``; key ``a/b`` is the object
``<root>/a/b``. The filesystem object is private to this adapter: callers get
bytes, ``str`` keys, :class:`ObjectInfo` and :mod:`artifactstore.core.errors`
exceptions only.

The adapter relies on three properties of the filesystems built by
:mod:`._s3` and :mod:`._gcs`: listing and instance caches are off (every
``exists``/``list`` asks the server), ``pipe_file(mode="create")`` is a
server-side conditional write (S3 ``If-None-Match: *``, GCS
``ifGenerationMatch=0``), and ``cat_file(start=, end=)`` is a ranged GET.
A single-request put is atomic on both services: readers see the old object
or the new one, never a prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from artifactstore.backends._errors import (
    is_missing_bucket,
    is_precondition_failed,
    is_range_not_satisfiable,
    mapped_errors,
)
from artifactstore.backends._keys import Page, check_prefix, check_range, paged_keys, split_prefix
from artifactstore.backends.base import ObjectInfo, check_key, is_key
from artifactstore.backends.partsbody import FileBody, PartsBody
from artifactstore.core.errors import BackendError, InvalidInputError, NotFoundError

__all__ = ["FsspecBackend"]

#: the bytes :meth:`FsspecBackend.iter_range` hands out at once (a streamed body)
_PIECE = 1 << 20
#: below s3fs's multipart threshold (2 x its 50 MiB chunk size), where it slices
#: the body; a bigger object is joined and uploaded as before
_STREAMED_PUT_MAX = 100 << 20
#: one S3 listing page: its object names and the next page's continuation token
#: names asked for per S3 listing page (S3's maximum; tests lower it to exercise paging)
LIST_PAGE = 1000
#: smaller bodies are uploaded as bytes: their copies are small, and a file body is
#: read through the event loop's executor, one 64 KiB read per hop
_STREAMED_PUT_MIN = 256 << 10


class FsspecBackend:
    """``Backend`` over an fsspec filesystem rooted at ``bucket/prefix``."""

    def __init__(
        self,
        fs: Any,
        root: str,
        *,
        url: str,
        atomic_create: bool,
        timeout: float | None = None,
        read_options: Mapping[str, Any] | None = None,
        on_close: Callable[[], None] | None = None,
        streamed_put: bool = False,
    ) -> None:
        """Wrap ``fs`` (caches off) at ``root``.

        ``url`` is the credential-free location shown in messages;
        ``atomic_create`` states whether ``pipe_file(mode="create")`` is a
        server-side condition; ``timeout`` is an optional deadline in seconds
        for every call; ``read_options`` are extra ``cat_file`` arguments for
        whole-object reads; ``on_close`` releases the filesystem's sessions;
        ``streamed_put`` says ``pipe_file`` takes a seekable file as the body
        (s3fs: botocore reads it), so ``put_parts`` need not join the parts.
        """
        self._fs: Any = fs
        self._root = root.rstrip("/")
        self._url = url
        self._atomic_create = atomic_create
        self._call_kw: dict[str, Any] = {"timeout": timeout} if timeout else {}
        self._read_kw: dict[str, Any] = {**(read_options or {}), **self._call_kw}
        self._on_close = on_close
        self._closed = False
        self._streamed_put = streamed_put

    def __repr__(self) -> str:
        return f"FsspecBackend({self._url!r})"

    @property
    def url(self) -> str:
        """The store URL without credentials."""
        return self._url

    @property
    def supports_atomic_create(self) -> bool:
        """Whether ``put_if_absent`` is a server-side conditional write."""
        return self._atomic_create

    @property
    def supports_streamed_put(self) -> bool:
        """Whether ``put_parts`` uploads the parts without joining them first."""
        return self._streamed_put

    @property
    def supports_range(self) -> bool:
        """True: ranged GET requests."""
        return True

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> bytes:
        """Return the whole object. Raises ``NotFoundError`` if absent."""
        path = self._path(key)
        with mapped_errors("get", key, self._url):
            return bytes(self._live().cat_file(path, **self._read_kw))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Return up to ``length`` bytes from ``start`` with one ranged GET.

        A range starting at or past the end is answered by the server with
        HTTP 416; that becomes ``b""`` once the object is known to exist.
        """
        path = self._path(key)
        check_range(start, length)
        if length == 0:
            self._info("get_range", key)
            return b""
        with mapped_errors("get_range", key, self._url):
            try:
                data = self._live().cat_file(path, start=start, end=start + length, **self._call_kw)
            except Exception as exc:
                if not is_range_not_satisfiable(exc):
                    raise
                data = b""
        if not data:
            self._info("get_range", key)
        return bytes(data)

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """``get_range``'s bytes in pieces of up to :data:`_PIECE` as the body of one
        ranged GET arrives (S3: s3fs's client, read in its event loop); other file
        systems, an empty range, or a GET that fails to start: ``get_range`` in one
        piece (which maps the failure). A failure while reading ends the pieces
        short (the caller checks lengths and reads the rest)."""
        fs = self._live()
        check_range(start, length)
        if length == 0 or not hasattr(fs, "_call_s3"):
            yield self.get_range(key, start, length)
            return
        from fsspec.asyn import sync

        bucket, name, _ = fs.split_path(self._path(key))
        try:
            response = sync(fs.loop, fs._call_s3, "get_object", Bucket=bucket, Key=name,
                            Range=f"bytes={start}-{start + length - 1}", **self._call_kw)
        except Exception:
            yield self.get_range(key, start, length)  # 404, 416, a network error: mapped
            return
        body = response["Body"]
        try:
            left = length
            while left > 0:
                try:
                    piece = sync(fs.loop, _read_up_to, body, min(left, _PIECE),
                                 **self._call_kw)
                except Exception:
                    return  # short: the caller reads the rest with get_range (retried)
                if not piece:
                    return
                left -= len(piece)
                yield piece
        finally:
            with contextlib.suppress(Exception):
                sync(fs.loop, body.aclose)

    def exists(self, key: str) -> bool:
        """Whether an object (not a pseudo-directory) is stored under ``key``."""
        path = self._path(key)
        with mapped_errors("exists", key, self._url):
            try:
                info = self._live().info(path, **self._call_kw)
            except FileNotFoundError as exc:
                if is_missing_bucket(exc):
                    raise
                return False
            return bool(info.get("type") == "file")

    def stat(self, key: str) -> ObjectInfo:
        """Size, ETag (S3) or generation (GCS), and version id. ``NotFoundError`` if absent."""
        path = self._path(key)
        with mapped_errors("stat", key, self._url):
            info = self._live().info(path, **self._call_kw)
        if info.get("type") != "file":
            raise NotFoundError(f"stat {key!r} on {self._url}: no such object; check the key")
        etag = info.get("ETag") or info.get("etag") or info.get("generation")
        version = info.get("VersionId") or info.get("generation")
        return ObjectInfo(key=key, size=int(info["size"]),
                          etag=str(etag).strip('"') if etag else None,
                          version_id=str(version) if version and version != "null" else None)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield keys starting with ``prefix``, sorted, from an uncached listing.

        S3: ``ListObjectsV2`` pages of up to 1,000 names, each page's keys yielded as it
        arrives (:meth:`_s3_keys`): a caller can work while the next page is on its way,
        and a listing of 50,000 keys holds one page of the client's dicts, not 50,000.
        Elsewhere the server-side prefix is the whole-segment part of ``prefix`` as a
        directory plus the partial last segment as a name filter, so only matching
        objects are transferred. Names that are not valid keys (directory markers
        ending in ``/`` made by other tools) are skipped.
        """
        check_prefix(prefix)
        if self._s3_call() is not None:
            return self._s3_keys(prefix, None)
        # The listing starts one segment up, with the last segment (and the partial
        # rest) as the name filter: s3fs probes a path whose listing comes back empty
        # (a HEAD and a second LIST) unless a filter is given, and an empty listing
        # (no condemnations, no deletions yet) is the common case.
        head, _ = split_prefix(prefix.rstrip("/"))
        base = f"{self._root}/{head}" if head else self._root
        stem = prefix[len(head) + 1:] if head else prefix
        strip = self._root + "/"
        wanted = strip + prefix
        with mapped_errors("list", prefix, self._url):
            names = self._live().find(base, prefix=stem, **self._call_kw)
        keys = [name[len(strip) :] for name in names if name.startswith(wanted)]
        return iter(sorted(key for key in keys if is_key(key)))

    def list_after(self, prefix: str, after: str) -> Iterator[str]:
        """``list(prefix)`` past ``after``: on S3 a ``ListObjectsV2`` from ``StartAfter``
        (one request per 1,000 keys after it); elsewhere the listing, filtered."""
        check_prefix(prefix)
        if self._s3_call() is None:
            return (key for key in self.list(prefix) if key > after)
        return self._s3_keys(prefix, after)

    def _s3_call(self) -> Callable[..., Any] | None:
        """s3fs's synchronous ``call_s3`` when the filesystem is S3's, else None."""
        fs = self._live()
        call = getattr(fs, "call_s3", None)
        protocol = getattr(fs, "protocol", ())
        names = {protocol} if isinstance(protocol, str) else set(protocol)
        return call if call is not None and "s3" in names else None

    def _s3_keys(self, prefix: str, after: str | None) -> Iterator[str]:
        """The valid keys under ``prefix`` (past ``after``), page by page.

        The first page is asked for now, so a missing bucket or a refused listing
        is raised by the call, as before; the later pages as the caller iterates
        (``RetryingBackend`` resumes a listing that fails midway after its last key).
        S3 returns names in UTF-8 binary order, which is ``str`` order: a page that
        goes back is a broken endpoint and raises ``BackendError`` rather than
        yielding keys out of order.
        """
        bucket, _, base = self._root.partition("/")
        strip = f"{base}/" if base else ""
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": strip + prefix,
                                   "MaxKeys": LIST_PAGE}
        if after is not None:
            request["StartAfter"] = strip + max(after, prefix)
        first = self._s3_page(prefix, request)
        root = request["Prefix"][:len(request["Prefix"]) - len(prefix)]
        return paged_keys(first, lambda token: self._s3_page(
            prefix, {**request, "ContinuationToken": token}),
            root=root, prefix=prefix, after=after, url=self._url)

    def _s3_page(self, prefix: str, request: dict[str, Any]) -> Page:
        """One ``ListObjectsV2`` page: its object names and the next page's token."""
        call = self._s3_call()
        assert call is not None
        with mapped_errors("list", prefix, self._url):
            page = call("list_objects_v2", **request, **self._call_kw)
        names = [item["Key"] for item in page.get("Contents", ())]
        token = page.get("NextContinuationToken") or None
        if not page.get("IsTruncated"):
            return names, None
        if token is None:
            raise BackendError(f"list {prefix!r} on {self._url}: the endpoint said the "
                               "listing goes on but gave no continuation token; check that "
                               "it supports ListObjectsV2")
        return names, token

    # -- writes ----------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` with one atomic upload, replacing any object."""
        self.put_parts(key, (_as_bytes(data),))

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        """``put`` of the concatenation of ``parts``, in one request.

        With ``streamed_put`` a big body is read from the parts (:class:`PartsBody`:
        no joined copy, and none made by botocore and aiohttp) while the object
        fits one PUT; otherwise the parts are joined.
        """
        path = self._path(key)
        with mapped_errors("put", key, self._url):
            self._live().pipe_file(path, self._body(parts), **self._call_kw)

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        """``put`` of bytes ``0 .. size`` of a seekable file, in one request.

        With ``streamed_put`` the body is read from the file (:class:`FileBody`, by
        ``pread``: each attempt from the start) while the object fits one PUT;
        otherwise, and for a small body, its bytes are read and put.
        """
        path = self._path(key)
        body: bytes | FileBody
        if self._streamed_put and _STREAMED_PUT_MIN <= size < _STREAMED_PUT_MAX:
            body = FileBody(file, size)
        else:
            body = FileBody(file, size).read(size)
        with mapped_errors("put", key, self._url):
            self._live().pipe_file(path, body, **self._call_kw)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` with a conditional upload; False if it already exists.

        The server evaluates the condition atomically with the write, and a
        412 Precondition Failed means another writer's object is there.
        """
        path = self._path(key)
        body = self._body((_as_bytes(data),))
        with mapped_errors("put_if_absent", key, self._url):
            try:
                self._live().pipe_file(path, body, mode="create", **self._call_kw)
            except Exception as exc:
                if is_precondition_failed(exc):
                    return False
                raise
            return True

    def delete(self, key: str) -> None:
        """Remove the object; an absent key is not an error (a missing bucket is)."""
        path = self._path(key)
        with mapped_errors("delete", key, self._url):
            try:
                self._live().rm_file(path, **self._call_kw)
            except FileNotFoundError as exc:
                if is_missing_bucket(exc):
                    raise

    def close(self) -> None:
        """Release HTTP sessions; idempotent. Later calls raise ``BackendError``."""
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close()

    # -- helpers ---------------------------------------------------------

    def _body(self, parts: Sequence[bytes | memoryview]) -> bytes | PartsBody:
        """What ``pipe_file`` uploads: the parts as a file when that saves copies."""
        size = sum(len(p) for p in parts)
        if self._streamed_put and _STREAMED_PUT_MIN <= size < _STREAMED_PUT_MAX:
            return PartsBody(parts)
        return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)

    def _path(self, key: str) -> str:
        return f"{self._root}/{check_key(key)}"

    def _live(self) -> Any:
        if self._closed:
            raise BackendError(f"{self._url} is closed; open the backend again")
        return self._fs

    def _info(self, op: str, key: str) -> int:
        """Size of ``key`` for ``op``; ``NotFoundError`` unless it is an object."""
        path = self._path(key)
        with mapped_errors(op, key, self._url):
            info = self._live().info(path, **self._call_kw)
        if info.get("type") != "file":
            raise NotFoundError(f"{op} {key!r} on {self._url}: no such object; check the key")
        return int(info["size"])


async def _read_up_to(body: Any, size: int) -> bytes:
    """Up to ``size`` bytes of a streamed S3 body (fewer only at its end), in one buffer."""
    parts = [await body.read(size)]
    got = len(parts[0])
    while 0 < got < size and (more := await body.read(size - got)):
        parts.append(more)
        got += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)  # one copy of the piece


def _as_bytes(data: bytes) -> bytes:
    if isinstance(data, bytes):
        return data
    try:
        return bytes(data)
    except TypeError as exc:
        raise InvalidInputError(f"object data must be bytes, not {type(data).__name__}") from exc
