"""The object protocol end to end: the client backend (``artifactstore+http://``) against a
real uvicorn server over a local folder and over moto S3 (the backend conformance suite),
path tricks, body limits, status mapping, and the CLI logging and getting through
``artifactstore serve`` in a child process, byte-exact."""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_calls import cli

from artifactstore.backends import RetryingBackend, open_backend
from artifactstore.core.errors import (
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
)
from artifactstore.server.settings import SECRET_ENV
from artifactstore.testing import BackendConformance, BackendSpec, MotoS3Server
from artifactstore.testing.teamserver import (
    TEST_SECRET,
    open_settings,
    serve_process,
    serving_team,
)


@pytest.fixture
def backing(tmp_path: Path) -> Path:
    """An empty folder the server keeps its store in."""
    folder = tmp_path / "backing"
    folder.mkdir()
    return folder


class TestServerOverLocal(BackendConformance):
    """The conformance suite through the server, over a local folder."""

    @pytest.fixture
    def backend_spec(self, backing: Path) -> Iterator[BackendSpec]:
        with serving_team(open_settings(str(backing))) as url:
            yield BackendSpec(f"artifactstore+{url}/")


@pytest.mark.s3
class TestServerOverS3(BackendConformance):
    """The conformance suite through the server, over a fresh prefix of a moto bucket."""

    race_keys = 5

    @pytest.fixture
    def backend_spec(self, s3_spec: BackendSpec) -> Iterator[BackendSpec]:
        store = RetryingBackend(s3_spec.open())
        try:
            with serving_team(open_settings(s3_spec.url), backend=store) as url:
                yield BackendSpec(f"artifactstore+{url}/")
        finally:
            store.close()


def test_the_url_names_the_server_and_never_the_token(backing: Path) -> None:
    with serving_team(open_settings(str(backing))) as url:
        backend = open_backend(f"artifactstore+{url}", token="s3cr3t-token-value")
        try:
            assert backend.url == f"artifactstore+{url}/"
            assert backend.supports_atomic_create
            assert backend.supports_range
            with pytest.raises(NotSignedInError) as info:
                backend.get("x")  # an open server accepts no token: 401, not retried
            assert "s3cr3t" not in str(info.value)
        finally:
            backend.close()


@pytest.mark.parametrize("url", ["artifactstore+http://example.com/",
                                 "artifactstore+http://10.0.0.1:8080/"])
def test_plain_http_is_refused_off_loopback(url: str) -> None:
    from artifactstore.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="plain http"):
        open_backend(url)


@pytest.mark.parametrize("url", ["artifactstore+https://user:pw@host/",
                                 "artifactstore+https://host/?token=x",
                                 "artifactstore+ftp://host/", "artifactstore+https:///x",
                                 "artifactstore+https://host/a/../b"])
def test_bad_server_urls_are_configuration_errors(url: str) -> None:
    from artifactstore.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        open_backend(url)


# -- path tricks ----------------------------------------------------------------------

#: raw request paths (sent as they are) and the status each must get
TRICKS = [
    ("/v1/o/../escape", 400), ("/v1/o/..%2Fescape", 400), ("/v1/o/%2e%2e/escape", 400),
    ("/v1/o/%2E%2E%2Fescape", 400), ("/v1/o/a/%2e%2e/%2e%2e/escape", 400),
    ("/v1/o/a//b", 400), ("/v1/o/a%2F%2Fb", 400), ("/v1/o/a%00b", 400),
    ("/v1/o/./escape", 400), ("/v1/o/%2Fescape", 400), ("/v1/o/%2F%2Fescape", 400),
    ("/v1/o/a%5C..%5Cescape", 400), ("/v1/o/", 400), ("/v1/o/a/", 400),
    ("/v1/o/server/tokens/t1", 403), ("/v1/o/server%2Ftokens%2Ft1", 403),
]


