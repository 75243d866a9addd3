"""The object protocol end to end: the client backend (``artifactstore+http://``) against a
real uvicorn server over a local folder and over moto S3 (the backend conformance suite),
path tricks, body limits, status mapping, and the CLI logging and getting through
``artifactstore serve`` in a child process, byte-exact."""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_calls import cli

from artifactstore.backends import Backend, RetryingBackend, open_backend
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.core.errors import (
    BackendError,
    InvalidInputError,
    NotAuthorizedError,
    NotFoundError,
    NotSignedInError,
    TransientBackendError,
)
from artifactstore.server.app import ACCESS_LOG
from artifactstore.server.opengate import OpenAuthorizer
from artifactstore.server.principal import Principal, Role
from artifactstore.server.settings import SECRET_ENV
from artifactstore.testing import BackendConformance, BackendSpec, MotoS3Server
from artifactstore.testing.conformance import race_put_if_absent
from artifactstore.testing.teamserver import (
    TEST_SECRET,
    RequestCounter,
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


def _status_only(url: str, method: str, path: str, body: bytes,
                 headers: dict[str, str]) -> int:
    """The status of a request the server refuses without reading its body."""
    host, _, port = url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def _raw(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    host, _, port = url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True,
                              skip_host="Host" in (headers or {}))
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
            for call in (lambda: backend.get("server/audit"),
                         lambda: backend.stat("server/audit"),  # HEAD: the headers say why
                         lambda: backend.exists("server/audit")):
                with pytest.raises(NotAuthorizedError, match="server's own data"):
                    call()
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
        # Refused before its body is read, so the connection closes with the client's byte
        # unread and the kernel may reset it before the answer's body is read (CI saw
        # ECONNRESET there once): the status is what this checks.
        status = _status_only(url, "PUT", "/v1/o/lying", b"z", {"Content-Length": "9" * 30})
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


class _NothingReplaced(OpenAuthorizer):
    """Everyone is admin, but no PUT replaces anything; whoami names one project."""

    def may_replace(self, principal: Principal, key: str) -> bool:
        return False

    def roles(self, principal: Principal) -> dict[str, str]:
        return {"lab": "writer"}


def test_the_authorizer_decides_replacing_and_whoami_roles(backing: Path) -> None:
    settings = open_settings(str(backing))
    with serving_team(settings, authorizer=_NothingReplaced(Role.ADMIN)) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            backend.put("runs/r/heartbeat", b"first")
            backend.put("runs/r/heartbeat", b"second")
            assert backend.get("runs/r/heartbeat") == b"first"
        finally:
            backend.close()
        status, answer = _raw(url, "GET", "/v1/whoami")
        assert (status, json.loads(answer)["roles"]) == (200, {"lab": "writer"})


def test_an_open_server_answers_only_its_own_host_names(backing: Path) -> None:
    """DNS rebinding: a page whose name now points at the server is refused (403)."""
    (backing / "config").write_bytes(b"kept")
    settings = open_settings(str(backing), public_url="https://artifacts.example.com")
    with serving_team(settings) as url:
        port = url.rpartition(":")[2]
        for host in (f"rebound.example:{port}", "127.0.0.2", "", "artifacts.example.org",
                     "[::2]:80"):
            for method in ("GET", "DELETE"):
                status, answer = _raw(url, method, "/v1/o/config", headers={"Host": host})
                assert status == 403, (host, method)
                assert json.loads(answer)["error"] == "not_authorized"
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", "artifacts.example.com",
                     "ARTIFACTS.example.com:443"):
            assert _raw(url, "GET", "/v1/o/config", headers={"Host": host}) == (200, b"kept")
    assert (backing / "config").read_bytes() == b"kept"


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


def test_more_routes_are_served_with_the_protocol(backing: Path) -> None:
    """Sign-in, tokens and the UI come as more routes (after the protocol's)."""
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def hello(request: Request) -> PlainTextResponse:
        request.state.principal = "someone@example.com"
        return PlainTextResponse("hello")

    lines: list[str] = []
    sink = logging.Handler()
    sink.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    access = logging.getLogger(ACCESS_LOG)
    access.addHandler(sink)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        with serving_team(open_settings(str(backing)), routes=[
                Route("/hello", hello), Route("/v1/o/{key:path}", hello)]) as url:
            assert _raw(url, "GET", "/hello?code=one-time-SECRET") == (200, b"hello")
            assert _raw(url, "GET", "/v1/o/k")[0] == 404  # the protocol's route comes first
    finally:
        access.removeHandler(sink)
        access.setLevel(level)
    hello_line = json.loads(next(line for line in lines if '"/hello"' in line))
    assert hello_line["principal"] == "someone@example.com"
    assert "SECRET" not in "".join(lines)  # only a listing's query is logged


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
    assert all(set(line) >= {"time", "method", "path", "status", "bytes", "ms", "principal",
                             "client"} for line in lines)
    assert {line["client"] for line in lines} == {"127.0.0.1"}
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


