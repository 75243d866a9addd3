"""A light read path for ``s3://`` stores: signed urllib3 requests, s3fs for the rest.

Why: s3fs + aiobotocore cost ~0.6 CPU-s and ~65 MiB to import and to make a client,
and every streamed read hops through their event loop thread; a command that only
reads (``ls``, ``get``) paid that on every start (docs/benchmarks.md, "S3 reads, round
two"). botocore's own credential chain and SigV4 signer over urllib3 (both installed
with the ``[s3]`` extra) do the same reads for a fraction of it.

Where it is used is decided once, when the store is opened (:mod:`._s3scope`).

The backend (:class:`S3ReadBackend`) answers ``get``, ``get_range``, ``iter_range``,
``exists``, ``stat``, ``list`` and ``list_after`` itself: GET, ranged GET, HEAD and
``ListObjectsV2`` pages. Writes and deletes go to the s3fs backend, made on the first
such call. Errors are mapped as s3fs's are (:mod:`._errors`): an S3 error document
becomes a botocore ``ClientError`` with its code and status before mapping, transport
failures a stand-in with the same signals (refused or unresolvable: unavailable;
timeouts, resets and short bodies: transient). urllib3 retries connection failures,
5xx and throttling of these idempotent requests up to ``max_attempts`` in total, as
botocore's "standard" mode did; :class:`RetryingBackend` above retries what is left.
"""

from __future__ import annotations

import errno
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from artifactstore.backends._endpoints import BucketURL
from artifactstore.backends._errors import map_error, mapped_errors
from artifactstore.backends._keys import Page, check_prefix, check_range, paged_keys
from artifactstore.backends._s3scope import ReadScope
from artifactstore.backends.base import Backend, ObjectInfo, check_key, put_from_file
from artifactstore.core.errors import BackendError

__all__ = ["S3ReadBackend"]