def _raw(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    host, _, port = url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in {"Content-Length": str(len(body or b"")),
                            **(headers or {})}.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(("path", "status"), TRICKS, ids=[p for p, _ in TRICKS])
def test_path_tricks_never_reach_the_store(path: str, status: int, tmp_path: Path,
                                           backing: Path) -> None:
    (backing / "server" / "tokens").mkdir(parents=True)
    (backing / "server" / "tokens" / "t1").write_bytes(b"a token record")
    before = _files(tmp_path)
    with serving_team(open_settings(str(backing))) as url:
        for method, body in (("GET", None), ("HEAD", None), ("PUT", b"planted"),
                             ("DELETE", None)):
            got, answer = _raw(url, method, path, body)
            assert got == status, (method, answer)
            if method != "HEAD":
                error = json.loads(answer)
                assert error["error"] == {400: "invalid_input", 403: "not_authorized"}[status]
                assert "\n" not in error["message"]
                assert b"a token record" not in answer
    assert _files(tmp_path) == before  # nothing written, nothing deleted, anywhere
    assert (backing / "server" / "tokens" / "t1").read_bytes() == b"a token record"


def test_listings_refuse_bad_prefixes_and_hide_the_servers_keys(backing: Path) -> None:
    (backing / "server").mkdir()
    (backing / "server" / "audit").write_bytes(b"x")
    (backing / "seen").write_bytes(b"y")
    with serving_team(open_settings(str(backing))) as url:
        for prefix in ("../", "a//b", "/etc", "a/../b", "a%00"):
            status, _ = _raw(url, "GET", f"/v1/list?prefix={prefix}")
            assert status == 400, prefix
        for limit in ("0", "10001", "x", "-1"):
            assert _raw(url, "GET", f"/v1/list?limit={limit}")[0] == 400, limit
        status, answer = _raw(url, "GET", "/v1/list")
        assert (status, json.loads(answer)) == (200, {"keys": ["seen"], "next": None})
        for prefix in ("server/", "server", "s", ""):
            status, answer = _raw(url, "GET", f"/v1/list?prefix={prefix}")
            assert b"audit" not in answer, prefix
            assert status in (200, 403), prefix
        backend = open_backend(f"artifactstore+{url}/")
        try:
            assert list(backend.list()) == ["seen"]
            with pytest.raises(NotAuthorizedError, match="server's own data"):
                backend.get("server/audit")
        finally:
            backend.close()


def test_listings_page_with_after(backing: Path) -> None:
    keys = sorted(f"k/{i:04d}" for i in range(250))
    with serving_team(open_settings(str(backing))) as url:
        backend = open_backend(f"artifactstore+{url}/", list_page=7)
        try:
            for key in keys:
                backend.put(key, b"")
            assert list(backend.list("k/")) == keys
            # a page asked of another instance (no listing kept): it lists and skips
            _status, answer = _raw(url, "GET", "/v1/list?prefix=k/&after=k/0100&limit=3")
            assert json.loads(answer) == {"keys": ["k/0101", "k/0102", "k/0103"],
                                          "next": "k/0103"}
        finally:
            backend.close()


# -- bodies, ranges, statuses --------------------------------------------------------


def test_a_body_over_the_limit_is_refused_with_413(backing: Path) -> None:
    settings = open_settings(str(backing), max_object_bytes=1 << 20)
    with serving_team(settings) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            with pytest.raises(InvalidInputError, match="over this server's limit"):
                backend.put("big", b"x" * ((1 << 20) + 1))
            with pytest.raises(InvalidInputError, match="limit"):
                backend.put_parts("big", [b"x" * (1 << 19)] * 3)
            backend.put("fits", b"x" * (1 << 20))
        finally:
            backend.close()
        # no Content-Length (chunked): the server stops reading at the limit
        host, _, port = url.removeprefix("http://").partition(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("PUT", "/v1/o/chunked", body=iter([b"y" * (1 << 18)] * 5),
                               encode_chunked=True)
            response = connection.getresponse()
            assert response.status == 413
            assert json.loads(response.read())["error"] == "too_large"
        finally:
            connection.close()
        status, _ = _raw(url, "PUT", "/v1/o/lying", b"z", {"Content-Length": "9" * 30})
        assert status in (400, 413)
    assert _files(backing) == ["fits"]


def test_ranges_and_bad_range_headers(backing: Path) -> None:
    data = random.Random(5).randbytes(20 << 20)  # more than two streamed pieces
    with serving_team(open_settings(str(backing))) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            backend.put("blob", data)
            assert backend.get("blob") == data
            for start, length in ((0, 1), (8 << 20, 9 << 20), ((20 << 20) - 5, 100),
                                  (20 << 20, 10), ((30 << 20), 1)):
                assert backend.get_range("blob", start, length) == data[start:start + length]
            with pytest.raises(NotFoundError):
                backend.get_range("none", 5, 5)
        finally:
            backend.close()
        for header in ("bytes=5-", "bytes=-5", "bytes=9-3", "items=0-1", "bytes=0-1,4-5"):
            assert _raw(url, "GET", "/v1/o/blob", headers={"Range": header})[0] == 400
        status, answer = _raw(url, "GET", "/v1/o/blob", headers={"Range": "bytes=2-5"})
        assert (status, answer) == (206, data[2:6])


def test_a_reader_is_refused_writes_and_the_refusal_is_not_retried(backing: Path) -> None:
    (backing / "there").write_bytes(b"old")
    with serving_team(open_settings(str(backing), role="reader")) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            assert backend.get("there") == b"old"
            for call in (lambda: backend.put("there", b"new"),
                         lambda: backend.put_if_absent("new", b"x"),
                         lambda: backend.delete("there")):
                with pytest.raises(NotAuthorizedError, match="reader"):
                    call()
        finally:
            backend.close()
    assert (backing / "there").read_bytes() == b"old"


def test_a_writer_cannot_replace_a_pack(backing: Path) -> None:
    """Under objects/, a writer's PUT creates and never replaces; other keys it may."""
    with serving_team(open_settings(str(backing), role="writer")) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            backend.put("objects/plain/packs/p1", b"original")
            backend.put("objects/plain/packs/p1", b"swapped")
            backend.put_parts("objects/plain/packs/p1", [b"swapped", b"again"])
            assert backend.get("objects/plain/packs/p1") == b"original"
            backend.put("runs/r1/heartbeat", b"1")
            backend.put("runs/r1/heartbeat", b"2")
            assert backend.get("runs/r1/heartbeat") == b"2"
            with pytest.raises(NotAuthorizedError):
                backend.delete("objects/plain/packs/p1")
        finally:
            backend.close()
    with serving_team(open_settings(str(backing), role="admin")) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            backend.put("objects/plain/packs/p1", b"re-encrypted")
            assert backend.get("objects/plain/packs/p1") == b"re-encrypted"
        finally:
            backend.close()


def test_health_readiness_and_whoami(backing: Path) -> None:
    with serving_team(open_settings(str(backing))) as url:
        assert _raw(url, "GET", "/healthz")[0] == 200
        status, answer = _raw(url, "GET", "/readyz")
        assert status == 503
        assert json.loads(answer)["error"] == "unavailable"
        (backing / "config").write_bytes(b"{}")
        assert _raw(url, "GET", "/readyz")[0] == 200
        status, answer = _raw(url, "GET", "/v1/whoami")
        assert status == 200
        assert json.loads(answer) == {"user": None, "email": None, "name": None,
                                      "token": None, "roles": {"*": "admin"}}
        status, answer = _raw(url, "GET", "/v1/whoami", headers={"Authorization": "Bearer x"})
        assert (status, json.loads(answer)["error"]) == (401, "not_signed_in")
        status, answer = _raw(url, "GET", "/no/such/route")
        assert (status, json.loads(answer)["error"]) == (404, "not_found")
        status, answer = _raw(url, "POST", "/v1/o/x", b"")
        assert status == 405


def test_an_app_without_a_gate_and_without_an_open_role_is_refused(backing: Path) -> None:
    from artifactstore.core.errors import ConfigurationError
    from artifactstore.server.app import create_server_app
    from artifactstore.server.settings import ServerSettings

    with pytest.raises(ConfigurationError, match="everyone"):
        create_server_app(ServerSettings(store_url=str(backing), secret=TEST_SECRET))
    with pytest.raises(ConfigurationError, match="everyone"):
        create_server_app(open_settings(str(backing), role="owner"))


# -- the CLI through `artifactstore serve` ----------------------------------------------


def _data(root: Path) -> Path:
    rng = random.Random(18)
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "sub" / "b.bin").write_bytes(rng.randbytes(300_000))
    (data / "big.bin").write_bytes(rng.randbytes(12 << 20))
    (data / "empty").write_bytes(b"")
    return data


def _run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "artifactstore", *argv], capture_output=True,
                          text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)


