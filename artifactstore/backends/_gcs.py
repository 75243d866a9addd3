"""Build the Google Cloud Storage backend (gcsfs) for ``gs://`` and ``gcs://`` URLs.

Options (all optional):

==================  =====================================================
endpoint_url        GCS-compatible endpoint (fake-gcs-server); default
                    Google, or ``STORAGE_EMULATOR_HOST``
token               gcsfs credentials: ``"anon"``, ``"google_default"``,
                    ``"cloud"``, a service-account JSON path or dict. When
                    the endpoint is loopback (an emulator) and no token is
                    given, ``"anon"`` is used, so tests never reach for
                    cloud credentials or the metadata server
project             GCP project id
allow_insecure_http allow a plain ``http://`` endpoint that is not loopback
requests_timeout    seconds per HTTP request (gcsfs default otherwise)
timeout             optional deadline in seconds for each backend call
==================  =====================================================

``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` is defaulted to ``false`` before gcsfs is
imported, and the core ``gcsfs.core.GCSFileSystem`` is used explicitly: the
experimental subclass probes every bucket through the Storage Control API,
which an emulator does not serve, and each call then takes 50-80 s.

Retries: gcsfs retries connection errors, 408, 429 and 5xx six times with
1-16 s of backoff, fixed when the class is defined and not configurable. An
unreachable GCS endpoint therefore takes about 35 s to fail, unless the
``timeout`` option bounds each call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from artifactstore.backends._endpoints import (
    check_endpoint,
    is_loopback_host,
    parse_bucket_url,
    take_options,
)
from artifactstore.backends._errors import configuring
from artifactstore.backends.fsspec_backend import FsspecBackend
from artifactstore.core.errors import ConfigurationError, MissingExtraError

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

__all__ = ["GCS_OPTIONS", "open_gcs"]

GCS_OPTIONS = frozenset(
    {"endpoint_url", "token", "project", "allow_insecure_http", "requests_timeout", "timeout"}
)


def open_gcs(url: str, options: Mapping[str, Any]) -> FsspecBackend:
    """Open ``gs://bucket/prefix`` with ``options`` (see the module docstring)."""
    opts = take_options(options, GCS_OPTIONS, "gs://")
    parsed = parse_bucket_url(url)
    if parsed.user or parsed.secret:
        raise ConfigurationError("gs:// URLs cannot carry credentials; pass token=... as an option")
    try:
        import gcsfs.core
    except ImportError as exc:
        raise MissingExtraError(
            "gs:// stores need the gcsfs package: pip install 'artifactstore[gcs]'"
        ) from exc

    endpoint = opts.get("endpoint_url") or _emulator_host()
    if endpoint:
        check_endpoint(endpoint, allow_insecure_http=bool(opts.get("allow_insecure_http")))
    token = opts.get("token")
    if token is None and endpoint and is_loopback_host(urlsplit(endpoint).hostname):
        token = "anon"
    kwargs: dict[str, Any] = {}
    if opts.get("project"):
        kwargs["project"] = opts["project"]
    with configuring(parsed.display(opts.get("endpoint_url"))):
        fs = gcsfs.core.GCSFileSystem(
            token=token,
            endpoint_url=endpoint or None,
            requests_timeout=opts.get("requests_timeout"),
            skip_instance_cache=True,
            use_listings_cache=False,
            **kwargs,
        )

    def close() -> None:
        _close_gcs(fs)

    return FsspecBackend(
        fs,
        parsed.root,
        url=parsed.display(opts.get("endpoint_url")).replace("gcs://", "gs://", 1),
        atomic_create=True,
        timeout=opts.get("timeout"),
        on_close=close,
    )


def _emulator_host() -> str | None:
    """``STORAGE_EMULATOR_HOST`` as a URL (gcsfs honours it when no endpoint is given)."""
    value = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if value in ("", "default"):
        return None
    return value if value.startswith(("http://", "https://")) else f"http://{value}"


def _close_gcs(fs: Any) -> None:
    """Close the aiohttp session, if one was opened, on the loop that owns it."""
    from fsspec.asyn import sync

    session = getattr(fs, "_session", None)
    if session is None or session.closed or fs.loop is None or not fs.loop.is_running():
        return
    try:
        sync(fs.loop, session.close, timeout=5)
    except Exception:
        # best effort: gcsfs's finalizer closes the connector anyway
        return
    fs._session = None
