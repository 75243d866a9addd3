"""Vendor error mapping at the backend boundary.

Every exception an adapter meets (``OSError`` from the OS, botocore and s3fs,
gcsfs ``HttpError``, aiohttp, fsspec timeouts) is turned into one
:mod:`artifactstore.core.errors` class here, with a one-line message naming the
operation, the key, the backend url and what to do. The vendor exception is
kept as ``__cause__`` for ``--debug`` tracebacks and never reaches users raw.

Classification works on *signals* gathered from the exception and its
cause/context chain, without importing any vendor package (they are optional
extras): class names anywhere in the MRO, ``errno`` values, S3 error codes
(``response["Error"]["Code"]``) and HTTP statuses.

Decisions:

* Permission problems (``AccessDenied``, 403, ``EACCES``) are a plain
  ``BackendError``, not ``ReadOnlyError``: ``ReadOnlyError`` means "you wrote
  through a read-only view", while a 403 is a credentials or policy problem
  that can hit reads too. Only ``EROFS`` (read-only file system) is a
  ``ReadOnlyError``.
* A missing bucket, a refused connection or an unknown host is
  ``BackendUnavailableError`` (permanent: retrying will not create a bucket).
* Timeouts, throttling and 5xx are ``TransientBackendError``.
* ``FileNotFoundError`` on a write or a listing means the bucket or root is
  missing (a missing *object* cannot make a write fail), so it maps to
  ``BackendUnavailableError``; on reads it maps to ``NotFoundError``.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from artifactstore.core.errors import (
    ArtifactStoreError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    NotFoundError,
    ReadOnlyError,
    StorageFullError,
    TransientBackendError,
)

__all__ = [
    "ROOT_OPERATIONS",
    "configuring",
    "is_missing_bucket",
    "is_precondition_failed",
    "is_range_not_satisfiable",
    "map_error",
    "mapped_errors",
]

#: Operations for which ``FileNotFoundError`` means the bucket or root is missing.
ROOT_OPERATIONS = frozenset({"put", "put_if_absent", "delete", "list"})

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalError",
        "OperationAborted",
        "ConditionalRequestConflict",
        "408",
        "429",
        "500",
        "502",
        "503",
        "504",
    }
)
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_TIMEOUT_NAMES = frozenset(
    {
        "TimeoutError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "FSTimeoutError",
        "ServerTimeoutError",
    }
)
_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionResetError",
        "BrokenPipeError",
        "ConnectionClosedError",
        "ServerDisconnectedError",
        "ClientPayloadError",
        "IncompleteRead",
        "ResponseStreamingError",
        "ProxyError",
        "ChecksumError",
        "ChunkedEncodingError",
    }
)
_TRANSIENT_ERRNOS = frozenset(
    {errno.ETIMEDOUT, errno.ECONNRESET, errno.EPIPE, errno.EAGAIN, errno.EBUSY, errno.EINTR}
)
_UNAVAILABLE_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ClientConnectorError",
        "ClientConnectorDNSError",
        "ConnectionRefusedError",
        "gaierror",
        "NoSuchBucket",
    }
)
_UNAVAILABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
)
_PERMISSION_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AccountProblem",
        "401",
        "403",
    }
)
_PERMISSION_NAMES = frozenset(
    {"PermissionError", "NoCredentialsError", "PartialCredentialsError", "RefreshError"}
)
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFIG_NAMES = frozenset({"ProfileNotFound", "NoRegionError", "InvalidConfigError"})


@dataclass
class _Signals:
    """What an exception chain says about its cause, vendor-neutrally."""

    names: set[str] = field(default_factory=set)
    errnos: set[int] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    statuses: set[int] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes and contexts, each once, at most 8 deep."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 8:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                todo.append(nxt)


def _signals(exc: BaseException) -> _Signals:
    sig = _Signals()
    for item in _chain(exc):
        sig.names.update(k.__name__ for k in type(item).__mro__)
        sig.texts.append(str(item))
        err = getattr(item, "errno", None)
        if isinstance(err, int):
            sig.errnos.add(err)
        # botocore ClientError: response = {"Error": {"Code": ...}, "ResponseMetadata": ...}
        response = getattr(item, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                sig.codes.add(str(code))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(status, int):
                sig.statuses.add(status)
        # aiohttp ClientResponseError carries .status (its .code is deprecated and
        # warns), gcsfs HttpError carries .code
        value = getattr(item, "status", None)
        if not isinstance(value, int):
            value = getattr(item, "code", None)
        if isinstance(value, int) and 100 <= value <= 599:
            sig.statuses.add(value)
    return sig


def is_missing_bucket(exc: BaseException) -> bool:
    """Whether ``exc`` says the bucket itself does not exist (S3 ``NoSuchBucket``)."""
    sig = _signals(exc)
    return "NoSuchBucket" in sig.codes or "NoSuchBucket" in sig.names


def is_precondition_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed create-only condition (HTTP 412, ``PreconditionFailed``)."""
    if isinstance(exc, FileExistsError):
        return True
    sig = _signals(exc)
    return "PreconditionFailed" in sig.codes or 412 in sig.statuses


