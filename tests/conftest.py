"""Shared fixtures: isolated settings, S3 and GCS servers, fresh stores.

The environment is pinned before anything imports boto or gcsfs (and is
inherited by spawned worker processes): no real AWS config, credentials or
instance metadata are consulted, and gcsfs's experimental zonal-bucket probe,
which makes every emulator call take 50-80 s, is off.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis's timing checks (a 200 ms deadline per example, "input generation is slow")
# measure the machine, not the code: on CI's two cores shared by two test workers, a busy
# moment failed a round-trip test whose inputs were fine. Every other health check stays.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
for _name in (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
):
    os.environ.pop(_name, None)
for _name in [n for n in os.environ if n.startswith("FSSPEC_")]:
    os.environ.pop(_name)  # fsspec's own configuration (backends/_s3.py reads it)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Caches, the default store and the user's store URL: never the real user's.
_home = tempfile.mkdtemp(prefix="artifactstore-tests-")
# Removed when this process exits: each process that imports this file makes its own,
# and pytest-xdist's controller runs no session fixture (its folder was left behind).
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["ARTIFACTSTORE_CACHE_DIR"] = os.path.join(_home, "cache")
os.environ["XDG_CACHE_HOME"] = os.path.join(_home, "xdg-cache")
os.environ["XDG_DATA_HOME"] = os.path.join(_home, "xdg-data")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_home, "xdg-config")
os.environ["FSSPEC_CONFIG_DIR"] = os.path.join(_home, "fsspec")  # none of the user's
os.environ.pop("ARTIFACTSTORE_CONFIG_DIR", None)
os.environ.pop("ARTIFACTSTORE_PASSPHRASE", None)
os.environ.pop("ARTIFACTSTORE_URL", None)

from artifactstore.testing import (  # noqa: E402 - after the environment is pinned
    BackendSpec,
    FakeGcsServer,
    MotoS3Server,
    fake_gcs_server,
    moto_s3_server,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from artifactstore.testing.browser import SealedPage
    from artifactstore.testing.oidc import OidcIssuer


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3Server]:
    """One moto S3 server for the session, with bucket ``artifactstore-test``."""
    with moto_s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcsServer]:
    """One fake-gcs-server for the session, with bucket ``artifactstore-test``."""
    log = tmp_path_factory.mktemp("fake-gcs") / "server.log"
    with fake_gcs_server(log_path=log) as server:
        yield server


def _fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_spec(s3_server: MotoS3Server) -> BackendSpec:
    """An empty S3 store: a fresh prefix in the session bucket."""
    return BackendSpec(f"s3://{s3_server.bucket}/{_fresh_prefix()}", s3_server.backend_options())


@pytest.fixture
def gcs_spec(gcs_server: FakeGcsServer) -> BackendSpec:
    """An empty GCS store: a fresh prefix in the session bucket."""
    return BackendSpec(f"gs://{gcs_server.bucket}/{_fresh_prefix()}", gcs_server.backend_options())


@pytest.fixture
def memory_spec() -> Iterator[BackendSpec]:
    """An empty, uniquely named memory store, dropped after the test."""
    from artifactstore.backends import drop_memory_store

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield BackendSpec(f"memory://{name}")
    drop_memory_store(name)


@pytest.fixture
def local_spec(tmp_path: os.PathLike[str]) -> BackendSpec:
    """An empty local store in the test's temp directory (fsync on, the default)."""
    return BackendSpec(os.path.join(os.fspath(tmp_path), "store"))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def local_or_s3_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str],
                    monkeypatch: pytest.MonkeyPatch) -> str:
    """A store URL not created yet: a local folder, then an S3 prefix on the moto server
    whose endpoint and keys are in the environment, as a user's shell would have them."""
    monkeypatch.delenv("ARTIFACTSTORE_URL", raising=False)
    if request.param == "local":
        return os.path.join(os.fspath(tmp_path), "store")
    server: MotoS3Server = request.getfixturevalue("s3_server")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    return f"s3://{server.bucket}/{_fresh_prefix()}"


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """Debian's headless Chromium under Playwright for the session, installed with
    apt-get first when missing (artifactstore/testing/browser.py)."""
    from artifactstore.testing.browser import chromium

    with chromium() as browser:
        yield browser


@pytest.fixture
def sealed_page(chromium_browser: Browser) -> Iterator[SealedPage]:
    """A fresh page that reaches only the origin it opens: every other request is
    aborted, console errors are collected in ``.errors``."""
    from artifactstore.testing.browser import SealedPage

    with SealedPage(chromium_browser) as page:
        yield page


@pytest.fixture(scope="session")
def graphviz_dot() -> str:
    """Graphviz's ``dot``, installed with apt-get first when missing (as Chromium is:
    artifactstore/testing/debian.py), for the tests that render DOT exports."""
    from artifactstore.testing.debian import ensure_tool

    return ensure_tool(("dot",), "graphviz")


@pytest.fixture
def oidc_issuer() -> Iterator[OidcIssuer]:
    """A real OpenID Connect issuer (authlib's server parts) on 127.0.0.1, with one
    user, alice, signed in (artifactstore/testing/oidc.py)."""
    from artifactstore.testing.oidc import oidc_issuer as serve_issuer

    with serve_issuer() as issuer:
        issuer.add_user("alice", "alice@example.com", "Alice Liddell", ("ml-team",))
        yield issuer
