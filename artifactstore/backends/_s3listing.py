"""S3 ``ListObjectsV2`` listings over a bucket's own HTTP(S) endpoint (design §8).

Vocabulary: the *bucket root* is the URL that answers bucket requests,
``https://endpoint/bucket`` (path-style) or ``https://bucket.endpoint``
(virtual-hosted); the store's *key prefix* is the rest of the store URL's path
plus ``/``, so key ``a/b`` is the object name ``<key prefix>a/b`` in the bucket.
A *page* is one ``ListBucketResult`` document. S3, GCS's XML API, MinIO and
moto all answer ``GET <bucket root>/?list-type=2&prefix=…`` with one.

Finding the bucket root: the ``bucket_root`` option names it; otherwise
:func:`find_bucket_root` asks for one key, first path-style (the first path
segment is the bucket), then at the host root (virtual-hosted), and takes the
first candidate that answers with a ``ListBucketResult``.

HTTP is not done here: callers pass a *fetch* function ``(url, limit) ->
(status, body)`` that returns at most ``limit + 1`` bytes of the body, so a
hostile or broken server cannot make a listing hold more than ``limit`` bytes.
Error statuses are raised as :class:`ListingHTTPError` (401/403 directly as a
``BackendError`` saying what a public bucket needs) and malformed answers as
``BackendError``; callers run these functions under ``mapped_errors`` so that
the fetch function's transport errors and ``ListingHTTPError`` are mapped too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from artifactstore.backends._endpoints import redact_url
from artifactstore.backends.base import is_key
from artifactstore.core.errors import BackendError, ConfigurationError

__all__ = [
    "BucketRoot",
    "Fetch",
    "ListingHTTPError",
    "Page",
    "candidate_roots",
    "explicit_bucket_root",
    "find_bucket_root",
    "list_keys",
    "parse_page",
]

#: keys asked for per request (S3's maximum; tests lower it to exercise paging)
PAGE_SIZE = 1000
#: a page of 1000 keys is well under 1 MiB; the cap bounds what a server can make us hold
MAX_PAGE_BYTES = 16 << 20
#: a one-key probe answer is a few hundred bytes; folder indexes may be large
PROBE_BYTES = 64 << 10

Fetch = Callable[[str, int], tuple[int, bytes]]

_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ListingHTTPError(Exception):
    """A listing request answered with an error status.

    Carries ``status`` and, in the shape botocore uses, the S3 error code, so
    that the shared classifier (:mod:`._errors`) maps it like any S3 failure.
    """

    def __init__(self, status: int, code: str | None, url: str) -> None:
        self.status = status
        self.response = {"Error": {"Code": code}} if code else {}
        super().__init__(f"HTTP {status}{' ' + code if code else ''} from {url}")


@dataclass(frozen=True, slots=True)
class BucketRoot:
    """Where to send listing requests and what to strip from the names."""

    url: str
    key_prefix: str

    def page_url(self, prefix: str, token: str | None, max_keys: int) -> str:
        """The ``ListObjectsV2`` request for object names starting with ``prefix``."""
        query = [("list-type", "2"), ("prefix", prefix), ("max-keys", str(max_keys))]
        if token is not None:
            query.append(("continuation-token", token))
        # quote everything: tokens hold "+", "/" and "=", which must reach S3 as sent
        encoded = urlencode(query, quote_via=quote, safe="")
        sep = "?" if urlsplit(self.url).path else "/?"
        return f"{self.url}{sep}{encoded}"


@dataclass(frozen=True, slots=True)
class Page:
    """The object names of one ``ListBucketResult`` and the token of the next page."""

    names: list[str]
    next_token: str | None


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def candidate_roots(url: str) -> list[BucketRoot]:
    """Path-style (first segment is the bucket) if the URL has a path, then the host root."""
    parts = urlsplit(url)
    host = f"{parts.scheme}://{parts.netloc}"
    segments = _segments(parts.path)
    roots = []
    if segments:
        rest = "/".join(segments[1:])
        roots.append(BucketRoot(f"{host}/{segments[0]}", f"{rest}/" if rest else ""))
    whole = "/".join(segments)
    roots.append(BucketRoot(host, f"{whole}/" if whole else ""))
    return roots


def explicit_bucket_root(url: str, bucket_root: str) -> BucketRoot:
    """The ``bucket_root`` option, which must be the store URL or a folder above it.

    Why the same host: listings and object reads must come from one bucket, and
    the plain-http and credential checks made for the store URL then cover both.
    """
    store, given = urlsplit(url), urlsplit(bucket_root)
    store_path, given_path = _segments(store.path), _segments(given.path)
    if (
        (given.scheme, given.netloc) != (store.scheme, store.netloc)
        or given.query or given.fragment
        or store_path[: len(given_path)] != given_path
    ):
        raise ConfigurationError(
            f"bucket_root {redact_url(bucket_root)!r} does not contain the store URL "
            f"{redact_url(url)!r}; pass the store URL's scheme://host or scheme://host/bucket"
        )
    rest = "/".join(store_path[len(given_path) :])
    root = f"{given.scheme}://{given.netloc}" + "".join(f"/{p}" for p in given_path)
    return BucketRoot(root, f"{rest}/" if rest else "")


def find_bucket_root(fetch: Fetch, url: str, shown: str) -> BucketRoot | None:
    """The first candidate root that answers a one-key probe with a ``ListBucketResult``.

    None when no candidate does and none looks like a bucket endpoint (a web
    server with folder indexes). A candidate that refused with an S3 error body
    (401/403 ``<Error><Code>``) is a bucket that does not allow listing: that
    raises ``BackendError`` saying so, instead of falling back to folder
    indexes, which would list nothing. A transient error status is raised too,
    so a passing overload does not decide the listing method for good.
    """
    refused: tuple[int, str] | None = None
    for root in candidate_roots(url):
        probe = root.page_url(root.key_prefix, None, 1)
        status, body = fetch(probe, PROBE_BYTES)
        if status in _TRANSIENT_STATUSES:
            raise ListingHTTPError(status, _error_code(body), redact_url(probe))
        if status == 200 and len(body) <= PROBE_BYTES and _is_list_result(body):
            return root
        code = _error_code(body)
        if status in (401, 403) and code and refused is None:
            refused = (status, code)
    if refused is not None:
        raise _refused("", shown, *refused)
    return None


def list_keys(fetch: Fetch, root: BucketRoot, prefix: str, shown: str) -> list[str]:
    """Every valid key under ``root`` starting with ``prefix``, sorted, all pages.

    Names outside the store's key prefix and names that are not valid keys
    (``check_key``: folder markers, ``..``) are skipped, as other backends do.
    """
    wanted = root.key_prefix + prefix
    keys: set[str] = set()
    token: str | None = None
    seen: set[str] = set()
    while True:
        url = root.page_url(wanted, token, PAGE_SIZE)
        status, body = fetch(url, MAX_PAGE_BYTES)
        if status != 200:
            raise _status_error(status, body, url, prefix, shown)
        if len(body) > MAX_PAGE_BYTES:
            raise BackendError(
                f"list {prefix!r} on {shown}: a listing page from {redact_url(url)} is over "
                f"{MAX_PAGE_BYTES} bytes; check that the URL is an S3-style bucket endpoint"
            )
        page = parse_page(body, redact_url(url))
        keys.update(
            name[len(root.key_prefix) :] for name in page.names
            if name.startswith(wanted) and is_key(name[len(root.key_prefix) :])
        )
        if page.next_token is None:
            return sorted(keys)
        if page.next_token in seen:  # a server looping on one token would never end
            raise BackendError(
                f"list {prefix!r} on {shown}: the endpoint repeated a continuation token; "
                "the listing would never end, check the endpoint"
            )
        seen.add(page.next_token)
        token = page.next_token


def parse_page(body: bytes, url: str) -> Page:
    """Parse one ``ListBucketResult``; ``BackendError`` naming ``url`` if it is not one."""
    root = _parse(body, url)
    if _local(root.tag) != "ListBucketResult":
        raise BackendError(
            f"malformed listing from {url}: expected an S3 ListBucketResult, got "
            f"<{_local(root.tag)[:40]}>; check that the URL is an S3-style bucket endpoint"
        )
    names: list[str] = []
    truncated = False
    token = None
    for child in root:
        tag = _local(child.tag)
        if tag == "Contents":
            key = next((c.text for c in child if _local(c.tag) == "Key"), None)
            if not key:
                raise BackendError(f"malformed listing from {url}: an entry has no Key")
            names.append(key)
        elif tag == "IsTruncated":
            truncated = (child.text or "").strip().lower() == "true"
        elif tag == "NextContinuationToken":
            token = child.text or None
    if truncated and token is None:
        raise BackendError(
            f"malformed listing from {url}: truncated without a NextContinuationToken; "
            "the endpoint must support ListObjectsV2 (list-type=2)"
        )
    return Page(names, token if truncated else None)


def _parse(body: bytes, url: str) -> ET.Element:
    """XML from a server we do not trust: UTF-8, no DTD, well-formed, else ``BackendError``.

    Why no DTD: S3 never sends one, and refusing it rules out entity expansion
    whatever the expat version.
    """
    try:
        text = body.decode("utf-8")
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise ValueError("document type declarations are not accepted")
        return ET.fromstring(text)
    except (ValueError, ET.ParseError) as exc:  # UnicodeDecodeError is a ValueError
        detail = " ".join(str(exc).split())[:120]
        raise BackendError(
            f"malformed listing from {url}: not well-formed XML ({detail}); "
            "check that the URL is an S3-style bucket endpoint"
        ) from None


def _is_list_result(body: bytes) -> bool:
    try:
        return _local(_parse(body, "").tag) == "ListBucketResult"
    except BackendError:
        return False


def _error_code(body: bytes) -> str | None:
    """The ``<Error><Code>`` of an S3 error body, if it is one."""
    if not body or len(body) > PROBE_BYTES:
        return None
    try:
        root = _parse(body, "")
    except BackendError:
        return None
    code = next((c.text for c in root if _local(c.tag) == "Code"), None)
    return code.strip()[:64] if code and _local(root.tag) == "Error" else None


def _status_error(status: int, body: bytes, url: str, prefix: str, shown: str) -> Exception:
    code = _error_code(body)
    if status in (401, 403):
        return _refused(prefix, shown, status, code)
    return ListingHTTPError(status, code, redact_url(url))


def _refused(prefix: str, shown: str, status: int, code: str | None) -> BackendError:
    return BackendError(
        f"list {prefix!r} on {shown}: the bucket endpoint refused the listing (HTTP {status}"
        f"{' ' + code if code else ''}); a public store's bucket must allow anonymous "
        "listing (s3:ListBucket, storage.objects.list), or read it through s3:// or gs:// "
        "with credentials"
    )


def _local(tag: str) -> str:
    """``{namespace}Name`` -> ``Name``: S3 and GCS use different namespaces."""
    return tag.rpartition("}")[2]
