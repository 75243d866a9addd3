"""Whether an ``s3://`` store is read by the light reader (:mod:`._s3read`), and how.

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
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from artifactstore.backends._endpoints import BucketURL, check_endpoint

__all__ = ["READ_OPTIONS", "ReadScope", "read_scope"]

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