def _config(tmp_path: Path, role: str = "admin") -> Path:
    path = tmp_path / "server.toml"
    path.write_text(f'[roles]\neveryone = "{role}"\n')
    return path


def test_log_and_get_through_serve_byte_exact(tmp_path: Path, backing: Path) -> None:
    data = _data(tmp_path)
    env = {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "client-config"),
           "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "client-cache")}
    env.pop("ARTIFACTSTORE_TOKEN", None)
    log = tmp_path / "server.log"
    with serve_process(str(backing), log, config=_config(tmp_path)) as server:
        url = server.store_url
        assert url.startswith("artifactstore+http://127.0.0.1:")
        for argv in (("init", url, "--public"), ("log", "ds", str(data), "--store", url),
                     ("get", "ds:v0", "--dir", str(tmp_path / "out"), "--store", url)):
            done = _run(*argv, "--quiet", env=env)
            assert done.returncode == 0, (argv, done.stderr)
        done = _run("ls", "ds", "--store", url, "--json", env=env)
        assert done.returncode == 0, done.stderr
        assert len(json.loads(done.stdout)) == 1
        assert server.stop() == 0  # SIGTERM: a graceful stop
    assert "artifactstore server stopped" in server.log_text()
    for path in sorted(data.rglob("*")):
        if path.is_file():
            copy = tmp_path / "out" / path.relative_to(data)
            assert copy.read_bytes() == path.read_bytes(), path
    done = _run("verify", "--read-data", "--store", str(backing), env=env)
    assert done.returncode == 0, done.stderr  # the backing store is a sound store
    lines = [json.loads(line) for line in server.log_text().splitlines()
             if line.startswith("{")]
    assert {line["method"] for line in lines} >= {"GET", "PUT"}
    assert all(set(line) >= {"time", "method", "path", "status", "bytes", "ms", "principal"}
               for line in lines)
    assert any(line["path"].startswith("/v1/o/") and line["status"] == 201 for line in lines)
    assert "OPEN SERVER" in server.log_text()


