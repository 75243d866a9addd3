"""``artifactstore+https://host/``: a store relayed by a team server (``artifactstore serve``).

One HTTP request per :class:`~artifactstore.backends.base.Backend` call, the object
protocol v1 of docs/design.md §8:

=========================================  =========================================
request                                    answer
=========================================  =========================================
``GET /v1/o/<key>`` (``Range: bytes=a-b``)  200 / 206 with the bytes; 404
``HEAD /v1/o/<key>``                       200 with ``Content-Length``, ``ETag``; 404
``PUT /v1/o/<key>`` (``If-None-Match: *``)  201 created; 412 already there; 204 stored
``DELETE /v1/o/<key>``                     204 (an absent key is fine)
``GET /v1/list?prefix=P&after=K&limit=N``  200 ``{"keys": [...], "next": K or null}``
=========================================  =========================================

Errors are JSON ``{"error": code, "message": line}``; the server's line becomes the
exception's message: 400 InvalidInputError, 401 NotSignedInError (sign in again), 403
NotAuthorizedError (the role does not allow it), 404 NotFoundError, 413
InvalidInputError (too large), 5xx, 408 and 429 TransientBackendError (retried by
:class:`~artifactstore.backends.retry.RetryingBackend`; 401 and 403 never are).

The transport is urllib3: a pool of keep-alive connections shared by the threads of one
backend, a connect and a read timeout, bodies streamed both ways (``put_parts`` sends
its parts as they are, with a ``Content-Length``; no join). urllib3's own retries are
off: a request body that is an iterator cannot be sent twice, and retrying is the
RetryingBackend's job. The token comes from the option ``token`` or from
:func:`artifactstore.backends.credentials.token_for` (``$ARTIFACTSTORE_TOKEN``, else the
one ``artifactstore login`` saved); it is sent as ``Authorization: Bearer`` and never
appears in :attr:`url` or in messages. Plain ``http://`` is refused off loopback unless
``allow_insecure_http=True``. Certificates are checked against the system's CAs
(``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured), or the file the option
``ca_certs`` names (a server with a certificate of the team's own CA).

Proxies are those of the environment, as curl and requests read them: ``HTTPS_PROXY``
(``https_proxy``) for an ``https`` server, ``HTTP_PROXY`` for a plain one, ``ALL_PROXY``
for both, none for a host ``NO_PROXY`` names; the option ``proxy`` gives one
explicitly (``"none"``: none whatever the environment says). Through a proxy an
``https`` server is reached by a ``CONNECT`` tunnel, so the proxy sees the host name
only; the certificate is still the server's. The proxy's own ``user:password@`` is
sent to it and never shown.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, NoReturn
from urllib.parse import quote, unquote, urlsplit

from artifactstore.backends._endpoints import check_endpoint, redact_url, take_options
from artifactstore.backends._errors import map_error
from artifactstore.backends._keys import check_prefix, check_range
from artifactstore.backends.base import ObjectInfo, check_key
from artifactstore.core.errors import (
    ArtifactStoreError,
    BackendError,
    ConfigurationError,
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
    TransientBackendError,
)

__all__ = ["SCHEMES", "SERVER_OPTIONS", "ServerBackend", "open_server", "proxy_for"]

SCHEMES: Final = ("artifactstore+https", "artifactstore+http")
SERVER_OPTIONS: Final = frozenset({"token", "timeout", "allow_insecure_http", "list_page",
                                   "ca_certs", "proxy"})
#: keys per listing page asked of the server (it may answer fewer)
LIST_PAGE: Final = 1000
#: small parts of a put_parts are sent together in blocks of about this size
_BLOCK: Final = 1 << 20
_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})
#: keep-alive connections per backend (its threads share them)
_CONNECTIONS: Final = 32


def proxy_for(scheme: str, host: str, explicit: str | None = None) -> str | None:
    """The proxy URL to reach ``scheme://host`` through, or None: ``explicit`` when
    given (``"none"``: no proxy), else the environment's (``NO_PROXY`` honoured)."""
    import urllib.request

    if explicit is not None:
        given = explicit.strip()
        return None if given.lower() in ("", "none") else _checked_proxy(given)
    found = urllib.request.getproxies()
    chosen = found.get(scheme) or found.get("all")
    if not chosen or urllib.request.proxy_bypass(host):
        return None
    return _checked_proxy(chosen)


