"""S3 backend (s3fs) against a moto server on 127.0.0.1: conformance and S3 details."""

from __future__ import annotations

import time
from typing import BinaryIO, Protocol, runtime_checkable

import pytest

from artifactstore.backends import open_backend
from artifactstore.core.errors import (
    BackendUnavailableError,
    ConfigurationError,
    NotFoundError,
)
from artifactstore.testing import BackendConformance, BackendSpec, MotoS3Server

pytestmark = [pytest.mark.s3]


@runtime_checkable
class StreamedPut(Protocol):
    """A backend with ``put_file`` (``supports_streamed_put``), outside ``Backend``."""

    def put_file(self, key: str, file: BinaryIO, size: int) -> None: ...


class TestS3Backend(BackendConformance):
    """Conformance on a fresh prefix; the race uses 8 spawned processes."""

    @pytest.fixture
    def backend_spec(self, s3_spec: BackendSpec) -> BackendSpec:
        return s3_spec


class TestS3BucketRoot(BackendConformance):
    """A store at the root of its own bucket (no prefix)."""

    race_keys = 5

    @pytest.fixture
    def backend_spec(self, s3_server: MotoS3Server) -> BackendSpec:
        import uuid

        bucket = f"root-{uuid.uuid4().hex[:12]}"
        s3_server.create_bucket(bucket)
        return BackendSpec(f"s3://{bucket}", s3_server.backend_options())


def test_url_strips_credentials(s3_server: MotoS3Server) -> None:
    options = s3_server.backend_options()
    key, secret = options.pop("key"), options.pop("secret")
    backend = open_backend(f"s3://{key}:{secret}@{s3_server.bucket}/creds", **options)
    try:
        backend.put("k", b"v")
        assert backend.get("k") == b"v"
        assert key not in backend.url
        assert secret not in backend.url
        assert backend.url.startswith(f"s3://{s3_server.bucket}/creds")
    finally:
        backend.close()


def test_missing_bucket_is_unavailable(s3_server: MotoS3Server) -> None:
    backend = open_backend("s3://no-such-bucket-here/p", **s3_server.backend_options())
    try:
        with pytest.raises(BackendUnavailableError, match="bucket does not exist"):
            backend.put("k", b"v")
        with pytest.raises(BackendUnavailableError):
            list(backend.list())
        with pytest.raises(BackendUnavailableError):
            backend.get("k")
    finally:
        backend.close()


def test_not_found_keeps_the_vendor_error_as_cause(s3_spec: BackendSpec) -> None:
    backend = s3_spec.open()
    try:
        with pytest.raises(NotFoundError) as info:
            backend.get("missing")
        assert info.value.__cause__ is not None
        assert "botocore" not in type(info.value).__module__
    finally:
        backend.close()


@pytest.mark.slow
def test_unreachable_endpoint_fails_fast() -> None:
    """Connection refused is reported within seconds, not after minutes of retries."""
    backend = open_backend(
        "s3://bucket/p",
        endpoint_url="http://127.0.0.1:9",
        key="k",
        secret="s",
        region="us-east-1",
    )
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="cannot reach"):
            backend.get("k")
        assert time.monotonic() - started < 10
    finally:
        backend.close()


def test_plain_http_off_loopback_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http=True"):
        open_backend("s3://b/p", endpoint_url="http://minio.example.com:9000", key="k", secret="s")
    backend = open_backend(
        "s3://b/p",
        endpoint_url="http://minio.example.com:9000",
        key="k",
        secret="s",
        allow_insecure_http=True,
    )
    backend.close()


def test_request_count(s3_server: MotoS3Server, s3_spec: BackendSpec) -> None:
    backend = s3_spec.open()
    try:
        before = s3_server.request_count
        backend.put("a", b"1")
        backend.get("a")
        assert s3_server.request_count - before == 2
    finally:
        backend.close()


def test_get_range_is_a_ranged_request(s3_server: MotoS3Server, s3_spec: BackendSpec) -> None:
    backend = s3_spec.open()
    try:
        backend.put("r", bytes(range(256)))
        before = s3_server.request_count
        assert backend.get_range("r", 10, 5) == bytes(range(10, 15))
        assert s3_server.request_count - before == 1
    finally:
        backend.close()


