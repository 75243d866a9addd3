"""Read-only ``https://`` (and loopback ``http://``) locations, for references.

Objects on a web server can be read (``get``, ``get_range``, ``stat`` with the
server's ETag or Last-Modified), never written or listed: the backend is wrapped
read-only. Plain ``http://`` is refused off loopback unless
``allow_insecure_http=True`` (data in transit would be readable and alterable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from artifactstore.backends._endpoints import check_endpoint, redact_url, take_options
from artifactstore.backends._errors import configuring
from artifactstore.backends.fsspec_backend import FsspecBackend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.errors import MissingExtraError

__all__ = ["HTTP_OPTIONS", "open_http"]

HTTP_OPTIONS = frozenset({"allow_insecure_http", "timeout"})


def open_http(url: str, options: Mapping[str, Any]) -> ReadOnlyBackend:
    """Open the folder ``url`` (``https://host/path``) of a web server, read-only."""
    opts = take_options(dict(options), HTTP_OPTIONS, "https://")
    parts = urlsplit(url)
    check_endpoint(f"{parts.scheme}://{parts.netloc}",
                   allow_insecure_http=bool(opts.get("allow_insecure_http", False)))
    try:
        from fsspec.implementations.http import HTTPFileSystem
    except ImportError as exc:  # aiohttp missing
        raise MissingExtraError(
            "https:// locations need aiohttp: pip install 'artifactstore[http]'"
        ) from exc
    with configuring(url):
        fs = HTTPFileSystem(skip_instance_cache=True, use_listings_cache=False)
    root = url.rstrip("/")
    return ReadOnlyBackend(FsspecBackend(fs, root, url=redact_url(root), atomic_create=False,
                                         timeout=opts.get("timeout")))
