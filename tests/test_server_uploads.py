"""The team server's upload budget and its store options (server.toml).

A server process holds at most ``upload_buffer_mib`` of PUT bodies at once: more
uploads wait, unread, and all of them are stored in the end; ``[store_options]`` opens
the backing store (an S3 endpoint, a region) without any secret in the file.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from artifactstore.backends import open_backend
from artifactstore.backends._wrapper import BackendWrapper
from artifactstore.backends.local import LocalBackend
from artifactstore.core.errors import ConfigurationError
from artifactstore.server.settings import SECRET_ENV, load_settings
from artifactstore.server.uploads import UploadBudget
from artifactstore.testing import MotoS3Server
from artifactstore.testing.teamserver import open_settings, serve_process, serving_team

MIB = 1 << 20


class _HeldPuts(BackendWrapper):
    """A local backend whose writes wait for the test's go, counting those in progress."""

    def __init__(self, inner: LocalBackend) -> None:
        super().__init__(inner)
        self.go = threading.Event()
        self._lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.arrived = threading.Semaphore(0)

    def _enter(self) -> None:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.arrived.release()
        assert self.go.wait(60), "the test never let the writes go"

    def _leave(self) -> None:
        with self._lock:
            self.inside -= 1

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._enter()
        try:
            return self.inner.put_if_absent(key, data)
        finally:
            self._leave()

    def put_parts(self, key: str, parts: object) -> None:
        self._enter()
        try:
            self.inner.put_parts(key, parts)  # type: ignore[arg-type]
        finally:
            self._leave()


def test_uploads_past_the_budget_wait_and_are_all_stored(tmp_path: Path) -> None:
    """A budget of two 1 MiB bodies: of five uploads at once, two reach the store while
    the others wait; once the store answers, all five are stored whole."""
    held = _HeldPuts(LocalBackend(str(tmp_path / "backing"), create=True))
    settings = open_settings(str(tmp_path / "backing"), max_object_bytes=MIB,
                             upload_buffer_bytes=2 * MIB)
    bodies = {f"objects/up-{n}": random.Random(n).randbytes(MIB) for n in range(5)}
    with serving_team(settings, backend=held) as url:
        client = open_backend(f"artifactstore+{url}/")
        try:
            with ThreadPoolExecutor(5) as pool:
                done = [pool.submit(client.put, key, body) for key, body in bodies.items()]
                for _ in range(2):
                    assert held.arrived.acquire(timeout=30)
                # three more are in flight; none may reach the store while two are held
                assert not held.arrived.acquire(timeout=1.0)
                assert held.inside == 2
                held.go.set()
                for future in done:
                    future.result(timeout=60)
            assert held.most_inside == 2
            for key, body in bodies.items():
                assert client.get(key) == body
        finally:
            client.close()


def test_the_budget_serves_in_order_and_a_cancelled_wait_gives_its_turn_up() -> None:
    async def scenario() -> list[str]:
        budget = UploadBudget(10)
        order: list[str] = []
        release = asyncio.Event()

        async def upload(name: str, size: int) -> None:
            async with budget.reserve(size):
                order.append(name)
                await release.wait()

        first = asyncio.create_task(upload("a", 6))
        await asyncio.sleep(0)
        big = asyncio.create_task(upload("b", 8))      # waits for a
        small = asyncio.create_task(upload("c", 2))    # would fit, but b came first
        gone = asyncio.create_task(upload("d", 1))
        await asyncio.sleep(0.01)
        assert order == ["a"]
        assert budget.held == 6
        gone.cancel()
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(first, big, small, return_exceptions=True)
        assert gone.cancelled()
        assert budget.held == 0
        assert budget.peak <= 10
        return order

    # in a thread of its own: a session's browser (Playwright's sync API) may be running
    # an event loop on the main thread
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: asyncio.run(scenario())).result(timeout=60) == ["a", "b", "c"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


ENV = {SECRET_ENV: "s" * 40}


def test_store_options_and_the_upload_buffer_load(tmp_path: Path) -> None:
    path = _write(tmp_path / "server.toml", 'store = "s3://b/p"\nmax_object_mib = 64\n'
                  'upload_buffer_mib = 256\n[store_options]\n'
                  'endpoint_url = "https://minio.internal:9000"\nregion = "eu-west-1"\n'
                  'read_timeout = 30\n')
    settings = load_settings(path, environ=ENV)
    assert settings.store_options == {"endpoint_url": "https://minio.internal:9000",
                                      "region": "eu-west-1", "read_timeout": 30}
    assert settings.upload_buffer_bytes == 256 * MIB
    plain = load_settings(_write(tmp_path / "plain.toml", 'store = "/s"\n'), environ=ENV)
    assert plain.store_options == {}
    assert plain.upload_buffer_bytes == 4 * 256 * MIB


@pytest.mark.parametrize(("text", "message"), [
    ('[store_options]\nsecret = "x"\n', "is a secret and never sits in the file"),
    ('[store_options]\nkey = "AKIA"\n', "is a secret"),
    ('[store_options]\nclient_kwargs = { a = 1 }\n', "must be a string, number"),
    ('store_options = "endpoint"\n', "must be a table"),
    ('max_object_mib = 64\nupload_buffer_mib = 32\n', "upload_buffer_mib must be"),
])
def test_bad_store_options_and_buffers_stop_the_server_in_one_line(
        tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path / "server.toml", 'store = "s3://b/p"\n' + text)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(path, environ=ENV)


@pytest.mark.s3
def test_serve_opens_an_s3_store_with_the_endpoint_from_store_options(
        tmp_path: Path, s3_server: MotoS3Server) -> None:
    """No AWS_ENDPOINT_URL in the environment: the endpoint comes from server.toml, the
    credentials from the environment; a client logs and gets through the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
    env.update({"AWS_ACCESS_KEY_ID": s3_server.access_key,
                "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
                "ARTIFACTSTORE_CONFIG_DIR": str(tmp_path / "client-config"),
                SECRET_ENV: "s" * 40})
    env.pop("ARTIFACTSTORE_TOKEN", None)
    store = f"s3://{s3_server.bucket}/opts-{random.Random().getrandbits(40):x}"
    config = _write(tmp_path / "server.toml",
                    f'store = "{store}"\n[roles]\neveryone = "admin"\n'
                    f'[store_options]\nendpoint_url = "{s3_server.endpoint_url}"\n')
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(random.Random(3).randbytes(300_000))
    with serve_process(store, tmp_path / "server.log", config=config, env=env) as server:
        client_env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        for argv in (("init", server.store_url, "--public"),
                     ("log", "ds", str(data), "--store", server.store_url),
                     ("get", "ds:v0", "--dir", str(tmp_path / "out"), "--store",
                      server.store_url)):
            done = subprocess.run([sys.executable, "-m", "artifactstore", *argv, "--quiet"],
                                  env=client_env, capture_output=True, text=True,
                                  timeout=300, check=False)
            assert done.returncode == 0, (argv, done.stderr)
    assert (tmp_path / "out" / "a.bin").read_bytes() == (data / "a.bin").read_bytes()