def _checked_proxy(url: str) -> str:
    if "://" not in url:
        url = f"http://{url}"  # curl's reading of HTTPS_PROXY=host:port
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigurationError(f"unsupported proxy {redact_url(url)!r}: an http:// or "
                                 "https:// proxy is needed (socks is not supported)")
    return url


def _proxy_manager(url: str, pool_options: dict[str, Any]) -> Any:
    import urllib3

    parts = urlsplit(url)
    headers = None
    if parts.username is not None:
        headers = urllib3.make_headers(proxy_basic_auth=unquote(
            f"{parts.username}:{parts.password or ''}"))
    bare = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return urllib3.ProxyManager(bare, proxy_headers=headers, **pool_options)


def open_server(url: str, options: Mapping[str, Any]) -> ServerBackend:
    """The backend of the team server at ``url`` (``artifactstore+https://host[:port][/path]``)."""
    opts = take_options(dict(options), SERVER_OPTIONS, "artifactstore+https://")
    return ServerBackend(url, **opts)


class ServerBackend:
    """A store served by ``artifactstore serve``, through its object protocol."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = None,
                 allow_insecure_http: bool = False, list_page: int = LIST_PAGE,
                 ca_certs: str | None = None, proxy: str | None = None) -> None:
        import urllib3

        scheme, sep, rest = url.partition("+")
        parts = urlsplit(rest)
        if scheme.lower() != "artifactstore" or not sep or parts.scheme not in ("https", "http"):
            raise ConfigurationError(f"invalid server URL {redact_url(url)!r}; expected "
                                     "artifactstore+https://host[:port]/")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ConfigurationError(
                f"unsupported credentials, query or fragment in {redact_url(url)!r}; "
                "the token comes from 'artifactstore login' or $ARTIFACTSTORE_TOKEN")
        check_endpoint(f"{parts.scheme}://{parts.netloc}",
                       allow_insecure_http=allow_insecure_http)
        path = parts.path.strip("/")
        if path:
            try:
                check_key(path)
            except InvalidInputError as exc:
                raise ConfigurationError(f"invalid path in {url!r}: {exc}") from None
        if not 1 <= int(list_page) <= 10000:
            raise ConfigurationError(f"list_page is 1 to 10000, not {list_page}")
        self._base = f"{parts.scheme}://{parts.netloc}" + (f"/{quote(path)}" if path else "")
        self._url = f"artifactstore+{self._base}/"
        if token is None:
            from artifactstore.backends.credentials import token_for

            token = token_for(self._base)
        self._headers = {"User-Agent": "artifactstore"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._page = int(list_page)
        self._timeout = urllib3.Timeout(connect=10.0, read=timeout if timeout else 120.0)
        # block: more threads than connections wait for one (no "pool is full" warning
        # from urllib3, no connection opened and thrown away)
        pool_options: dict[str, Any] = {
            "maxsize": _CONNECTIONS, "block": True, "retries": False,
            "timeout": self._timeout, "ca_certs": None if ca_certs is None else str(ca_certs)}
        through = proxy_for(parts.scheme, parts.hostname or "", proxy)
        self._pool: Any = (urllib3.PoolManager(**pool_options) if through is None else
                           _proxy_manager(through, pool_options))
        self._closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ServerBackend({self._url!r})"

    @property
    def url(self) -> str:
        return self._url

    @property
    def supports_atomic_create(self) -> bool:
        return True  # the backing store's put_if_absent answers a create-only PUT

    @property
    def supports_range(self) -> bool:
        return True

    # -- reads ------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        check_key(key)
        return self._read("get", key, {})

    def get_range(self, key: str, start: int, length: int) -> bytes:
        check_key(key)
        check_range(start, length)
        if length == 0:  # no bytes, but a missing object is still an error
            self.stat(key)
            return b""
        return self._read("get_range", key,
                          {"Range": f"bytes={start}-{start + length - 1}"})[:length]

    def exists(self, key: str) -> bool:
        check_key(key)
        response = self._request("exists", key, "HEAD", self._object(key))
        if response.status == 404:
            return False
        self._check(response, "exists", key)
        return True

    def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        response = self._request("stat", key, "HEAD", self._object(key))
        self._check(response, "stat", key)
        try:
            size = int(response.headers.get("Content-Length", ""))
        except ValueError:
            raise BackendError(f"stat {key!r} on {self._url}: the server sent no size; "
                               "check that it is an artifactstore server") from None
        etag = response.headers.get("ETag")
        return ObjectInfo(key=key, size=size, etag=etag.strip('"') if etag else None)

    def list(self, prefix: str = "") -> Iterator[str]:
        check_prefix(prefix)
        self._open()
        return self._pages(prefix)

    def _pages(self, prefix: str) -> Iterator[str]:
        after: str | None = None
        while True:
            fields = {"prefix": prefix, "limit": str(self._page)}
            if after is not None:
                fields["after"] = after
            url = f"{self._base}/v1/list?" + "&".join(
                f"{name}={quote(value, safe='')}" for name, value in fields.items())
            response = self._request("list", prefix, "GET", url)
            self._check(response, "list", prefix)
            try:
                answer = json.loads(response.data)
                keys, after = answer["keys"], answer["next"]
            except (ValueError, KeyError, TypeError):
                raise BackendError(f"list {prefix!r} on {self._url}: the server's answer "
                                   "is not a listing; check that it is an artifactstore "
                                   "server") from None
            yield from keys
            if after is None:
                return

    def whoami(self) -> dict[str, Any]:
        """The server's ``/v1/whoami`` answer: who it takes this client for and the role
        in each project (``"*"``: every project, an open server)."""
        url = f"{self._base}/v1/whoami"
        response = self._request("whoami", "", "GET", url)
        self._check(response, "whoami", "")
        try:
            answer = json.loads(response.data)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("roles"), dict):
            raise BackendError(f"whoami on {self._url}: the server's answer is not one; "
                               "check that it is an artifactstore server")
        return answer

    # -- writes -----------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        response = self._request("put", key, "PUT", self._object(key), body=bytes(data))
        self._check(response, "put", key)

    def put_parts(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        check_key(key)
        size = sum(len(part) if isinstance(part, bytes) else part.nbytes for part in parts)
        response = self._request("put", key, "PUT", self._object(key), body=_blocks(parts),
                                 headers={"Content-Length": str(size)})
        self._check(response, "put", key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        check_key(key)
        response = self._request("put_if_absent", key, "PUT", self._object(key),
                                 body=bytes(data), headers={"If-None-Match": "*"})
        if response.status == 412:
            return False
        self._check(response, "put_if_absent", key)
        return True

    def delete(self, key: str) -> None:
        check_key(key)
        response = self._request("delete", key, "DELETE", self._object(key))
        if response.status != 404:
            self._check(response, "delete", key)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pool.clear()

    # -- plumbing ---------------------------------------------------------------

    def _object(self, key: str) -> str:
        return f"{self._base}/v1/o/{quote(key, safe='/')}"

    def _open(self) -> None:
        if self._closed:
            raise BackendError(f"{self._url} is closed; open the store again")

    def _read(self, op: str, key: str, headers: dict[str, str]) -> bytes:
        response = self._request(op, key, "GET", self._object(key), headers=headers,
                                 stream=True)
        try:
            if response.status == 416:  # a range at or past the end: no bytes
                return b""
            self._check(response, op, key)
            try:
                return bytes(response.read())
            except Exception as exc:  # a connection lost mid-body: retried
                raise map_error(exc, op=op, key=key, url=self._url) from exc
        finally:
            response.release_conn()

    def _request(self, op: str, key: str, method: str, url: str, *, body: Any = None,
                 headers: Mapping[str, str] | None = None, stream: bool = False) -> Any:
        self._open()
        from urllib3.exceptions import ProxyError, SSLError

        try:
            return self._pool.request(method, url, body=body,
                                      headers={**self._headers, **(headers or {})},
                                      preload_content=not stream, redirect=False)
        except SSLError as exc:  # not retried: the certificate will not change by itself
            raise BackendError(
                f"{op} {key!r} on {self._url}: the server's TLS certificate is not trusted "
                f"({' '.join(str(exc).split())[:160]}); if it comes from your own CA, pass "
                "ca_certs='ca.pem' or set SSL_CERT_FILE") from exc
        except ProxyError as exc:
            if "407" in str(exc):  # the tunnel was refused: credentials will not appear
                _raise(407, "", "", op, key, self._url)
            raise map_error(exc, op=op, key=key, url=self._url) from exc
        except Exception as exc:
            raise map_error(exc, op=op, key=key, url=self._url) from exc

    def _check(self, response: Any, op: str, key: str) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        code, message = _error(response)
        _raise(status, code, message, op, key, self._url)


def _error(response: Any) -> tuple[str, str]:
    """The server's error code and one-line message (its JSON, or for HEAD its
    headers), else the status line."""
    try:
        raw = response.data if response.data is not None else b""
    except Exception:  # the body is unreadable: the status says enough
        raw = b""
    try:
        answer = json.loads(raw[:4096])
        code, text = str(answer["error"]), str(answer["message"])
    except (ValueError, KeyError, TypeError):
        code = response.headers.get("X-Artifactstore-Error", "")
        text = unquote(response.headers.get("X-Artifactstore-Message", ""))
        if not (code and text):
            text = f"HTTP {response.status} {response.reason or ''}".strip()
    return code, " ".join(text.split())[:300]


def _raise(status: int, code: str, message: str, op: str, key: str, url: str) -> NoReturn:
    where = f"{op} {key!r} on {url}"
    error: ArtifactStoreError
    if status == 401:
        error = NotSignedInError(f"{where}: {message}")
    elif status == 403:
        error = NotAuthorizedError(f"{where}: {message}")
    elif status == 404:
        error = NotFoundError(f"{where}: no such object; check the key, it may have been "
                              "deleted")
    elif status in (400, 413, 414, 416, 422):
        error = InvalidInputError(f"{where}: {message}")
    elif status == 407:
        error = ConfigurationError(f"{where}: the proxy wants credentials; give them in its "
                                   "URL (HTTPS_PROXY=http://user:password@host:port)")
    elif code == "backend_error":  # the server's store failed for good: not retried
        error = BackendError(f"{where}: the server's store failed ({message})")
    elif status in _TRANSIENT:
        error = TransientBackendError(f"{where}: temporary failure ({message}); retry later")
    else:
        error = BackendError(f"{where}: the server answered {status} ({message})")
    raise error


def _blocks(parts: Sequence[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """The parts as a request body: big ones as they are, small ones gathered."""
    pending = bytearray()
    for part in parts:
        size = len(part) if isinstance(part, bytes) else part.nbytes
        if size >= _BLOCK:
            if pending:
                yield bytes(pending)
                pending.clear()
            yield part
        elif size:
            pending += part
            if len(pending) >= _BLOCK:
                yield bytes(pending)
                pending.clear()
    if pending:
        yield bytes(pending)