#: bytes :meth:`S3ReadBackend.iter_range` hands out at once
_PIECE = 1 << 20
#: names per listing page (S3's maximum); tests lower it to exercise paging
LIST_PAGE = 1000
#: an error document is read up to this size (a hostile endpoint cannot make us hold more)
_ERROR_BODY = 64 << 10
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class S3ReadBackend:
    """``Backend`` for ``s3://bucket/prefix``: reads by signed urllib3 requests,
    writes by the s3fs backend that ``writer`` makes on first use."""

    def __init__(self, scope: ReadScope, parsed: BucketURL, url: str,
                 writer: Callable[[], Backend]) -> None:
        import urllib3

        self._scope = scope
        self._prefix = f"{parsed.prefix}/" if parsed.prefix else ""
        self._url = url
        self._make_writer = writer
        self._writer: Backend | None = None
        self._lock = threading.Lock()
        self._closed = False
        retries = urllib3.Retry(total=scope.attempts - 1, redirect=0, raise_on_redirect=False,
                                status_forcelist=_RETRY_STATUSES, raise_on_status=False,
                                allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=0.1,
                                respect_retry_after_header=True)
        self._pool = urllib3.PoolManager(
            num_pools=2, maxsize=16, retries=retries,
            timeout=urllib3.Timeout(connect=scope.connect_timeout, read=scope.read_timeout),
            cert_reqs="CERT_REQUIRED", ca_certs=scope.ca_bundle)

    def __repr__(self) -> str:
        return f"S3ReadBackend({self._url!r})"

    @property
    def url(self) -> str:
        """The store URL without credentials."""
        return self._url

    @property
    def supports_atomic_create(self) -> bool:
        """True: ``put_if_absent`` is S3's conditional write (by s3fs)."""
        return True

    @property
    def supports_range(self) -> bool:
        """True: ranged GET requests."""
        return True

    @property
    def supports_streamed_put(self) -> bool:
        """True: the s3fs backend uploads file bodies without joining them."""
        return True

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> bytes:
        """Return the whole object. Raises ``NotFoundError`` if absent."""
        with mapped_errors("get", key, self._url):
            response = self._send("GET", self._object_url(key), {}, op="get", key=key)
            data: bytes = response.data
            return data

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start`` with one ranged GET; past the end
        (HTTP 416) ``b""`` once the object is known to exist."""
        check_range(start, length)
        if length == 0:
            self.stat(key)
            return b""
        with mapped_errors("get_range", key, self._url):
            response = self._send("GET", self._object_url(key), _range(start, length),
                                  op="get_range", key=key, ok=(200, 206, 416))
            data: bytes = response.data
        if response.status == 416 or not data:
            self.stat(key)
            return b""
        if response.status == 200:  # the endpoint ignored the range: the whole object
            data = data[start:start + length]
        return data[:length]

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """``get_range``'s bytes in pieces of up to a MiB as the body of one ranged GET
        arrives; a GET that fails to start (or is not a 206): ``get_range`` in one piece
        (which maps the failure). A failure while reading ends the pieces short (the
        caller checks lengths and reads the rest)."""
        check_range(start, length)
        if length == 0:
            yield self.get_range(key, start, length)
            return
        try:
            response = self._pool.request("GET", self._object_url(key),
                                          headers=self._signed("GET", self._object_url(key),
                                                               _range(start, length)),
                                          preload_content=False, decode_content=False,
                                          redirect=False)
        except Exception:
            yield self.get_range(key, start, length)
            return
        if response.status != 206 and not (response.status == 200 and start == 0):
            response.drain_conn()
            response.release_conn()
            yield self.get_range(key, start, length)
            return
        left = length
        try:
            while left > 0:
                try:
                    piece = response.read(min(left, _PIECE))
                except Exception:
                    return  # short: the caller reads the rest with get_range (retried)
                if not piece:
                    return
                left -= len(piece)
                yield piece
        finally:
            if left > 0:
                response.close()  # not read to its end: the connection cannot be reused
            response.release_conn()

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``: a GET of its first byte, whose
        error document tells a missing key (False) from a missing bucket (raised)."""
        with mapped_errors("exists", key, self._url):
            response = self._send("GET", self._object_url(key), _range(0, 1), op="exists",
                                  key=key, ok=(200, 206, 404, 416))
            if response.status != 404:
                return True
            code = _error_code(response.data)
            if code in (None, "NoSuchKey"):
                return False
            raise _client_error(response.status, code, "", "exists")

    def stat(self, key: str) -> ObjectInfo:
        """Size, ETag and version id by a HEAD. ``NotFoundError`` if absent."""
        with mapped_errors("stat", key, self._url):
            response = self._send("HEAD", self._object_url(key), {}, op="stat", key=key)
        headers = response.headers
        try:
            size = int(headers["Content-Length"])
        except (KeyError, ValueError):
            raise BackendError(f"stat {key!r} on {self._url}: the endpoint sent no object "
                               "size; check that it is an S3 endpoint") from None
        etag = headers.get("ETag")
        version = headers.get("x-amz-version-id")
        return ObjectInfo(key=key, size=size, etag=etag.strip('"') if etag else None,
                          version_id=version if version and version != "null" else None)

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield keys starting with ``prefix``, sorted, page by page (``ListObjectsV2``;
        the first page asked for now, so a missing bucket is raised by the call)."""
        check_prefix(prefix)
        return self._keys(prefix, None)

    def list_after(self, prefix: str, after: str) -> Iterator[str]:
        """``list(prefix)`` past ``after``: ``ListObjectsV2`` from ``StartAfter``."""
        check_prefix(prefix)
        return self._keys(prefix, after)

    def _keys(self, prefix: str, after: str | None) -> Iterator[str]:
        query = {"list-type": "2", "prefix": self._prefix + prefix, "max-keys": str(LIST_PAGE)}
        if after is not None:
            query["start-after"] = self._prefix + max(after, prefix)
        first = self._page(prefix, query)
        return paged_keys(
            first, lambda token: self._page(prefix, {**query, "continuation-token": token}),
            root=self._prefix, prefix=prefix, after=after, url=self._url)

    def _page(self, prefix: str, query: dict[str, str]) -> Page:
        from artifactstore.backends._s3listing import parse_page

        url = self._scope.bucket_root + "/?" + _query(query)
        with mapped_errors("list", prefix, self._url):
            response = self._send("GET", url, {}, op="list", key=prefix)
            page = parse_page(response.data, self._url)
        return page.names, page.next_token

    # -- writes: the s3fs backend ---------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """s3fs's ``put``."""
        self._writes().put(key, data)

    def put_parts(self, key: str, parts: Any) -> None:
        """s3fs's ``put_parts``."""
        self._writes().put_parts(key, parts)

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        """s3fs's ``put_file`` (a streamed put)."""
        put_from_file(self._writes(), key, file, size)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """s3fs's ``put_if_absent`` (S3's conditional write)."""
        return self._writes().put_if_absent(key, data)

    def delete(self, key: str) -> None:
        """s3fs's ``delete``."""
        self._writes().delete(key)

    def close(self) -> None:
        """Release connections (and the s3fs backend if one was made); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer, self._writer = self._writer, None
        self._pool.clear()
        if writer is not None:
            writer.close()

    # -- helpers ---------------------------------------------------------

    def _writes(self) -> Backend:
        with self._lock:
            if self._closed:
                raise BackendError(f"{self._url} is closed; open the backend again")
            if self._writer is None:
                self._writer = self._make_writer()
            return self._writer

    def _object_url(self, key: str) -> str:
        return f"{self._scope.bucket_root}/{quote(self._prefix + check_key(key), safe='/~')}"

    def _signed(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        if self._closed:
            raise BackendError(f"{self._url} is closed; open the backend again")
        credentials = self._scope.credentials
        if credentials is None:
            return headers
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, headers=headers)
        S3SigV4Auth(credentials.get_frozen_credentials(), "s3", self._scope.region
                    ).add_auth(request)
        return dict(request.headers.items())

    def _send(self, method: str, url: str, headers: dict[str, str], *, op: str,
              key: str | None, ok: tuple[int, ...] = (200, 206)) -> Any:
        """One request, read whole (bodies here are small or wanted whole); an error
        status raised as a botocore ``ClientError``, a transport failure as a stand-in
        with the signals :mod:`._errors` maps (both inside the caller's ``mapped_errors``)."""
        import urllib3

        try:
            response = self._pool.request(method, url, headers=self._signed(method, url, headers),
                                          redirect=False, decode_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise _transport_error(exc, op, key, self._url) from exc
        if response.status in ok:
            return response
        body = response.data[:_ERROR_BODY] if method != "HEAD" else b""
        code = _error_code(body)
        message = _error_message(body)
        raise _client_error(response.status, code, message, op)


def _range(start: int, length: int) -> dict[str, str]:
    return {"Range": f"bytes={start}-{start + length - 1}"}


def _query(params: dict[str, str]) -> str:
    # quote everything: tokens hold "+", "/" and "="; SigV4 signs what is sent (sorted
    # by botocore; sent in botocore's order, so request logs read alike)
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                    for k, v in params.items())


def _error_code(body: bytes) -> str | None:
    from artifactstore.backends._s3listing import _error_code as code_of

    return code_of(body)


def _error_message(body: bytes) -> str:
    match = re.search(rb"<Message>([^<]{0,200})</Message>", body or b"")
    return match.group(1).decode("utf-8", "replace") if match else ""


def _client_error(status: int, code: str | None, message: str, op: str) -> Exception:
    """An S3 error answer as botocore shapes it (``HEAD`` has no body: the status is the
    code, as botocore makes it), so :mod:`._errors` maps it like s3fs's."""
    from botocore.exceptions import ClientError

    error: Exception = ClientError({"Error": {"Code": code or str(status), "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)
    return error


def _transport_error(exc: Exception, op: str, key: str | None, url: str) -> Exception:
    """urllib3's failure as what :mod:`._errors` maps: refused or unresolvable is
    unavailable (urllib3 makes those a kind of timeout), the rest by its own signals."""
    import urllib3

    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    stand_in: BaseException
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        stand_in = socket.gaierror(f"cannot resolve the endpoint's host: {reason}")
    elif isinstance(reason, urllib3.exceptions.NewConnectionError):
        stand_in = ConnectionRefusedError(errno.ECONNREFUSED, f"cannot connect: {reason}")
    elif isinstance(reason, urllib3.exceptions.TimeoutError | urllib3.exceptions.ProtocolError):
        stand_in = TimeoutError(f"{reason}") if isinstance(
            reason, urllib3.exceptions.TimeoutError) else ConnectionResetError(f"{reason}")
    else:
        stand_in = reason if isinstance(reason, Exception) else exc
    return map_error(stand_in, op=op, key=key, url=url)