def is_range_not_satisfiable(exc: BaseException) -> bool:
    """Whether ``exc`` is HTTP 416: a ranged read starting at or past the end."""
    sig = _signals(exc)
    return "InvalidRange" in sig.codes or 416 in sig.statuses


def _detail(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _classify(sig: _Signals, op: str) -> tuple[type[ArtifactStoreError], str, str]:
    """Return (class, what happened, what to do)."""
    forbidden = any(t.startswith("Forbidden") for t in sig.texts)  # gcsfs 403
    if sig.names & _CONFIG_NAMES:
        return ConfigurationError, "invalid client configuration", "check profile and region"
    if "NoSuchBucket" in sig.codes or "NoSuchBucket" in sig.names:
        return (
            BackendUnavailableError,
            "the bucket does not exist",
            "create the bucket or check the store URL",
        )
    if sig.errnos & _FULL_ERRNOS or "QuotaExceeded" in sig.codes:
        return StorageFullError, "no space left", "free space or raise the quota"
    if (
        sig.names & _TIMEOUT_NAMES
        or sig.codes & _TRANSIENT_CODES
        or sig.statuses & _TRANSIENT_STATUSES
        or sig.names & _TRANSIENT_NAMES
        or sig.errnos & _TRANSIENT_ERRNOS
    ):
        return (
            TransientBackendError,
            "temporary failure (timeout, throttling or server error)",
            "retry later",
        )
    if sig.names & _UNAVAILABLE_NAMES or sig.errnos & _UNAVAILABLE_ERRNOS:
        return (
            BackendUnavailableError,
            "cannot reach the backend",
            "check the endpoint URL, the network and that the service is running",
        )
    if errno.EROFS in sig.errnos:
        return ReadOnlyError, "the file system is read-only", "open a writable location"
    if (
        sig.codes & _PERMISSION_CODES
        or sig.statuses & {401, 403}
        or sig.names & _PERMISSION_NAMES
        or sig.errnos & {errno.EACCES, errno.EPERM}
        or forbidden
    ):
        return (
            BackendError,
            "permission denied",
            f"check the credentials and that they allow {op}",
        )
    missing = (
        "FileNotFoundError" in sig.names
        or errno.ENOENT in sig.errnos
        or sig.codes & _MISSING_CODES
        or 404 in sig.statuses
    )
    if missing and op in ROOT_OPERATIONS:
        return (
            BackendUnavailableError,
            "the bucket or store root does not exist",
            "create it or check the store URL",
        )
    if missing:
        return NotFoundError, "no such object", "check the key; it may have been deleted"
    return BackendError, "backend failure", "see the cause with --debug and retry"


def map_error(exc: BaseException, *, op: str, key: str | None, url: str) -> ArtifactStoreError:
    """Translate ``exc`` raised during ``op`` on ``key`` into an artifactstore error.

    Errors that already are ``ArtifactStoreError`` are returned unchanged. The
    caller raises the result ``from exc`` so the vendor error stays the cause.
    """
    if isinstance(exc, ArtifactStoreError):
        return exc
    cls, what, todo = _classify(_signals(exc), op)
    target = f"{op} {key!r}" if key is not None else op
    return cls(f"{target} on {url}: {what} ({_detail(exc)}); {todo}")


@contextmanager
def mapped_errors(op: str, key: str | None, url: str) -> Iterator[None]:
    """Run a block and re-raise anything it raises as an artifactstore error.

    ``ArtifactStoreError`` passes through untouched; anything else goes
    through :func:`map_error` and keeps the original as ``__cause__``.
    """
    try:
        yield
    except ArtifactStoreError:
        raise
    except Exception as exc:
        raise map_error(exc, op=op, key=key, url=url) from exc


@contextmanager
def configuring(url: str) -> Iterator[None]:
    """Turn a vendor error while building a client into ``ConfigurationError``.

    Constructors fail on bad settings (a token file that does not parse,
    conflicting credentials), never on I/O, so this is a configuration problem.
    """
    try:
        yield
    except ArtifactStoreError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"cannot open {url}: {_detail(exc)}; check the backend options"
        ) from exc
