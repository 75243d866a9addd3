"""GCS backend (gcsfs) against fake-gcs-server on 127.0.0.1: conformance and GCS details."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from artifactstore.core.errors import (
    BackendUnavailableError,
    ConfigurationError,
    TransientBackendError,
)

from artifactstore.backends import open_backend
from artifactstore.testing import (
    BackendConformance,
    BackendSpec,
    FakeGcsServer,
    fake_gcs_server,
)

pytestmark = [
    pytest.mark.gcs,
    # aiohttp warns about any request body over 1 MiB passed as bytes; gcsfs
    # builds its upload body as bytes, so every large put triggers it
    pytest.mark.filterwarnings(
        "ignore:Sending a large body directly with raw bytes:ResourceWarning"
    ),
]


class TestGcsBackend(BackendConformance):
    """Conformance on a fresh prefix; the race uses 8 spawned processes."""

    @pytest.fixture
    def backend_spec(self, gcs_spec: BackendSpec) -> BackendSpec:
        return gcs_spec


def test_experimental_probe_is_off() -> None:
    assert os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "false"


def test_gcs_scheme_alias(gcs_server: FakeGcsServer) -> None:
    backend = open_backend(f"gcs://{gcs_server.bucket}/alias", **gcs_server.backend_options())
    try:
        backend.put("k", b"v")
        assert backend.url.startswith(f"gs://{gcs_server.bucket}/alias")
    finally:
        backend.close()


def test_missing_bucket_is_unavailable_for_writes(gcs_server: FakeGcsServer) -> None:
    backend = open_backend("gs://no-such-bucket-here/p", **gcs_server.backend_options())
    try:
        with pytest.raises(BackendUnavailableError):
            backend.put("k", b"v")
        with pytest.raises(BackendUnavailableError):
            list(backend.list())
    finally:
        backend.close()


def test_plain_http_off_loopback_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http=True"):
        open_backend("gs://b/p", endpoint_url="http://gcs.example.com", token="anon")


def test_credentials_in_url_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="token"):
        open_backend("gs://user:pw@b/p", token="anon")


@pytest.mark.slow
def test_unreachable_endpoint_with_a_deadline() -> None:
    """gcsfs retries refused connections for ~35 s; the timeout option bounds a call."""
    backend = open_backend("gs://b/p", endpoint_url="http://127.0.0.1:9", timeout=2)
    try:
        started = time.monotonic()
        with pytest.raises(TransientBackendError, match="timeout"):
            backend.get("k")
        assert time.monotonic() - started < 6
    finally:
        backend.close()


@pytest.mark.slow
def test_emulator_keeps_answering_past_500_requests(gcs_spec: BackendSpec) -> None:
    """The wrapper's launcher piped the log and the server hung after ~480 requests."""
    backend = gcs_spec.open()
    try:
        for n in range(300):
            backend.put(f"many/{n}", b"x")
            assert backend.exists(f"many/{n}")
    finally:
        backend.close()


def test_server_process_is_stopped_on_exit(tmp_path: Path) -> None:
    with fake_gcs_server(bucket="stop-test", log_path=tmp_path / "log") as server:
        backend = open_backend("gs://stop-test/p", **server.backend_options())
        backend.put("k", b"v")
        backend.close()
        pid = server.pid
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
