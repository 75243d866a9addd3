"""Build the S3 backend (s3fs) for ``s3://bucket/prefix`` URLs.

Options (all optional):

==================  =====================================================
endpoint_url        S3-compatible endpoint (MinIO, moto); default AWS, or
                    fsspec's configuration, or ``AWS_ENDPOINT_URL_S3`` /
                    ``AWS_ENDPOINT_URL`` (see below)
key, secret, token  credentials (also accepted as ``s3://key:secret@bucket``);
                    default: the botocore chain (env, config files, roles)
region              region name, e.g. ``us-east-1``
profile             named profile from the AWS config files
anon                True for unsigned requests to public buckets
allow_insecure_http allow a plain ``http://`` endpoint that is not loopback
connect_timeout     seconds to establish a connection (default 5)
read_timeout        seconds to wait for response bytes (default 15)
max_attempts        botocore attempts per request, retries included (default 3)
timeout             optional deadline in seconds for each backend call
==================  =====================================================

fsspec's own configuration is honoured as s3fs users know it: the ``FSSPEC_S3_<OPTION>``
variables (``FSSPEC_S3_ENDPOINT_URL``, ``FSSPEC_S3_KEY``, ...), a ``FSSPEC_S3`` variable
holding a JSON object, and JSON/INI files in ``FSSPEC_CONFIG_DIR`` (``~/.config/fsspec``),
``client_kwargs`` included. An option given here wins over that configuration, which wins
over botocore's ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; whichever names the
endpoint, a plain-http endpoint that is not loopback needs ``allow_insecure_http``.

Retries are bounded on purpose: botocore's "standard" mode retries throttling,
5xx and connection errors with backoff up to ``max_attempts`` in total, and
s3fs's own retry loop is reduced to one pass (it would otherwise multiply the
attempts, five times, and an unreachable endpoint would take minutes to
report). Longer retry policies belong in :class:`RetryingBackend`.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Mapping
from typing import Any

from artifactstore.backends._endpoints import (
    BucketURL,
    check_endpoint,
    parse_bucket_url,
    take_options,
)
from artifactstore.backends._errors import configuring
from artifactstore.backends.base import Backend
from artifactstore.backends.fsspec_backend import FsspecBackend
from artifactstore.core.errors import MissingExtraError

__all__ = ["S3_OPTIONS", "open_s3", "open_s3fs"]

S3_OPTIONS = frozenset(
    {
        "endpoint_url",
        "key",
        "secret",
        "token",
        "region",
        "profile",
        "anon",
        "allow_insecure_http",
        "connect_timeout",
        "read_timeout",
        "max_attempts",
        "timeout",
    }
)


def _fsspec_config() -> dict[str, Any]:
    """fsspec's configuration for ``s3`` (its variables and files, read at import)."""
    import fsspec.config

    found = fsspec.config.conf.get("s3")
    return dict(found) if isinstance(found, Mapping) else {}


def open_s3(url: str, options: Mapping[str, Any]) -> Backend:
    """Open ``s3://bucket/prefix`` with ``options`` (see the module docstring): the
    light reader in front of s3fs where its scope is certain (:mod:`._s3read`), else
    s3fs alone."""
    opts = take_options(options, S3_OPTIONS, "s3://")
    parsed = parse_bucket_url(url)
    if importlib.util.find_spec("s3fs") is None:
        raise MissingExtraError(
            "s3:// stores need the s3fs package: pip install 'artifactstore[s3]'")
    from artifactstore.backends._s3read import S3ReadBackend
    from artifactstore.backends._s3scope import read_scope

    scope = read_scope(opts, parsed)
    if scope is None:
        return open_s3fs(opts, parsed)
    return S3ReadBackend(scope, parsed, parsed.display(opts.get("endpoint_url")),
                         lambda: open_s3fs(opts, parsed))