def test_request_count_and_reset(s3_server: MotoS3Server) -> None:
    s3_server.reset_count()
    assert s3_server.request_count == 0
    s3_server.create_bucket("counted")
    assert s3_server.request_count == 1


def test_put_parts_streams_the_parts_in_one_request(
    s3_server: MotoS3Server, s3_spec: BackendSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pack's parts go up as one PUT whose body is read from the parts (no join);
    so does any big body, conditional or not."""
    from artifactstore.backends import partsbody
    from artifactstore.backends.retry import RetryingBackend

    made: list[int] = []
    real = partsbody.PartsBody

    class Counted(real):  # type: ignore[misc, valid-type]
        def __init__(self, parts: list[bytes]) -> None:
            made.append(len(parts))
            super().__init__(parts)

    monkeypatch.setattr("artifactstore.backends.fsspec_backend.PartsBody", Counted)
    backend = RetryingBackend(open_backend(s3_spec.url, **s3_spec.options))
    try:
        assert backend.supports_streamed_put
        parts = [bytes([i]) * (100_000 + i) for i in range(30)]
        s3_server.reset_count()
        backend.put_parts("packs/streamed", [memoryview(p) for p in parts])
        assert s3_server.request_count == 1
        assert made == [30]
        assert backend.get("packs/streamed") == b"".join(parts)
        backend.put("big", b"b" * (1 << 20))  # one big body: a file too
        backend.put("small", b"s" * 100)  # a small one: bytes
        assert made == [30, 1]
        assert backend.get("big") == b"b" * (1 << 20)
        assert backend.put_if_absent("big2", b"c" * (1 << 20))
        assert not backend.put_if_absent("big2", b"d" * (1 << 20))
        assert backend.get("big2") == b"c" * (1 << 20)
    finally:
        backend.close()


def test_put_file_streams_a_spooled_pack_in_one_request(
    s3_server: MotoS3Server, s3_spec: BackendSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pack spooled to a file goes up as one PUT whose body is read from the file
    (from its start on every attempt); a small one as bytes; only ``size`` bytes."""
    import tempfile

    from artifactstore.backends import partsbody
    from artifactstore.backends.retry import RetryingBackend
    from artifactstore.core.errors import TransientBackendError

    made: list[int] = []
    real = partsbody.FileBody

    class Counted(real):  # type: ignore[misc, valid-type]
        def __init__(self, file: object, size: int) -> None:
            made.append(size)
            super().__init__(file, size)

    monkeypatch.setattr("artifactstore.backends.fsspec_backend.FileBody", Counted)
    inner = open_backend(s3_spec.url, **s3_spec.options)
    backend = RetryingBackend(inner, sleep=lambda _: None)
    data = bytes(range(256)) * 4096  # 1 MiB
    assert isinstance(inner, StreamedPut)
    real_put_file = inner.put_file
    calls = []

    def failing_once(key: str, file: BinaryIO, size: int) -> None:
        calls.append(key)
        if len(calls) == 1:
            FileBody = partsbody.FileBody
            FileBody(file, size).read(1000)  # a request that read part of the body
            raise TransientBackendError("connection reset")
        real_put_file(key, file, size)

    try:
        assert backend.supports_streamed_put
        with tempfile.TemporaryFile() as file:
            file.write(data + b"not sent")
            file.flush()
            s3_server.reset_count()
            backend.put_file("packs/spooled", file, len(data))
            assert s3_server.request_count == 1
            assert made == [len(data)]
            assert backend.get("packs/spooled") == data
            monkeypatch.setattr(inner, "put_file", failing_once)
            backend.put_file("packs/retried", file, len(data))
            assert calls == ["packs/retried", "packs/retried"]
            assert backend.get("packs/retried") == data
        with tempfile.TemporaryFile() as file:
            file.write(b"small")
            file.flush()
            backend.put_file("packs/small", file, 5)  # small: read and put as bytes
            assert backend.get("packs/small") == b"small"
    finally:
        backend.close()


def test_the_shared_session_keeps_the_endpoint_data_of_s3_and_credentials_only(
    s3_spec: BackendSpec,
) -> None:
    """botocore's endpoints.json (~300 services, ~7 MiB of objects) is trimmed once."""
    from artifactstore.backends._s3 import _ENDPOINT_SERVICES, _shared_session

    backend = open_backend(s3_spec.url, **s3_spec.options)
    try:
        backend.put("k", b"v")  # the client, and so the resolver, exist now
        assert backend.get("k") == b"v"
    finally:
        backend.close()
    resolver = _shared_session(None)._get_internal_component("endpoint_resolver")
    partitions = resolver._endpoint_data["partitions"]
    assert {p["partition"] for p in partitions} >= {"aws", "aws-cn", "aws-us-gov"}
    for partition in partitions:
        assert set(partition["services"]) <= _ENDPOINT_SERVICES
        assert partition["regions"]  # the partition's own fields are kept
    assert "s3" in partitions[0]["services"]


def test_a_listing_is_paged_and_yields_each_page_as_it_arrives(
    s3_server: MotoS3Server, s3_spec: BackendSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``list`` and ``list_after`` read ``ListObjectsV2`` pages (2 names here) one at a
    time: the first key comes after one request, every key once, sorted, across pages;
    names other tools made (folder markers) are skipped wherever they fall."""
    import boto3

    from artifactstore.backends import _s3read, fsspec_backend
    from artifactstore.backends.base import list_after
    from artifactstore.backends.retry import RetryingBackend

    monkeypatch.setattr(fsspec_backend, "LIST_PAGE", 2)  # s3fs's backend
    monkeypatch.setattr(_s3read, "LIST_PAGE", 2)  # the light reader (the one used here)
    backend = RetryingBackend(open_backend(s3_spec.url, **s3_spec.options))
    keys = [f"r/{i:03d}" for i in range(9)] + ["r0", "s/x"]
    try:
        for key in keys:
            backend.put(key, b"")
        bucket, _, root = s3_spec.url.removeprefix("s3://").partition("/")
        boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=s3_server.region,
                     aws_access_key_id=s3_server.access_key,
                     aws_secret_access_key=s3_server.secret_key).put_object(
            Bucket=bucket, Key=f"{root}/r/004/", Body=b"")  # a folder marker
        s3_server.reset_count()
        listing = backend.list("r/")
        assert next(listing) == "r/000"
        assert s3_server.request_count == 1  # one page so far
        assert [*listing] == [f"r/{i:03d}" for i in range(1, 9)]
        assert s3_server.request_count == 5  # 10 names (the marker too) in pages of 2
        assert list(backend.list("r")) == [*keys[:9], "r0"]
        assert list(backend.list()) == sorted(keys)
        s3_server.reset_count()
        assert list(list_after(backend, "r/", "r/004")) == [f"r/{i:03d}" for i in range(5, 9)]
        assert s3_server.request_count == 3  # from StartAfter: r/004/, 005 ... 008
        assert list(list_after(backend, "r/", "r/008")) == []
    finally:
        backend.close()


def test_a_missing_bucket_is_raised_by_the_listing_call(s3_server: MotoS3Server) -> None:
    """The first page is asked for when ``list`` is called, so its errors come at once."""
    backend = open_backend("s3://no-such-bucket-here/p", **s3_server.backend_options())
    try:
        with pytest.raises(BackendUnavailableError):
            backend.list("a/")
    finally:
        backend.close()


def test_listed_timestamps_stay_text(s3_spec: BackendSpec) -> None:
    """The shared session's clients keep ``LastModified`` as sent: nothing reads it, and
    parsing it was a third of a long listing's client CPU. (``timeout``: s3fs alone,
    not the light reader, which parses no timestamps.)"""
    backend = open_backend(s3_spec.url, **s3_spec.options, timeout=60)
    try:
        backend.put("t/k", b"v")
        bucket, _, root = s3_spec.url.removeprefix("s3://").partition("/")
        page = backend._fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=f"{root}/t/")  # type: ignore[attr-defined]
        assert isinstance(page["Contents"][0]["LastModified"], str)
        assert backend.stat("t/k").size == 1
    finally:
        backend.close()
