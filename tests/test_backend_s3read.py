"""The light S3 read path (backends/_s3read.py): its scope, and its reads and errors over
real HTTP, against the moto server and a scripted endpoint for what moto cannot answer
(throttling, refused credentials, a truncated body)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from artifactstore.backends import _s3read as s3read
from artifactstore.backends import _s3scope as s3scope
from artifactstore.backends import open_backend
from artifactstore.backends._s3read import S3ReadBackend
from artifactstore.backends.base import iter_range, list_after
from artifactstore.backends.fsspec_backend import FsspecBackend
from artifactstore.core.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    NotFoundError,
    TransientBackendError,
)
from artifactstore.testing import BackendConformance, BackendSpec, MotoS3Server
from artifactstore.testing.tlscert import self_signed

pytestmark = [pytest.mark.s3]


class TestS3fsOnly(BackendConformance):
    """The s3fs backend alone (an option the reader does not take: ``timeout``) still
    passes the conformance suite; ``test_backend_s3`` runs it on the reader."""

    race_keys = 5

    @pytest.fixture
    def backend_spec(self, s3_spec: BackendSpec) -> BackendSpec:
        return BackendSpec(s3_spec.url, {**s3_spec.options, "timeout": 60})


def test_reads_use_the_reader_and_writes_make_s3fs_on_first_use(s3_spec: BackendSpec) -> None:
    backend = s3_spec.open()
    try:
        assert isinstance(backend, S3ReadBackend)
        assert backend._writer is None
        backend.put("a/k", b"value")
        assert isinstance(backend._writer, FsspecBackend)
        assert backend.get("a/k") == b"value"
        assert backend.get_range("a/k", 1, 3) == b"alu"
        assert backend.get_range("a/k", 3, 100) == b"ue"
        assert backend.get_range("a/k", 5, 4) == b""
        assert b"".join(iter_range(backend, "a/k", 1, 4)) == b"alue"
        assert backend.exists("a/k")
        assert not backend.exists("a/missing")
        info = backend.stat("a/k")
        assert info.size == 5
        assert info.etag
        assert list(backend.list("a/")) == ["a/k"]
    finally:
        backend.close()


def test_a_read_only_process_never_imports_s3fs(s3_server: MotoS3Server) -> None:
    """The point of the reader: a command that only reads skips s3fs and aiobotocore."""
    options = s3_server.backend_options()
    code = (
        "import sys\n"
        "from artifactstore.backends import open_backend\n"
        f"b = open_backend('s3://{s3_server.bucket}/never-written', **{options!r})\n"
        "assert list(b.list('')) == [] and not b.exists('k')\n"
        "b.close()\n"
        "print(sorted(m for m in ('s3fs', 'aiobotocore', 'aiohttp') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("option", "env"), [
    ({"timeout": 30}, {}),
    ({}, {"HTTPS_PROXY": "http://127.0.0.1:9"}),
    ({}, {"FSSPEC_S3_DEFAULT_FILL_CACHE": "false"}),
    ({}, {"AWS_USE_FIPS_ENDPOINT": "true"}),
])
def test_what_the_reader_does_not_understand_goes_to_s3fs(
    s3_spec: BackendSpec, monkeypatch: pytest.MonkeyPatch, option: dict[str, Any],
    env: dict[str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    backend = open_backend(s3_spec.url, **s3_spec.options, **option)
    try:
        assert isinstance(backend, FsspecBackend)
    finally:
        backend.close()


def test_credentials_from_botocores_chain(s3_server: MotoS3Server, s3_spec: BackendSpec,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """No key given: the session's chain finds the environment's (as s3fs's would)."""
    options = {k: v for k, v in s3_spec.options.items() if k not in ("key", "secret")}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    assert not s3scope._without_session(options)
    backend = open_backend(s3_spec.url, **options)
    try:
        assert isinstance(backend, S3ReadBackend)
        assert not backend.exists("k")
    finally:
        backend.close()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with contextlib.closing(open_backend(s3_spec.url, **options)) as found:
        assert isinstance(found, FsspecBackend)  # no credentials at all: s3fs, as before


def test_a_profile_goes_to_s3fs(s3_spec: BackendSpec) -> None:
    """Only s3fs's session reads profiles: the test's empty config has none to find."""
    with pytest.raises(ConfigurationError, match="profile"):
        open_backend(s3_spec.url, **s3_spec.options, profile="default")


def test_aws_without_an_endpoint_is_virtual_hosted_in_a_commercial_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    creds = {"key": "k", "secret": "s"}
    scope = s3scope.read_scope({**creds, "region": "eu-west-3"}, _parsed("s3://my-bucket/p"))
    assert scope is not None
    assert scope.bucket_root == "https://my-bucket.s3.eu-west-3.amazonaws.com"
    for url, region in (("s3://my.dotted.bucket/p", "eu-west-3"),  # needs path-style
                        ("s3://my-bucket/p", "cn-north-1"),  # another partition
                        ("s3://my-bucket/p", "us-gov-west-1")):
        assert s3scope.read_scope({**creds, "region": region}, _parsed(url)) is None


def test_missing_keys_and_buckets_map_as_with_s3fs(s3_server: MotoS3Server,
                                                   s3_spec: BackendSpec) -> None:
    backend = s3_spec.open()
    gone = open_backend("s3://no-such-bucket-here/p", **s3_server.backend_options())
    try:
        for call in (lambda: backend.get("nope"), lambda: backend.get_range("nope", 0, 4),
                     lambda: backend.stat("nope")):
            with pytest.raises(NotFoundError, match="no such object"):
                call()
        assert not backend.exists("nope")
        assert isinstance(gone, S3ReadBackend)
        with pytest.raises(BackendUnavailableError, match="bucket does not exist"):
            gone.exists("k")
        with pytest.raises(BackendUnavailableError):
            gone.list("a/")
    finally:
        backend.close()
        gone.close()


def test_listing_pages_and_start_after(s3_spec: BackendSpec,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3read, "LIST_PAGE", 2)
    backend = s3_spec.open()
    try:
        keys = [f"j/{i:03d}" for i in range(7)]
        for key in keys:
            backend.put(key, b"x")
        backend.put("jx", b"not under j/")
        assert list(backend.list("j/")) == keys
        assert list(list_after(backend, "j/", "j/003")) == keys[4:]
        assert list(backend.list("j/00")) == keys
    finally:
        backend.close()


# -- a scripted endpoint: what moto cannot be made to answer -----------------------------


class _Script:
    """What the scripted endpoint answers, and what it was asked."""

    def __init__(self, answer: Callable[[http.server.BaseHTTPRequestHandler], None]) -> None:
        self.answer = answer
        self.requests: list[dict[str, str]] = []


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[str, _Script]]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(answer: Callable[[Any], None], tls: Path | None = None) -> tuple[str, _Script]:
        script = _Script(answer)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                script.requests.append({"path": self.path, **dict(self.headers.items())})
                script.answer(self)

            do_HEAD = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            cert, key = self_signed(tls)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        scheme = "https" if tls is not None else "http"
        return f"{scheme}://127.0.0.1:{server.server_port}", script

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _error(status: int, code: str) -> Callable[[Any], None]:
    def answer(handler: Any) -> None:
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                f"<Message>scripted</Message></Error>").encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)
    return answer


