"""A light read path for ``s3://`` stores: signed urllib3 requests, s3fs for the rest.

Why: s3fs + aiobotocore cost ~0.6 CPU-s and ~65 MiB to import and to make a client,
and every streamed read hops through their event loop thread; a command that only
reads (``ls``, ``get``) paid that on every start (docs/benchmarks.md, "S3 reads, round
two"). botocore's own credential chain and SigV4 signer over urllib3 (both installed
with the ``[s3]`` extra) do the same reads for a fraction of it.

Scope, decided once when the store is opened (:func:`read_scope`), and only where it
is certain; anything else opens s3fs exactly as before:

* the endpoint is known: the ``endpoint_url`` option or ``AWS_ENDPOINT_URL_S3`` /
  ``AWS_ENDPOINT_URL`` (path-style, as s3fs sends to an IP or custom endpoint), or AWS
  itself in a standard commercial region given as an option or by botocore's
  configuration, for a bucket name that is a plain DNS label (virtual-hosted style);
* credentials are given (options or the URL), ``anon=True``, or botocore's credential
  chain returns some (environment, shared files, roles, SSO, IMDS: the same chain s3fs
  would use);
* no option the reader does not understand (``profile``, ``timeout``), no fsspec
  configuration for ``s3``, no proxy, and no AWS setting that changes addressing
  (FIPS, dual-stack, accelerate, ``s3`` or ``endpoint_url`` in the profile). TLS is
  verified against the CA bundle botocore would use (``AWS_CA_BUNDLE``, the profile's
  ``ca_bundle``, else its own).

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

import builtins
import errno
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

from artifactstore.backends._endpoints import BucketURL, check_endpoint
from artifactstore.backends._errors import map_error, mapped_errors
from artifactstore.backends._keys import check_prefix, check_range
from artifactstore.backends.base import Backend, ObjectInfo, check_key, is_key
from artifactstore.core.errors import BackendError

__all__ = ["READ_OPTIONS", "ReadScope", "S3ReadBackend", "read_scope"]

#: options the reader understands; any other one given sends the store to s3fs
READ_OPTIONS = frozenset({"endpoint_url", "key", "secret", "token", "region", "anon",
                          "allow_insecure_http", "connect_timeout", "read_timeout",
                          "max_attempts"})
#: settings (environment) that change how or where requests go, which s3fs would honour
_OUT_OF_SCOPE_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "AWS_USE_FIPS_ENDPOINT",
                     "AWS_USE_DUALSTACK_ENDPOINT", "AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS")
#: profile settings (config file) that do the same
_OUT_OF_SCOPE_CONFIG = ("s3", "services", "endpoint_url", "use_fips_endpoint",
                        "use_dualstack_endpoint", "proxy", "proxies_config")
#: AWS's commercial partition (``amazonaws.com``); China, GovCloud and ISO are not
_AWS_REGION = re.compile(r"(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-[0-9]{1,2}")
#: a bucket that is one plain DNS label: virtual-hosted addressing needs no more thought
_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
#: bytes :meth:`S3ReadBackend.iter_range` hands out at once
_PIECE = 1 << 20
#: names per listing page (S3's maximum); tests lower it to exercise paging
LIST_PAGE = 1000
#: an error document is read up to this size (a hostile endpoint cannot make us hold more)
_ERROR_BODY = 64 << 10
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ReadScope:
    """Where and how the reader sends requests: the bucket root URL (path-style or
    virtual-hosted), the signing region, the credentials (None: unsigned requests,
    ``anon``), the CA bundle botocore would verify TLS with, and its timeouts and
    attempts."""

    bucket_root: str
    region: str
    credentials: Any
    ca_bundle: str
    connect_timeout: float
    read_timeout: float
    attempts: int


def read_scope(opts: dict[str, Any], parsed: BucketURL) -> ReadScope | None:
    """The reader's settings for this store, or None when s3fs must serve it (module
    docstring). Raises ``ConfigurationError`` for an endpoint s3fs would refuse too
    (plain http off loopback without ``allow_insecure_http``)."""
    if set(opts) - READ_OPTIONS or _env_out_of_scope():
        return None
    endpoint = (opts.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL"))
    if endpoint:
        check_endpoint(endpoint, allow_insecure_http=bool(opts.get("allow_insecure_http")))
    try:
        from botocore.httpsession import get_cert_path

        if _without_session(opts):
            # what a session would find: no config file, no profile, credentials given
            region = opts.get("region") or os.environ.get("AWS_DEFAULT_REGION")
            credentials = _credentials(opts, parsed, None)
            ca_bundle = os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
        else:
            session = _botocore_session()
            config = session.get_scoped_config()
            if any(name in config for name in _OUT_OF_SCOPE_CONFIG):
                return None
            region = opts.get("region") or session.get_config_variable("region")
            credentials = _credentials(opts, parsed, session)
            # botocore's choice: AWS_CA_BUNDLE or the profile's ca_bundle, else its bundle
            ca_bundle = session.get_config_variable("ca_bundle") or get_cert_path(True)
    except Exception:
        return None  # a profile or chain we cannot read: s3fs reports it as before
    if credentials is None:
        return None
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.path.strip("/") or parts.query or parts.username or parts.password:
            return None
        root = f"{parts.scheme}://{parts.netloc}/{quote(parsed.bucket, safe='')}"
        region = region or "us-east-1"  # botocore's signing region for a custom endpoint
    else:
        if not (region and _AWS_REGION.fullmatch(region)
                and _DNS_BUCKET.fullmatch(parsed.bucket)):
            return None
        root = f"https://{parsed.bucket}.s3.{region}.amazonaws.com"
    return ReadScope(root, str(region), None if credentials is False else credentials,
                     str(ca_bundle),
                     float(opts.get("connect_timeout", 5)), float(opts.get("read_timeout", 15)),
                     max(1, int(opts.get("max_attempts", 3))))


def _env_out_of_scope() -> bool:
    environ = os.environ
    if any(environ.get(name) or environ.get(name.lower()) for name in _OUT_OF_SCOPE_ENV):
        return True
    if any(name.upper().startswith("FSSPEC_S3") for name in environ):
        return True
    # fsspec's configuration files (JSON/INI), where fsspec.config looks for them
    folder = Path(environ.get("FSSPEC_CONFIG_DIR") or Path.home() / ".config" / "fsspec")
    try:
        return any(entry.is_file() for entry in folder.iterdir())
    except OSError:
        return False  # no such folder


def _without_session(opts: dict[str, Any]) -> bool:
    """Whether botocore's session has nothing to add: credentials given (or ``anon``), no
    profile named and no config file. Why: ``botocore.session`` imports botocore's client
    machinery (~55 modules, ~40 ms), which a signed GET does not need."""
    given = opts.get("anon") or (opts.get("key") and opts.get("secret"))
    if not given or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE"):
        return False
    config = os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    return not os.path.isfile(config)


def _botocore_session() -> Any:
    from botocore.session import Session

    return Session()


def _credentials(opts: dict[str, Any], parsed: BucketURL, session: Any) -> Any:
    """botocore credentials; False for unsigned requests (``anon``); None if none (or
    none given and no ``session`` to ask)."""
    if opts.get("anon"):
        return False
    key, secret = opts.get("key", parsed.user), opts.get("secret", parsed.secret)
    if key is not None or secret is not None:
        if not (key and secret):
            return None  # s3fs reports the half-given credentials
        from botocore.credentials import Credentials

        return Credentials(key, secret, opts.get("token"))
    return None if session is None else session.get_credentials()


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
        return self._pages(prefix, query, first, after)

    def _page(self, prefix: str, query: dict[str, str]) -> tuple[builtins.list[str], str | None]:
        from artifactstore.backends._s3listing import parse_page

        url = self._scope.bucket_root + "/?" + _query(query)
        with mapped_errors("list", prefix, self._url):
            response = self._send("GET", url, {}, op="list", key=prefix)
            page = parse_page(response.data, self._url)
        return page.names, page.next_token

    def _pages(self, prefix: str, query: dict[str, str],
               first: tuple[builtins.list[str], str | None], after: str | None
               ) -> Iterator[str]:
        strip = len(self._prefix)
        names, token = first
        last = ""
        tokens: set[str] = set()
        while True:
            for name in names:
                key = name[strip:]
                if not (name.startswith(self._prefix) and key.startswith(prefix)
                        and (after is None or key > after) and is_key(key)):
                    continue
                if key <= last:
                    raise BackendError(
                        f"list {prefix!r} on {self._url}: the endpoint returned {key!r} "
                        f"after {last!r}; S3 listings are sorted, check the endpoint")
                last = key
                yield key
            if token is None:
                return
            if token in tokens:  # a server looping on one token would never end
                raise BackendError(f"list {prefix!r} on {self._url}: the endpoint repeated "
                                   "a continuation token; check the endpoint")
            tokens.add(token)
            names, token = self._page(prefix, {**query, "continuation-token": token})

    # -- writes: the s3fs backend ---------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        """s3fs's ``put``."""
        self._writes().put(key, data)

    def put_parts(self, key: str, parts: Any) -> None:
        """s3fs's ``put_parts``."""
        self._writes().put_parts(key, parts)

    def put_file(self, key: str, file: BinaryIO, size: int) -> None:
        """s3fs's ``put_file`` (a streamed put)."""
        self._writes().put_file(key, file, size)  # type: ignore[attr-defined]

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

