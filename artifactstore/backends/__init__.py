"""Storage backends: the narrow ``Backend`` contract, its adapters and wrappers.

``open_backend(url, **options)`` opens the backend a URL names:

=============================  ===========================================
URL                            backend
=============================  ===========================================
``/path``, ``./rel``           :class:`LocalBackend` (options: create, fsync)
``file:///path``               :class:`LocalBackend`
``memory://name``              :class:`MemoryBackend` (process-wide registry)
``s3://bucket/prefix``         S3 via s3fs (see :mod:`._s3` for options)
``gs://bucket/prefix``         GCS via gcsfs (``gcs://`` too; :mod:`._gcs`)
``https://host/path``          read-only web server or bucket endpoint (:mod:`._http`)
``artifactstore+https://host`` a team server, ``artifactstore serve`` (:mod:`._server`)
=============================  ===========================================

Wrappers compose around any backend: :class:`RetryingBackend`,
:class:`ReadOnlyBackend`, :class:`FaultInjectingBackend`. The layers above open a
store with ``open_backend_stack(url, create=..., **options)``: the backend of the
store's root (no folder made without ``create``) inside a ``RetryingBackend``.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from artifactstore.backends._endpoints import redact_url, take_options
from artifactstore.backends.absent import AbsentBackend
from artifactstore.backends.base import Backend, ObjectInfo, check_key
from artifactstore.backends.local import LocalBackend
from artifactstore.backends.memory import MemoryBackend, drop_memory_store
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.backends.retry import RetryingBackend
from artifactstore.core.errors import ConfigurationError, StoreNotFoundError

if TYPE_CHECKING:
    from artifactstore.backends.faults import FaultInjectingBackend

__all__ = [
    "SUPPORTED_SCHEMES",
    "AbsentBackend",
    "Backend",
    "FaultInjectingBackend",
    "LocalBackend",
    "MemoryBackend",
    "ObjectInfo",
    "ReadOnlyBackend",
    "RetryingBackend",
    "check_key",
    "drop_memory_store",
    "local_folder",
    "open_backend",
    "open_backend_stack",
    "open_store_backend",
    "redact_url",
    "require_team_role",
]

#: URL schemes ``open_backend`` understands (a plain path needs none).
SUPPORTED_SCHEMES = ("file", "memory", "s3", "gs", "gcs", "artifactstore+https",
                     "artifactstore+http")



def __getattr__(name: str) -> Any:
    """``FaultInjectingBackend``, imported on first use: tests wrap stores in it, and
    its module's imports (random, signal) cost every command's start-up."""
    if name == "FaultInjectingBackend":
        from artifactstore.backends.faults import FaultInjectingBackend

        globals()[name] = FaultInjectingBackend
        return FaultInjectingBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LOCAL_OPTIONS = frozenset({"create", "fsync"})


def open_backend(url: str, **options: Any) -> Backend:
    """Open the backend that holds the store at ``url``.

    Raises ``ConfigurationError`` for an unknown scheme, an unknown option or
    a plain-http endpoint off loopback (unless ``allow_insecure_http=True``),
    and ``MissingExtraError`` when s3fs or gcsfs is not installed.
    """
    match = _SCHEME.match(url)
    if match is None:
        return LocalBackend(url, **take_options(options, _LOCAL_OPTIONS, "local"))
    scheme = match.group(1).lower()
    if scheme == "file":
        return LocalBackend(_file_path(url), **take_options(options, _LOCAL_OPTIONS, "file://"))
    if scheme == "memory":
        take_options(options, frozenset(), "memory://")
        return MemoryBackend(url[match.end() :].rstrip("/"))
    if scheme == "s3":
        from artifactstore.backends._s3 import open_s3

        return open_s3(url, options)
    if scheme in ("gs", "gcs"):
        from artifactstore.backends._gcs import open_gcs

        return open_gcs(url, options)
    if scheme in ("https", "http"):
        from artifactstore.backends._http import open_http

        return open_http(url, options)
    if scheme in ("artifactstore+https", "artifactstore+http"):
        from artifactstore.backends._server import open_server

        return open_server(url, options)
    raise ConfigurationError(
        f"unknown store URL scheme {scheme!r} in {redact_url(url)!r}; supported: "
        "a local path, file://, memory://, s3://, gs:// (or gcs://), https:// (read-only), "
        "artifactstore+https:// (a team server)"
    )


def open_store_backend(url: str, *, create: bool = False, **options: Any) -> Backend:
    """``open_backend`` for the root of a store: opening never makes a folder.

    Why: ``ls --store /typo`` must not leave a ``/typo`` behind. A local root is
    made only with ``create``; without it a missing one raises
    ``StoreNotFoundError`` (exit 13). Other schemes have no folder to make.
    """
    match = _SCHEME.match(url)
    scheme = "" if match is None else match.group(1).lower()
    if scheme in ("", "file"):
        root = url if scheme == "" else _file_path(url)
        if not create and not os.path.lexists(root):
            raise StoreNotFoundError.at(url)
        options = {**options, "create": create}
    return open_backend(url, **options)


def open_backend_stack(url: str, *, create: bool = False, **options: Any) -> Backend:
    """The backend every store is opened through: :func:`open_store_backend` (no folder
    made without ``create``) wrapped in :class:`RetryingBackend`, so that transient
    failures are retried with backoff."""
    return RetryingBackend(open_store_backend(url, create=create, **options))


def require_team_role(backend: Backend, project: str, role: str, doing: str) -> None:
    """Before work that only ``role`` (``"admin"``...) may finish: when ``backend`` is a
    team server (wrapped or not), ask it who we are, and refuse now, with the server's
    rule in one line (NotAuthorizedError, exit 15), if our role in ``project`` is lower.
    Why: the server refuses each write on its own, but a command whose first writes a
    lower role may do (a delete clearing aliases before its tombstone) would otherwise
    change the store before it is refused. Other backends: nothing to ask."""
    found: Any = backend
    while not hasattr(found, "whoami") and hasattr(found, "inner"):
        found = found.inner
    if not hasattr(found, "whoami"):
        return
    from artifactstore.core.errors import NotAuthorizedError, NotSignedInError

    order = ("none", "reader", "writer", "admin")
    answer = found.whoami()
    roles = answer["roles"]
    held = str(roles.get(project, roles.get("*", "none")))
    if (order.index(held) if held in order else 0) >= order.index(role):
        return
    if answer.get("user") is None:
        raise NotSignedInError(f"{doing} in project {project} on {backend.url} needs {role}: "
                               "sign in with 'artifactstore login URL' (or set "
                               "ARTIFACTSTORE_TOKEN)")
    token = answer.get("token")
    who = str(answer.get("email") or answer.get("user") or "anonymous")
    who += f" (token {token})" if token else ""
    raise NotAuthorizedError(f"{who} is {'a ' + held if held != 'none' else 'not a member'} "
                             f"of project {project} on {backend.url}; {doing} needs {role}")


def local_folder(backend: Backend) -> str | None:
    """The folder a local backend (wrapped or not) keeps its objects in, else None."""
    url = backend.url
    return _file_path(url) if url.lower().startswith("file://") else None


def _file_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"unsupported file URL {redact_url(url)!r}; expected file:///absolute/path"
        )
    if not parts.path:
        raise ConfigurationError(f"file URL {url!r} has no path; expected file:///absolute/path")
    return _url2pathname(parts.path)


def _url2pathname(path: str) -> str:
    """``urllib.request.url2pathname`` without importing urllib.request (~20 ms: it
    imports http.client, email and ssl), which a ``get`` from a local store otherwise
    pays for one path: on POSIX that function is ``unquote``."""
    if os.name == "nt":
        from nturl2path import url2pathname

        return url2pathname(path)
    return unquote(path)
