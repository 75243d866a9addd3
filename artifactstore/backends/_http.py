"""Read-only ``https://`` (and loopback ``http://``) locations: web servers and bucket endpoints.

Objects are read with fsspec's HTTP filesystem (``get``, ranged ``get_range``,
``stat`` with the server's ETag or Last-Modified) and never written: the
backend is wrapped read-only. Plain ``http://`` is refused off loopback unless
``allow_insecure_http=True`` (data in transit would be readable and alterable).

Listing depends on the server (option ``listing``):

* ``"index"``: the web server answers folder URLs with an HTML index (nginx
  ``autoindex``, Apache, ``python -m http.server``), parsed by fsspec.
* ``"s3"``: the URL is on a bucket's own endpoint (S3, GCS's XML API, MinIO),
  which lists with ``ListObjectsV2`` XML (:mod:`._s3listing`). The bucket root
  is the ``bucket_root`` option, else found by probing path-style, then
  virtual-hosted; an endpoint that answers neither is an error.
* ``"auto"`` (the default): the same probe on the first ``list``; if no
  candidate answers with a ``ListBucketResult``, folder indexes are used.

Reads of single objects (references) never probe.

Ranged reads check the answer: a server that ignores ``Range`` (``python -m
http.server``) answers 200 with the whole object, which fsspec would hand back as
if it were the range (and the pack would look damaged). :class:`RangeCheckingBackend`
sends its own ranged GET, takes a 206 whose ``Content-Range`` starts where asked,
and from a 200 reads the object's first ``start + length`` bytes (no more) and
keeps the slice, saying once per store that this server makes reads slower.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from artifactstore.backends._endpoints import check_endpoint, redact_url, take_options
from artifactstore.backends._errors import configuring, mapped_errors
from artifactstore.backends._keys import check_prefix, check_range
from artifactstore.backends._s3listing import (
    BucketRoot,
    Fetch,
    explicit_bucket_root,
    find_bucket_root,
    list_keys,
)
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.base import Backend, check_key
from artifactstore.backends.fsspec_backend import FsspecBackend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.core.errors import BackendError, ConfigurationError, MissingExtraError

__all__ = ["HTTP_OPTIONS", "LISTINGS", "BucketListingBackend", "RangeCheckingBackend",
           "open_http"]

_log = logging.getLogger(__name__)
#: reads that end past this many bytes tell the user the server ignores Range
_SAY_SLOW_FROM = 1 << 20

HTTP_OPTIONS = frozenset({"allow_insecure_http", "timeout", "listing", "bucket_root"})
LISTINGS = ("auto", "s3", "index")


def open_http(url: str, options: Mapping[str, Any]) -> ReadOnlyBackend:
    """Open the folder ``url`` (``https://host/path``) of a web server or bucket, read-only."""
    opts = take_options(dict(options), HTTP_OPTIONS, "https://")
    parts = urlsplit(url)
    check_endpoint(f"{parts.scheme}://{parts.netloc}",
                   allow_insecure_http=bool(opts.get("allow_insecure_http", False)))
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"unsupported query or fragment in store URL {redact_url(url)!r}; "
            "pass settings as options instead"
        )
    root = url.rstrip("/")
    listing = opts.get("listing", "auto")
    if listing not in LISTINGS:
        raise ConfigurationError(
            f"unknown listing {listing!r} for https:// stores; accepted: {', '.join(LISTINGS)}"
        )
    bucket = None
    if opts.get("bucket_root") is not None:
        if listing == "index":
            raise ConfigurationError(
                "bucket_root names a bucket endpoint, which lists in S3 XML; "
                "drop listing='index' or bucket_root"
            )
        bucket = explicit_bucket_root(root, str(opts["bucket_root"]))
    try:
        from fsspec.implementations.http import HTTPFileSystem
    except ImportError as exc:  # aiohttp missing
        raise MissingExtraError(
            "https:// locations need aiohttp: pip install 'artifactstore[http]'"
        ) from exc
    with configuring(url):
        fs = HTTPFileSystem(skip_instance_cache=True, use_listings_cache=False)
    timeout = opts.get("timeout")
    inner: Backend = FsspecBackend(fs, root, url=redact_url(root), atomic_create=False,
                                   timeout=timeout)
    inner = RangeCheckingBackend(inner, fs=fs, root_url=root, timeout=timeout)
    if listing != "index":
        inner = BucketListingBackend(inner, fetch=_fetcher(fs, timeout), root_url=root,
                                     bucket=bucket, required=listing == "s3")
    return ReadOnlyBackend(inner)


