"""The object protocol v1 (docs/design.md §8): Starlette routes over the backing store.

Every request goes through the same steps: the key from the path (percent-decoded once
by the ASGI server, then checked with :func:`~artifactstore.backends.base.check_key`, so
``..``, ``%2e%2e``, ``%2F`` tricks, ``//`` and NUL never reach the store); who is asking
(the :class:`~.gate.Authenticator`); whether they may (the :class:`~.gate.Authorizer`);
the backend call, in a worker thread (the backends block); and, for writes and deletes,
an entry in the :class:`~.gate.AuditTrail` whatever the outcome.

* ``GET`` streams: the object is read in pieces of :data:`PIECE` bytes with
  ``get_range``, so the server never holds a whole pack; an object smaller than one
  piece costs the backing store one request, as a direct ``get`` does.
* ``PUT`` reads at most ``max_object_bytes`` (413 beyond, without reading further),
  once its size fits the process's :class:`~.uploads.UploadBudget` (it waits, unread,
  until it does), and writes with ``put_parts`` (the received chunks, not joined) or,
  with ``If-None-Match: *``, ``put_if_absent`` (201 created, 412 already there).
* A ``PUT`` that would replace an object under ``objects/`` (packs and indexes) needs
  the right to delete it (admin); for anyone else it is create-only: it stores the
  object if it is absent (201) and otherwise leaves the existing one alone (204), so a
  writer can never swap a pack's bytes.
* ``GET /v1/list`` pages a listing: ``next`` is the last key the page looked at; the
  live listing behind it is kept for :data:`PAGER_SECONDS` so the next page continues it
  (another instance, or a late page, lists again and skips to ``after``). Keys the
  caller may not read are left out.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from artifactstore.backends._keys import check_prefix
from artifactstore.backends.base import Backend, check_key
from artifactstore.core.errors import (
    ArtifactStoreError,
    BackendUnavailableError,
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
    TransientBackendError,
)
from artifactstore.server.gate import Action, AuditTrail, Authenticator, Authorizer
from artifactstore.server.opengate import SERVER_PREFIX
from artifactstore.server.principal import Principal
from artifactstore.server.uploads import UploadBudget

_log = logging.getLogger("artifactstore.server")

__all__ = ["ERROR_HEADER", "MESSAGE_HEADER", "PAGER_SECONDS", "PIECE", "ObjectRoutes",
           "TooLargeError", "error_response"]

#: bytes read from the backing store per piece of a streamed GET
PIECE: Final = 8 << 20
#: an error's code and (percent-encoded) message, also in headers: HEAD has no body
ERROR_HEADER: Final = "X-Artifactstore-Error"
MESSAGE_HEADER: Final = "X-Artifactstore-Message"
#: how long a listing in progress is kept for its next page
PAGER_SECONDS: Final = 120.0
_PAGERS: Final = 256
_MAX_PAGE: Final = 10000


class TooLargeError(InvalidInputError):
    """A request body over the server's limit (HTTP 413)."""


def error_response(exc: BaseException, *, hide: str | None = None) -> JSONResponse:
    """The protocol's JSON error for a library error (``hide``: the backing store's URL,
    replaced in messages by "the server's store")."""
    status, code = _status(exc)
    message = " ".join(str(exc).split()) or type(exc).__name__
    if hide:
        message = message.replace(hide, "the server's store")
    message = message[:300]
    # the same in headers, for HEAD (no body): the message percent-encoded (any key)
    headers = {ERROR_HEADER: code, MESSAGE_HEADER: quote(message, safe=" /:;,'()=+@")}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="artifactstore"'
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers=headers)


def _status(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, TooLargeError):
        return 413, "too_large"
    if isinstance(exc, NotSignedInError):
        return 401, "not_signed_in"
    if isinstance(exc, NotAuthorizedError):
        return 403, "not_authorized"
    if isinstance(exc, InvalidInputError):
        return 400, "invalid_input"
    if isinstance(exc, NotFoundError):
        return 404, "not_found"
    if isinstance(exc, TransientBackendError | BackendUnavailableError):
        return 503, "unavailable"
    return 500, "backend_error"