# -- requests per operation ----------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("visibility", ["--public", "--private"])
def test_requests_per_operation_are_those_of_s3_directly(
        visibility: str, tmp_path: Path, s3_server: MotoS3Server,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """log, ls and get send the server exactly the requests they send S3 directly (moto
    counts those; the server's are counted as they arrive), and no sign-in request: the
    token rides on each request."""
    rng = random.Random(6)
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for index in range(12):
        (data / f"f{index}.bin").write_bytes(rng.randbytes(rng.randrange(100, 300_000)))
    (data / "sub" / "big.bin").write_bytes(rng.randbytes(9 << 20))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "config"))
    steps = [("log", ("log", "ds", str(data))), ("ls", ("ls", "ds")),
             ("get", ("get", "ds:v0", "--dir", "{out}")), ("ls all", ("ls",))]

    trace: dict[str, list[str]] = {}

    def run(url: str, tag: str, count: Any, reset: Any) -> dict[str, int]:
        code, _, err = cli(capsys, "init", url, *([visibility] if visibility == "--public"
                                                   else []), "-q")
        assert code == 0, err
        counted = {}
        for name, argv in steps:
            monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / f"cache-{tag}-{name}"))
            args = [a.format(out=tmp_path / f"out-{tag}") for a in argv]
            reset()
            code, _, err = cli(capsys, *args, "--store", url, "-q")
            assert code == 0, err
            counted[name] = count()
            trace[f"{tag} {name}"] = (
                [r.split("?")[0].rsplit("/", 1)[-1] for r in s3_server.requests] if tag == "d"
                else list(counters[0].seen))
        return counted

    direct = run(f"s3://{s3_server.bucket}/direct-{random.Random().getrandbits(32):x}", "d",
                 lambda: s3_server.request_count, s3_server.reset_count)
    counters: list[RequestCounter] = []
    backing = f"s3://{s3_server.bucket}/served-{random.Random().getrandbits(32):x}"
    store = RetryingBackend(open_backend(backing, **s3_server.backend_options()))
    try:
        with serving_team(open_settings(backing), backend=store, counter=counters) as url:
            served = run(f"artifactstore+{url}/", "s", lambda: len(counters[0].seen),
                         counters[0].seen.clear)
    finally:
        store.close()
    print(f"requests per operation, direct S3 {direct}, through the server {served}")
    assert all(not seen.endswith("/v1/whoami") for seen in counters[0].seen)
    # one request to the server per request S3 would have had
    assert served == direct, json.dumps({k: v for k, v in trace.items() if "log" in k})
    assert (tmp_path / "out-s" / "sub" / "big.bin").read_bytes() == \
        (data / "sub" / "big.bin").read_bytes()


def test_serve_with_two_workers(tmp_path: Path, backing: Path) -> None:
    data = _data(tmp_path)
    env = {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "client-config")}
    env.pop("ARTIFACTSTORE_TOKEN", None)
    with serve_process(str(backing), tmp_path / "server.log", config=_config(tmp_path),
                       more=("--workers", "2")) as server:
        for argv in (("init", server.store_url, "--public"),
                     ("log", "ds", str(data), "--store", server.store_url),
                     ("get", "ds:v0", "--dir", str(tmp_path / "out"), "--store",
                      server.store_url)):
            done = _run(*argv, "--quiet", env=env)
            assert done.returncode == 0, (argv, done.stderr)
        assert server.stop() == 0
    assert (tmp_path / "out" / "big.bin").read_bytes() == (data / "big.bin").read_bytes()
    assert server.log_text().count("OPEN SERVER") >= 2  # each worker built its app


