"""Store URL and endpoint policy: parsing, credential stripping, plain-http refusal.

Vocabulary: a *store URL* names the location (``s3://bucket/prefix``); an
*endpoint* is the HTTP(S) service that holds it (``https://s3.amazonaws.com``,
a MinIO or emulator address). Credentials may sit in either as
``user:secret@``; they are removed from everything we print or use as a key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from artifactstore.backends.base import check_key
from artifactstore.core.errors import ConfigurationError, InvalidInputError

__all__ = [
    "BucketURL",
    "check_endpoint",
    "is_loopback_host",
    "parse_bucket_url",
    "redact_url",
    "take_options",
]


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(endpoint: str, *, allow_insecure_http: bool) -> str:
    """Accept an https endpoint, or plain http only on loopback or when opted in.

    Why: over plain http, credentials signatures, object names and (for public
    or misconfigured projects) data travel readable by anyone on the path.
    Loopback traffic never leaves the machine, so emulators are fine.
    """
    parts = urlsplit(endpoint)
    shown = redact_url(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"invalid endpoint {shown!r}: expected http(s)://host[:port]")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise ConfigurationError(
            f"refusing plain http endpoint {shown}: traffic would be unencrypted; "
            "use https, or pass allow_insecure_http=True to opt in"
        )
    return endpoint


class BucketURL:
    """A parsed ``scheme://[user[:secret]@]bucket[/prefix]`` URL."""

    def __init__(self, scheme: str, bucket: str, prefix: str, user: str | None, secret: str | None):
        self.scheme = scheme
        self.bucket = bucket
        self.prefix = prefix
        self.user = user
        self.secret = secret

    @property
    def root(self) -> str:
        """``bucket/prefix`` (or ``bucket``), the path the filesystem layer uses."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def display(self, endpoint: str | None = None) -> str:
        """The URL without credentials, with a custom endpoint appended as a query."""
        shown = f"{self.scheme}://{self.root}"
        if endpoint:
            shown += f"?endpoint_url={redact_url(endpoint)}"
        return shown


def parse_bucket_url(url: str) -> BucketURL:
    """Split a bucket URL; the prefix must be a valid key path (no ``..`` etc.)."""
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"unsupported query or fragment in store URL {redact_url(url)!r}; "
            "pass settings as options instead"
        )
    userinfo, _, bucket = parts.netloc.rpartition("@")
    user = secret = None
    if userinfo:
        name, sep, pw = userinfo.partition(":")
        user = unquote(name) or None
        secret = unquote(pw) if sep else None
    if not bucket:
        raise ConfigurationError(
            f"store URL {redact_url(url)!r} names no bucket; expected {parts.scheme}://bucket/prefix"
        )
    prefix = parts.path.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except InvalidInputError as exc:
            raise ConfigurationError(
                f"invalid prefix in store URL {redact_url(url)!r}: {exc}"
            ) from exc
    return BucketURL(parts.scheme, bucket, prefix, user, secret)


def take_options(
    options: Mapping[str, Any], allowed: frozenset[str], scheme: str
) -> dict[str, Any]:
    """Return ``options`` as a dict, refusing names the backend does not know."""
    unknown = set(options) - allowed
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(sorted(unknown))} for {scheme} stores; "
            f"accepted: {', '.join(sorted(allowed))}"
        )
    return dict(options)