def open_s3fs(opts: dict[str, Any], parsed: BucketURL) -> FsspecBackend:
    """The s3fs backend of the store ``parsed`` names, with the checked ``opts``."""
    try:
        import s3fs
    except ImportError as exc:
        raise MissingExtraError(
            "s3:// stores need the s3fs package: pip install 'artifactstore[s3]'"
        ) from exc

    configured = _fsspec_config()
    client_kwargs: dict[str, Any] = dict(configured.get("client_kwargs") or {})
    endpoint = (
        opts.get("endpoint_url")
        or configured.get("endpoint_url")
        or client_kwargs.pop("endpoint_url", None)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    client_kwargs.pop("endpoint_url", None)
    if endpoint:
        check_endpoint(endpoint, allow_insecure_http=bool(opts.get("allow_insecure_http")))
    # Only what was given: s3fs fills the rest from fsspec's configuration.
    given = {"key": opts.get("key", parsed.user), "secret": opts.get("secret", parsed.secret),
             "token": opts.get("token")}
    credentials = {name: value for name, value in given.items() if value is not None}
    if "anon" in opts:
        credentials["anon"] = bool(opts["anon"])
    if opts.get("region"):
        client_kwargs["region_name"] = opts["region"]
    config_kwargs = {
        "connect_timeout": opts.get("connect_timeout", 5),
        "read_timeout": opts.get("read_timeout", 15),
        "retries": {"max_attempts": int(opts.get("max_attempts", 3)), "mode": "standard"},
    }
    with configuring(parsed.display(opts.get("endpoint_url"))):
        fs = s3fs.S3FileSystem(
            **credentials,
            endpoint_url=endpoint or None,
            client_kwargs=client_kwargs,
            config_kwargs=config_kwargs,
            skip_instance_cache=True,
            use_listings_cache=False,
            session=_shared_session(opts.get("profile")),
        )
    fs.retries = 1  # one s3fs pass; botocore does the (bounded) retrying

    def close() -> None:
        _close_s3(fs)

    return FsspecBackend(
        fs,
        parsed.root,
        url=parsed.display(opts.get("endpoint_url")),
        atomic_create=True,
        timeout=opts.get("timeout"),
        # one GET per read: with concurrency s3fs sends a HEAD first to size the object
        read_options={"max_concurrency": 1},
        on_close=close,
        streamed_put=True,  # botocore reads a file body: packs are not joined (partsbody.py)
    )


_SESSIONS: dict[str | None, Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _shared_session(profile: str | None) -> Any:
    """One aiobotocore session per profile for the whole process.

    Why: a session loads botocore's service models and resolves config once;
    a fresh session per backend made every first request ~0.15 s slower.
    Clients (and their connections) stay per backend.
    """
    from aiobotocore.session import AioSession

    with _SESSIONS_LOCK:
        session = _SESSIONS.get(profile)
        if session is None:
            session = _SESSIONS[profile] = AioSession(profile=profile)
            _lean_endpoint_resolver(session)
            _timestamps_as_text(session)
        return session


#: the services whose legacy endpoint data a session keeps: S3, and what
#: botocore's credential providers may make clients for (assume-role, SSO)
_ENDPOINT_SERVICES = frozenset({"s3", "sts", "sso", "sso-oidc"})


def _lean_endpoint_resolver(session: Any) -> None:
    """Make ``session`` keep the legacy endpoint data of :data:`_ENDPOINT_SERVICES` only.

    Why: botocore's endpoint resolver loads ``endpoints.json`` (every partition's
    endpoints of ~300 services, 1.2 MB of JSON) and its loader caches it for the
    life of the process: ~7 MiB of Python objects of which a store needs a few
    entries, out of an S3 push's 128 MiB budget ("Writes, round four" in
    docs/benchmarks.md). The file is read once, trimmed to the partitions' own
    fields and these services, and not cached. Endpoints themselves come from
    the S3 model's rule set, as before. The hook uses botocore's component
    registry; if that changes, the session is left as botocore made it.
    """
    from botocore.regions import EndpointResolver

    components = getattr(session, "_internal_components", None)
    loader = session.get_component("data_loader")
    if components is None or not hasattr(components, "lazy_register_component"):
        return

    def create() -> Any:
        for folder in loader.search_paths:
            path = os.path.join(folder, "endpoints")
            data = loader.file_loader.load_file(path)
            if data is not None:
                break
        else:
            raise FileNotFoundError("botocore's endpoints data is missing")
        for partition in data.get("partitions", ()):
            services = partition.get("services", {})
            partition["services"] = {name: services[name]
                                     for name in _ENDPOINT_SERVICES & services.keys()}
        return EndpointResolver(data, uses_builtin_data=loader.is_builtin_path(path))

    components.lazy_register_component("endpoint_resolver", create)


def _as_text(value: str) -> str:
    return value


def _timestamps_as_text(session: Any) -> None:
    """Make ``session``'s clients keep the timestamps of responses as sent (text).

    Why: botocore turns every ``LastModified`` of a listing into a ``datetime`` with
    dateutil, about 40 µs each: ~2 s of a 46,000-key listing's client CPU (a catalog's
    first sync), and nothing here reads them (``stat`` takes size, ETag and version).
    """
    factory = session.get_component("response_parser_factory")
    setter = getattr(factory, "set_parser_defaults", None)
    if setter is not None:
        setter(timestamp_parser=_as_text)


def _close_s3(fs: Any) -> None:
    """Close the aiobotocore client (and its aiohttp session) if one was made."""
    from fsspec.asyn import sync

    client = getattr(fs, "_s3", None)
    if client is None or fs.loop is None or not fs.loop.is_running():
        return
    try:
        sync(fs.loop, client.close, timeout=5)
    except Exception:
        # closing is best effort: s3fs's finalizer closes the socket anyway
        return
    fs._s3 = None