class _Reads(BackendWrapper):
    """The backing store, noting how many bytes each read asked for."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.asked: list[int] = []

    def get(self, key: str) -> bytes:
        data = self._inner.get(key)
        self.asked.append(len(data))
        return data

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.asked.append(length)
        return self._inner.get_range(key, start, length)


def test_the_server_reads_big_objects_in_pieces(backing: Path) -> None:
    """A 40 MiB GET is read from the backing store 8 MiB at a time (the server never
    holds the whole object) and arrives whole; a small one costs one read."""
    from artifactstore.backends import LocalBackend
    from artifactstore.server.objects import PIECE

    data = random.Random(9).randbytes(40 << 20)
    store = _Reads(LocalBackend(str(backing)))
    store.put("objects/plain/packs/aa/big", data)
    store.put("small", b"tiny")
    with serving_team(open_settings(str(backing)), backend=store) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            assert backend.get("objects/plain/packs/aa/big") == data
            assert max(store.asked) == PIECE
            assert len(store.asked) == len(data) // PIECE + 1
            store.asked.clear()
            assert backend.get("small") == b"tiny"
            assert len(store.asked) == 1
        finally:
            backend.close()


class _BreaksAfterTheFirstPiece(BackendWrapper):
    """The backing store failing in the middle of a streamed read."""

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if start > 0:
            raise BackendError(f"get_range {key!r}: the disk went away")
        return self._inner.get_range(key, start, length)


def test_a_store_failing_mid_stream_is_a_broken_read_never_short_bytes(
        backing: Path) -> None:
    from artifactstore.backends import LocalBackend

    store = _BreaksAfterTheFirstPiece(LocalBackend(str(backing)))
    store.put("big", random.Random(4).randbytes(20 << 20))
    with serving_team(open_settings(str(backing)), backend=store) as url:
        backend = open_backend(f"artifactstore+{url}/")
        try:
            with pytest.raises(TransientBackendError, match="big"):  # retried by the stack
                backend.get("big")
        finally:
            backend.close()


# -- HTTPS ------------------------------------------------------------------------------


def test_https_with_the_teams_own_ca(tmp_path: Path, backing: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A server with a certificate of the team's own CA: trusted with ca_certs (or
    SSL_CERT_FILE), refused in one line otherwise, and never retried."""
    from artifactstore.testing.tlscert import self_signed

    cert, key = self_signed(tmp_path)
    with serving_team(open_settings(str(backing)), tls=(str(cert), str(key))) as url:
        assert url.startswith("https://127.0.0.1:")
        served = f"artifactstore+{url}/"
        backend = open_backend(served, ca_certs=str(cert))
        try:
            backend.put("k", b"over tls")
            assert backend.get("k") == b"over tls"
            assert list(backend.list()) == ["k"]
        finally:
            backend.close()
        untrusted = open_backend(served)
        try:
            with pytest.raises(BackendError, match="certificate is not trusted") as info:
                untrusted.get("k")
            assert not info.value.transient
        finally:
            untrusted.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        trusting = open_backend(served)
        try:
            assert trusting.get("k") == b"over tls"
        finally:
            trusting.close()


def test_serve_https_in_a_process(tmp_path: Path, backing: Path) -> None:
    from artifactstore.testing.tlscert import self_signed

    cert, key = self_signed(tmp_path)
    data = _data(tmp_path)
    env = {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "client-config"),
           "SSL_CERT_FILE": str(cert)}
    env.pop("ARTIFACTSTORE_TOKEN", None)
    with serve_process(str(backing), tmp_path / "server.log", config=_config(tmp_path),
                       more=("--tls-cert", str(cert), "--tls-key", str(key))) as server:
        assert server.store_url.startswith("artifactstore+https://127.0.0.1:")
        for argv in (("init", server.store_url, "--public"),
                     ("log", "ds", str(data / "a.txt"), "--store", server.store_url),
                     ("get", "ds:v0", "--dir", str(tmp_path / "out"), "--store",
                      server.store_url)):
            done = _run(*argv, "--quiet", env=env)
            assert done.returncode == 0, (argv, done.stderr)
        done = _run("ls", "--store", server.store_url,
                    env={k: v for k, v in env.items() if k != "SSL_CERT_FILE"})
        assert done.returncode == 7, done.stderr
        assert "certificate is not trusted" in done.stderr
    assert (tmp_path / "out" / "a.txt").read_text() == "alpha\n"


# -- several instances ----------------------------------------------------------------------


@dataclass(frozen=True)
class _EitherServer(BackendSpec):
    """Each client opened from it talks to the next of several servers in turn."""

    urls: tuple[str, ...] = ()
    turns: Any = field(default_factory=itertools.count, compare=False)

    def open(self) -> Backend:
        return open_backend(self.urls[next(self.turns) % len(self.urls)])


@pytest.mark.s3
def test_two_instances_over_one_bucket_agree_on_every_create(s3_spec: BackendSpec) -> None:
    """8 clients, half on each of two servers over one S3 prefix, race to create the
    same keys: exactly one wins each, and both servers list and read the winner's."""
    stores = [RetryingBackend(s3_spec.open()), RetryingBackend(s3_spec.open())]
    counters: list[RequestCounter] = []
    try:
        with serving_team(open_settings(s3_spec.url), backend=stores[0],
                          counter=counters) as one, \
                serving_team(open_settings(s3_spec.url), backend=stores[1],
                             counter=counters) as two:
            urls = (f"artifactstore+{one}/", f"artifactstore+{two}/")
            keys = [f"race/{index:02d}" for index in range(10)]
            outcomes = race_put_if_absent(_EitherServer(urls[0], urls=urls), keys,
                                          workers=8, processes=False)
            for counter in counters:  # each server had its half of the creates
                assert sum(seen.startswith("PUT") for seen in counter.seen) == 4 * len(keys)
            readers = [open_backend(url) for url in urls]
            try:
                for position, key in enumerate(keys):
                    winners = [w for w, won in outcomes.items() if won[position]]
                    assert len(winners) == 1, (key, winners)
                    assert readers[0].get(key) == readers[1].get(key)
                assert list(readers[0].list("race/")) == list(readers[1].list("race/")) == keys
            finally:
                for reader in readers:
                    reader.close()
    finally:
        for store in stores:
            store.close()