class BucketListingBackend(BackendWrapper):
    """``list`` through S3 ``ListObjectsV2`` when the server is a bucket endpoint.

    The decision is made once, on the first ``list`` (a lock keeps concurrent
    first listings to one probe): with a known bucket root, or when a probe
    finds one, every listing asks the bucket; otherwise the inner backend's
    folder-index listing is used, unless S3 listing was ``required``.
    """

    def __init__(self, inner: Backend, *, fetch: Fetch, root_url: str,
                 bucket: BucketRoot | None, required: bool) -> None:
        super().__init__(inner)
        self._fetch = fetch
        self._root_url = root_url
        self._bucket = bucket
        self._decided = bucket is not None
        self._required = required
        self._lock = threading.Lock()
        self._closed = False

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield keys starting with ``prefix``, sorted, from an uncached listing."""
        check_prefix(prefix)
        if self._closed:
            raise BackendError(f"{self.url} is closed; open the backend again")
        with mapped_errors("list", prefix, self.url):
            bucket = self._bucket_root()
            if bucket is None:
                return self._inner.list(prefix)
            return iter(list_keys(self._fetch, bucket, prefix, self.url))

    def close(self) -> None:
        """Close the inner backend; later listings raise ``BackendError``."""
        self._closed = True
        super().close()

    def _bucket_root(self) -> BucketRoot | None:
        with self._lock:
            if not self._decided:
                found = find_bucket_root(self._fetch, self._root_url, self.url)
                if found is None and self._required:
                    raise BackendError(
                        f"list on {self.url}: no S3 ListBucketResult at the path-style or "
                        "the host root; pass bucket_root='https://endpoint/bucket' (or "
                        "'https://bucket.endpoint'), or check that the bucket allows listing"
                    )
                self._bucket, self._decided = found, True
            return self._bucket


class RangeCheckingBackend(BackendWrapper):
    """``get_range`` that reads the right bytes from servers that ignore ``Range``."""

    def __init__(self, inner: Backend, *, fs: Any, root_url: str,
                 timeout: float | None) -> None:
        super().__init__(inner)
        self._fs = fs
        self._root_url = root_url
        self._timeout = timeout
        self._warned = False

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start`` (``b""`` past the end), whatever the
        server does with ``Range``."""
        check_key(key)
        check_range(start, length)
        if length == 0:
            return self._inner.get_range(key, start, length)
        from fsspec.asyn import sync

        url = f"{self._root_url}/{key}"
        with mapped_errors("get_range", key, self.url):
            answer: tuple[int, bytes] = sync(self._fs.loop, self._ranged_get, url, start,
                                             length)
        status, data = answer
        if status == 416:  # past the end, or a missing object: the inner read tells
            return self._inner.get_range(key, start, length)
        if status == 200 and start + length > _SAY_SLOW_FROM and not self._warned:
            self._warned = True
            _log.warning("%s ignores HTTP Range requests: each read downloads an object "
                         "from its start (slower); serve the store with a server that "
                         "supports Range (nginx, a bucket endpoint)", self.url)
        return data

    async def _ranged_get(self, url: str, start: int, length: int) -> tuple[int, bytes]:
        import aiohttp

        extra: dict[str, Any] = (
            {"timeout": aiohttp.ClientTimeout(total=self._timeout)} if self._timeout else {})
        session = await self._fs.set_session()
        headers = {"Range": f"bytes={start}-{start + length - 1}"}
        async with session.get(self._fs.encode_url(url), headers=headers, **extra) as response:
            if response.status == 416:
                return 416, b""
            self._fs._raise_not_found_for_status(response, url)
            skip = start  # a 200 is the whole object: drop what comes before the range
            if response.status == 206:
                # Why the check: bytes from another offset would be taken for the range.
                first = _range_start(response.headers.get("Content-Range", ""))
                if first is None or first > start:
                    raise BackendError(
                        f"get_range {url}: the server answered a range with Content-Range "
                        f"{response.headers.get('Content-Range')!r}; check the server"
                    )
                skip = start - first
            body = bytearray()
            while len(body) < skip + length:
                block = await response.content.read(skip + length - len(body))
                if not block:
                    break
                body += block
            return response.status, bytes(body[skip:skip + length])


def _range_start(content_range: str) -> int | None:
    """The first byte of ``bytes FIRST-LAST/SIZE``; None if it is not that."""
    unit, _, span = content_range.strip().partition(" ")
    first = span.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def _fetcher(fs: Any, timeout: float | None) -> Fetch:
    """GET through the filesystem's own aiohttp session, reading at most ``limit + 1`` bytes.

    Why the same session: one HTTP stack (TLS settings, connection pool, event
    loop) for listings and object reads.
    """
    import aiohttp
    from fsspec.asyn import sync

    extra: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout)} if timeout else {}

    async def fetch(url: str, limit: int) -> tuple[int, bytes]:
        session = await fs.set_session()
        async with session.get(fs.encode_url(url), **extra) as response:
            body = bytearray()
            while len(body) <= limit:
                chunk = await response.content.read(limit + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            return response.status, bytes(body)

    def run(url: str, limit: int) -> tuple[int, bytes]:
        return sync(fs.loop, fetch, url, limit)  # type: ignore[no-any-return]

    return run
