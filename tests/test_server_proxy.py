"""A team server reached through an HTTP proxy: the environment's (HTTPS_PROXY,
HTTP_PROXY, NO_PROXY, as curl reads them) or the ``proxy`` option; a tunnel for HTTPS,
the proxy's credentials sent to it and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from http_proxy import running_proxy

from artifactstore.backends import open_backend
from artifactstore.backends._server import proxy_for
from artifactstore.core.errors import ConfigurationError
from artifactstore.testing.teamserver import open_settings, serving_team

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
              "all_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def _round_trip(url: str, **options: str) -> None:
    backend = open_backend(f"artifactstore+{url}/", **options)
    try:
        backend.put("k", b"through the proxy")
        assert backend.get("k") == b"through the proxy"
        assert list(backend.list()) == ["k"]
    finally:
        backend.close()


def test_http_proxy_from_the_environment_and_no_proxy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_proxy() as (proxy, log), serving_team(open_settings(str(tmp_path))) as url:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        _round_trip(url)
        assert [line.split(" ")[0] for line in log.seen] == ["PUT", "GET", "GET"]
        assert all(line.split(" ")[1].startswith(url) for line in log.seen)
        log.seen.clear()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        _round_trip(url)
        assert log.seen == []
        _round_trip(url, proxy=proxy)  # the option wins over NO_PROXY
        assert len(log.seen) == 3
        log.seen.clear()
        monkeypatch.delenv("NO_PROXY")
        _round_trip(url, proxy="none")  # and "none" over HTTP_PROXY
        assert log.seen == []


def test_https_goes_through_a_connect_tunnel_with_the_proxys_credentials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from artifactstore.testing.tlscert import self_signed

    cert, key = self_signed(tmp_path)
    (tmp_path / "store").mkdir()
    with running_proxy(credentials="alice:s3cr%t") as (proxy, log), serving_team(
            open_settings(str(tmp_path / "store")), tls=(str(cert), str(key))) as url:
        host_port = url.removeprefix("https://")
        with_user = proxy.replace("http://", "http://alice:s3cr%25t@")
        monkeypatch.setenv("HTTPS_PROXY", with_user)
        _round_trip(url, ca_certs=str(cert))
        assert log.seen == [f"CONNECT {host_port}"]  # one tunnel, kept alive
        assert log.refused == 0
        monkeypatch.setenv("HTTPS_PROXY", proxy)  # no credentials: 407, one clear error
        backend = open_backend(f"artifactstore+{url}/", ca_certs=str(cert))
        try:
            with pytest.raises(ConfigurationError, match="the proxy wants credentials") as info:
                backend.get("k")
        finally:
            backend.close()
        assert "s3cr" not in str(info.value)
        assert log.refused == 1  # not retried: credentials do not appear by themselves


def test_proxy_settings_are_read_as_curl_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    assert proxy_for("https", "example.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.internal:3128")
    assert proxy_for("https", "example.com") == "http://proxy.internal:3128"
    assert proxy_for("http", "example.com") is None
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:8080")
    assert proxy_for("http", "example.com") == "http://all.internal:8080"
    monkeypatch.setenv("NO_PROXY", ".example.com,localhost")
    assert proxy_for("https", "artifacts.example.com") is None
    assert proxy_for("https", "other.org") == "http://proxy.internal:3128"
    with pytest.raises(ConfigurationError, match="socks is not supported"):
        proxy_for("https", "x.org", "socks5://127.0.0.1:1080")