def test_a_reader_server_refuses_log_with_exit_15(tmp_path: Path, backing: Path) -> None:
    data = _data(tmp_path)
    env = {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "client-config")}
    env.pop("ARTIFACTSTORE_TOKEN", None)
    assert _run("init", str(backing), "--public", "--quiet", env=env).returncode == 0
    before = _files(backing)
    with serve_process(str(backing), tmp_path / "server.log",
                       config=_config(tmp_path, "reader")) as server:
        done = _run("log", "ds", str(data / "a.txt"), "--store", server.store_url, env=env)
        assert done.returncode == 15, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert "reader" in done.stderr
        done = _run("ls", "--store", server.store_url, env={**env,
                                                          "ARTIFACTSTORE_TOKEN": "forged"})
        assert done.returncode == 14, done.stderr
    assert _files(backing) == before


def test_serve_check(tmp_path: Path, backing: Path, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(SECRET_ENV, TEST_SECRET.decode())
    config = str(_config(tmp_path))
    code, out, err = cli(capsys, "serve", "--check", "--port", "0", "--store", str(backing),
                         "--config", config)
    assert code == 13, err  # an empty folder holds no store yet
    assert "artifactstore init" in err
    assert cli(capsys, "init", str(backing), "--public", "-q")[0] == 0
    code, out, err = cli(capsys, "serve", "--check", "--port", "0", "--store", str(backing),
                         "--config", config, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["checked"] is True
    assert answer["store_url"].startswith("artifactstore+http")
    code, out, err = cli(capsys, "serve", "--check", "--store", str(backing))
    assert code == 9
    assert "everyone" in err
    monkeypatch.delenv(SECRET_ENV)
    code, out, err = cli(capsys, "serve", "--check", "--store", str(backing),
                         "--config", config)
    assert code == 9
    assert SECRET_ENV in err


def test_the_missing_extra_names_server(monkeypatch: pytest.MonkeyPatch, backing: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(SECRET_ENV, TEST_SECRET.decode())
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    code, _, err = cli(capsys, "serve", "--check", "--store", str(backing))
    assert code == 9
    assert "artifactstore[server]" in err


@pytest.mark.s3
def test_serve_over_s3_in_a_process(tmp_path: Path, s3_server: MotoS3Server) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": s3_server.endpoint_url,
           "AWS_ACCESS_KEY_ID": s3_server.access_key,
           "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
           "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "client-config")}
    env.pop("ARTIFACTSTORE_TOKEN", None)
    store = f"s3://{s3_server.bucket}/served-{random.Random().getrandbits(40):x}"
    data = _data(tmp_path)
    with serve_process(store, tmp_path / "server.log", config=_config(tmp_path),
                       env=env) as server:
        client_env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        for argv in (("init", server.store_url, "--public"),
                     ("log", "ds", str(data), "--store", server.store_url),
                     ("get", "ds:v0", "--dir", str(tmp_path / "out"), "--store",
                      server.store_url)):
            done = _run(*argv, "--quiet", env=client_env)
            assert done.returncode == 0, (argv, done.stderr)
    assert (tmp_path / "out" / "big.bin").read_bytes() == (data / "big.bin").read_bytes()