def _reader(endpoint: str, **extra: Any) -> S3ReadBackend:
    backend = open_backend("s3://bucket/p", endpoint_url=endpoint, key="AKIDEXAMPLE",
                           secret="wrong", region="eu-central-1", **extra)
    assert isinstance(backend, S3ReadBackend)
    return backend


def test_requests_are_signed_for_the_region(scripted: Any) -> None:
    endpoint, script = scripted(_error(404, "NoSuchKey"))
    backend = _reader(endpoint)
    try:
        assert not backend.exists("k")
    finally:
        backend.close()
    (request,) = script.requests
    assert request["path"] == "/bucket/p/k"
    assert request["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-central-1/s3/aws4_request" in request["Authorization"]
    assert request["Range"] == "bytes=0-0"


def test_throttling_is_retried_then_transient(scripted: Any) -> None:
    endpoint, script = scripted(_error(503, "SlowDown"))
    backend = _reader(endpoint, max_attempts=3)
    try:
        with pytest.raises(TransientBackendError, match="temporary failure"):
            backend.get("k")
    finally:
        backend.close()
    assert len(script.requests) == 3


def test_refused_credentials_are_a_permission_error(scripted: Any) -> None:
    endpoint, script = scripted(_error(403, "InvalidAccessKeyId"))
    backend = _reader(endpoint)
    try:
        with pytest.raises(BackendError, match="permission denied") as caught:
            backend.get("k")
        assert not isinstance(caught.value, TransientBackendError)
        with pytest.raises(BackendError, match="permission denied"):
            backend.stat("k")  # a HEAD: no error document, the status says it
    finally:
        backend.close()
    assert len(script.requests) == 2  # not retried


def _truncated(handler: Any) -> None:
    handler.send_response(206 if handler.headers.get("Range") else 200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    handler.wfile.write(b"x" * 100)
    handler.wfile.flush()
    handler.close_connection = True


def test_a_truncated_body_is_transient_and_a_stream_ends_short(scripted: Any) -> None:
    endpoint, _ = scripted(_truncated)
    backend = _reader(endpoint, max_attempts=1)
    try:
        with pytest.raises(TransientBackendError):
            backend.get("k")
        got = b"".join(backend.iter_range("k", 0, 1000))
        assert len(got) < 1000
        assert got == b"x" * len(got)
    finally:
        backend.close()


def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = _reader(f"http://127.0.0.1:{port}", max_attempts=1)
    try:
        with pytest.raises(BackendUnavailableError, match="cannot reach"):
            backend.get("k")
    finally:
        backend.close()


def test_tls_is_checked_against_botocores_ca_bundle(
    scripted: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An untrusted certificate fails the read; trusted through AWS_CA_BUNDLE (as botocore
    and s3fs would trust it), the same server answers."""
    endpoint, _ = scripted(_error(404, "NoSuchKey"), tls=tmp_path)
    backend = _reader(endpoint, max_attempts=1)
    try:
        with pytest.raises(BackendError) as caught:
            backend.get("k")
        assert not isinstance(caught.value, TransientBackendError | NotFoundError)
    finally:
        backend.close()
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "server.pem"))
    backend = _reader(endpoint)
    try:
        assert not backend.exists("k")
    finally:
        backend.close()


def _parsed(url: str) -> Any:
    from artifactstore.backends._endpoints import parse_bucket_url

    return parse_bucket_url(url)