class _Pagers:
    """Listings in progress, by (caller, prefix, last key given out); short-lived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[tuple[str, str, str], tuple[float, Iterator[str]]] = {}

    def take(self, caller: str, prefix: str, after: str) -> Iterator[str] | None:
        with self._lock:
            found = self._live.pop((caller, prefix, after), None)
        if found is None or time.monotonic() - found[0] > PAGER_SECONDS:
            return None
        return found[1]

    def keep(self, caller: str, prefix: str, after: str, rest: Iterator[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for name, (since, _) in list(self._live.items()):
                if now - since > PAGER_SECONDS:
                    del self._live[name]
            while len(self._live) >= _PAGERS:
                del self._live[next(iter(self._live))]
            self._live[(caller, prefix, after)] = (now, rest)


class ObjectRoutes:
    """The protocol's routes over ``backend`` with a gate (authenticator, authorizer,
    audit trail); ``max_bytes`` is the largest body a PUT may carry, ``budget`` bounds
    the bytes of all the bodies held at once (default: four of the largest)."""

    def __init__(self, backend: Backend, *, authenticator: Authenticator,
                 authorizer: Authorizer, audit: AuditTrail, max_bytes: int,
                 budget: UploadBudget | None = None) -> None:
        self.backend = backend
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.audit = audit
        self.max_bytes = max_bytes
        self.budget = budget or UploadBudget(4 * max_bytes)
        self._pagers = _Pagers()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/o/{key:path}", self.object,
                  methods=["GET", "HEAD", "PUT", "DELETE"]),
            Route("/v1/list", self.listing, methods=["GET"]),
        ]

    # -- objects ----------------------------------------------------------------

    async def object(self, request: Request) -> Response:
        method = request.method
        action = {"GET": Action.READ, "HEAD": Action.READ, "DELETE": Action.DELETE}.get(
            method, Action.CREATE if request.headers.get("if-none-match") == "*"
            else Action.PUT)
        principal: Principal | None = None
        key = request.path_params["key"]
        try:
            check_key(key)
            principal = await run_in_threadpool(self._principal, request)
            await run_in_threadpool(self._allow, principal, action, key)
            if method == "GET":
                return await self._get(request, key)
            if method == "HEAD":
                return await self._head(key)
            if method == "DELETE":
                await run_in_threadpool(self.backend.delete, key)
                response: Response = Response(status_code=204)
            else:
                response = await self._put(request, principal, action, key)
        except ArtifactStoreError as exc:
            response = error_response(exc, hide=self.backend.url)
        if action.writes and principal is not None:
            await run_in_threadpool(self.audit.record, principal, action, key,
                                    response.status_code)
        return response

    def _principal(self, request: Request) -> Principal:
        principal = self.authenticator.principal(request)
        request.state.principal = principal.label
        return principal

    def _allow(self, principal: Principal, action: Action, key: str) -> None:
        if key.startswith(SERVER_PREFIX):
            raise NotAuthorizedError(f"{key!r} is the server's own data; it is never served")
        self.authorizer.check(principal, action, key)

    async def _head(self, key: str) -> Response:
        info = await run_in_threadpool(self.backend.stat, key)
        headers = {"Content-Length": str(info.size)}
        if info.etag:
            headers["ETag"] = '"' + info.etag.replace('"', "") + '"'
        return Response(status_code=200, headers=headers)

    async def _get(self, request: Request, key: str) -> Response:
        wanted = _range(request.headers.get("range"))
        start, length = wanted if wanted else (0, None)
        size = PIECE if length is None else min(PIECE, length)
        first = await run_in_threadpool(self.backend.get_range, key, start, size)
        if wanted is not None and not first:  # at or past the end (the object exists)
            return Response(status_code=416, headers={"Content-Range": "bytes */*"})
        whole = len(first) < size or length == len(first)
        headers = {} if length is None else {
            "Content-Range": f"bytes {start}-{start + (len(first) if whole else length) - 1}/*"}
        status = 200 if wanted is None else 206
        if whole:
            return Response(first, status_code=status, headers=headers,
                            media_type="application/octet-stream")
        return StreamingResponse(self._pieces(key, first, start, length), status_code=status,
                                 headers=headers, media_type="application/octet-stream")

    def _pieces(self, key: str, first: bytes, start: int,
                length: int | None) -> Iterator[bytes]:
        """The first piece, then the next ones until the object (or range) ends."""
        yield first
        offset, left = start + len(first), None if length is None else length - len(first)
        while left is None or left > 0:
            size = PIECE if left is None else min(PIECE, left)
            try:
                piece = self.backend.get_range(key, offset, size)
            except ArtifactStoreError as exc:
                # The answer has started: raising cuts the connection before the
                # chunked body's end, so the client sees a broken (retried) read,
                # never a short object taken for whole.
                _log.warning("GET %s stopped at byte %d: %s", key, offset,
                             " ".join(str(exc).split())[:300])
                raise
            if piece:
                yield piece
            if len(piece) < size:
                return
            offset += len(piece)
            left = None if left is None else left - len(piece)

    async def _put(self, request: Request, principal: Principal, action: Action,
                   key: str) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            raise TooLargeError(self._too_large(declared))
        # a chunked body's size is unknown: it may need the whole per-object limit
        async with self.budget.reserve(self.max_bytes if declared is None else int(declared)):
            chunks = await self._body(request)
            return await self._store(principal, action, key, chunks)

    async def _body(self, request: Request) -> list[bytes]:
        chunks: list[bytes] = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > self.max_bytes:
                raise TooLargeError(self._too_large(str(received)))
            if chunk:
                chunks.append(chunk)
        return chunks

    async def _store(self, principal: Principal, action: Action, key: str,
                     chunks: list[bytes]) -> Response:
        if action is Action.CREATE:
            created = await run_in_threadpool(self.backend.put_if_absent, key,
                                              _joined(chunks))
            return Response(status_code=201 if created else 412)
        replace = await run_in_threadpool(self._may_replace, principal, key)
        if replace:
            await run_in_threadpool(self.backend.put_parts, key, chunks)
            return Response(status_code=204)
        created = await run_in_threadpool(self.backend.put_if_absent, key, _joined(chunks))
        return Response(status_code=201 if created else 204)

    def _may_replace(self, principal: Principal, key: str) -> bool:
        """Whether this PUT may replace what is there: the authorizer's ``may_replace``
        when it has one (server.authz); else anything outside ``objects/`` (the PUT was
        allowed), objects only for who may delete them."""
        decide: Callable[[Principal, str], bool] | None = getattr(
            self.authorizer, "may_replace", None)
        if decide is not None:
            return bool(decide(principal, key))
        if not key.startswith("objects/"):
            return True
        try:
            self.authorizer.check(principal, Action.DELETE, key)
        except (NotAuthorizedError, NotSignedInError):
            return False
        return True

    def _too_large(self, size: str) -> str:
        return (f"the body ({size:.20} bytes) is over this server's limit of "
                f"{self.max_bytes} bytes; raise max_object_mib in its settings")

    # -- listings -----------------------------------------------------------------

    async def listing(self, request: Request) -> Response:
        query = request.query_params
        try:
            prefix = query.get("prefix", "")
            check_prefix(prefix)
            after = query.get("after")
            limit = _limit(query.get("limit", "1000"))
            principal = await run_in_threadpool(self._principal, request)
            await run_in_threadpool(self.authorizer.check, principal, Action.LIST, prefix)
            keys, last = await run_in_threadpool(self._page, principal, prefix, after, limit)
        except ArtifactStoreError as exc:
            return error_response(exc, hide=self.backend.url)
        return JSONResponse({"keys": keys, "next": last})

    def _page(self, principal: Principal, prefix: str, after: str | None,
              limit: int) -> tuple[list[str], str | None]:
        caller = f"{principal.subject}\x00{principal.token_id}"
        rest = None if after is None else self._pagers.take(caller, prefix, after)
        if rest is None:
            rest = iter(self.backend.list(prefix))
            if after is not None:
                rest = itertools.dropwhile(lambda key: key <= after, rest)
        seen = list(itertools.islice(rest, limit))
        last = seen[-1] if len(seen) == limit else None
        if last is not None:
            self._pagers.keep(caller, prefix, last, rest)
        keys = [key for key in seen if not key.startswith(SERVER_PREFIX)]
        return list(self.authorizer.visible(principal, keys)), last


def _joined(chunks: list[bytes]) -> bytes:
    """The body in one piece, the pieces let go (so it is held once, not twice)."""
    whole = b"".join(chunks)
    chunks.clear()
    return whole


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= _MAX_PAGE:
        raise InvalidInputError(f"limit is 1 to {_MAX_PAGE}, not {text[:20]!r}")
    return int(text)


def _range(header: str | None) -> tuple[int, int] | None:
    """``bytes=a-b`` -> (a, b - a + 1); no header -> None; anything else is refused
    (one range with both ends is all the protocol's clients send)."""
    if header is None:
        return None
    unit, _, span = header.strip().partition("=")
    first, _, last = span.partition("-")
    if unit.strip().lower() != "bytes" or not (first.isdigit() and last.isdigit()) or (
            int(last) < int(first)):
        raise InvalidInputError(f"unsupported Range {header[:60]!r}; send bytes=FIRST-LAST")
    return int(first), int(last) - int(first) + 1
