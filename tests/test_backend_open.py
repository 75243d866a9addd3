"""``open_backend``: URL schemes, options, endpoint policy, missing extras; and
``open_backend_stack``, the one way the layers above open a store's backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from artifactstore.backends import (
    LocalBackend,
    MemoryBackend,
    RetryingBackend,
    drop_memory_store,
    open_backend,
    open_backend_stack,
)
from artifactstore.backends._endpoints import is_loopback_host, redact_url
from artifactstore.core.errors import ConfigurationError, MissingExtraError, StoreNotFoundError
from artifactstore.testing import MotoS3Server


def test_plain_path_and_file_url(tmp_path: Path) -> None:
    assert isinstance(open_backend(str(tmp_path / "a")), LocalBackend)
    assert isinstance(open_backend(f"file://{tmp_path}/b", fsync=False), LocalBackend)
    assert isinstance(open_backend(f"file://localhost{tmp_path}/c"), LocalBackend)


def test_the_stack_retries_and_makes_a_store_folder_only_when_asked(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with pytest.raises(StoreNotFoundError):
        open_backend_stack(str(root))
    assert not root.exists()
    backend = open_backend_stack(root.as_uri(), create=True, fsync=False)
    try:
        assert isinstance(backend, RetryingBackend)
        backend.put("k", b"v")
        assert (root / "k").read_bytes() == b"v"
    finally:
        backend.close()
    with pytest.raises(ConfigurationError, match="unknown option"):
        open_backend_stack(str(root), no_such_option=1)


def test_file_url_with_a_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="file:///absolute/path"):
        open_backend("file://server/share/store")


def test_memory_url() -> None:
    backend = open_backend("memory://open-test")
    assert isinstance(backend, MemoryBackend)
    assert backend.url == "memory://open-test"
    drop_memory_store("open-test")


def test_unknown_scheme_names_the_supported_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_backend("ftp://user:pw@host/store")
    message = str(info.value)
    for scheme in ("file://", "memory://", "s3://", "gs://"):
        assert scheme in message
    assert "pw" not in message


def test_unknown_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown option"):
        open_backend(str(tmp_path), endpoint_url="http://127.0.0.1")
    with pytest.raises(ConfigurationError, match="accepted: "):
        open_backend("s3://b/p", endpointurl="https://x")


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://b/../x", "s3://b/p?x=1"])
def test_bad_bucket_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_backend(url, key="k", secret="s")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9000",
        "http://127.8.9.10",
        "http://localhost:1",
        "http://[::1]:9000",
        "https://minio.example.com",
    ],
)
def test_allowed_endpoints(endpoint: str) -> None:
    open_backend("s3://b/p", endpoint_url=endpoint, key="k", secret="s").close()
    open_backend("gs://b/p", endpoint_url=endpoint, token="anon").close()


@pytest.mark.parametrize(
    "endpoint", ["http://10.0.0.5:9000", "http://minio.internal", "http://128.0.0.1"]
)
def test_plain_http_needs_opt_in(endpoint: str) -> None:
    for url, creds in (("s3://b/p", {"key": "k", "secret": "s"}), ("gs://b/p", {"token": "anon"})):
        with pytest.raises(ConfigurationError, match="allow_insecure_http=True"):
            open_backend(url, endpoint_url=endpoint, **creds)
        open_backend(url, endpoint_url=endpoint, allow_insecure_http=True, **creds).close()


def test_endpoint_from_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.internal:9000")
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        open_backend("s3://b/p", key="k", secret="s")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "gcs.internal:4443")
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        open_backend("gs://b/p", token="anon")


def test_endpoint_credentials_are_not_shown() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_backend(
            "s3://b/p", endpoint_url="http://user:hunter2@minio.internal", key="k", secret="s"
        )
    assert "hunter2" not in str(info.value)
    backend = open_backend(
        "s3://b/p", endpoint_url="https://user:hunter2@minio.example.com", key="k", secret="s"
    )
    assert "hunter2" not in backend.url
    assert backend.url == "s3://b/p?endpoint_url=https://minio.example.com"
    backend.close()


def test_redact_and_loopback_helpers() -> None:
    assert redact_url("s3://AKIA:secret@bucket/p") == "s3://bucket/p"
    assert redact_url("https://minio") == "https://minio"
    assert is_loopback_host("127.0.0.1")
    assert is_loopback_host("::1")
    assert not is_loopback_host("0.0.0.0")
    assert not is_loopback_host(None)


@pytest.mark.parametrize(
    ("url", "modules", "extra"),
    [("s3://b/p", ["s3fs"], "[s3]"), ("gs://b/p", ["gcsfs", "gcsfs.core"], "[gcs]")],
)
def test_missing_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, modules: list[str], extra: str
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=rf"pip install 'artifactstore\{extra}'") as info:
        open_backend(url)
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, ConfigurationError)


def test_bad_client_settings_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot open gs://b/p"):
        open_backend("gs://b/p", token=str(tmp_path / "no-such-token.json"))

    def open_and_read() -> None:
        backend = open_backend("s3://b/p", profile="no-such-profile",
                               endpoint_url="http://127.0.0.1:9")
        try:
            backend.get("k")
        finally:
            backend.close()

    # at open (the S3 client is made there) or at the first request: one clear line
    with pytest.raises(ConfigurationError, match="profile"):
        open_and_read()


def test_fsspec_configuration_names_the_endpoint_and_is_checked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": "http://minio.internal:9000"})
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        open_backend("s3://b/p", key="k", secret="s")
    monkeypatch.setitem(fsspec.config.conf, "s3",
                        {"client_kwargs": {"endpoint_url": "http://minio.internal:9000"}})
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        open_backend("s3://b/p", key="k", secret="s")
    # an explicit option wins over the configuration
    open_backend("s3://b/p", key="k", secret="s",
                 endpoint_url="https://minio.example.com").close()


@pytest.mark.s3
@pytest.mark.parametrize("how", ["variables", "config-file"])
def test_the_cli_reaches_s3_through_fsspec_configuration(
        how: str, s3_server: MotoS3Server, tmp_path: Path) -> None:
    """fsspec's own conventions, with no AWS_* variable: FSSPEC_S3_* variables, or a
    JSON file in FSSPEC_CONFIG_DIR with client_kwargs (as s3fs users write it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "FSSPEC_"))}
    if how == "variables":
        env |= {"FSSPEC_S3_ENDPOINT_URL": s3_server.endpoint_url,
                "FSSPEC_S3_KEY": s3_server.access_key, "FSSPEC_S3_SECRET": s3_server.secret_key}
    else:
        folder = tmp_path / "fsspec"
        folder.mkdir()
        (folder / "s3.json").write_text(json.dumps({"s3": {
            "key": s3_server.access_key, "secret": s3_server.secret_key,
            "client_kwargs": {"endpoint_url": s3_server.endpoint_url}}}))
        env |= {"FSSPEC_CONFIG_DIR": str(folder)}
    url = f"s3://{s3_server.bucket}/fsspec-{how}-{uuid.uuid4().hex[:8]}"
    data = tmp_path / "data.txt"
    data.write_text("hello")
    for argv in (["init", url, "--public"], ["log", "d", str(data), "--store", url],
                 ["ls", "--store", url, "--json"]):
        done = subprocess.run([sys.executable, "-m", "artifactstore", *argv, "--quiet"],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
        assert done.returncode == 0, (argv, done.stderr)
    assert json.loads(done.stdout)["artifacts"] == ["d"]
