"""The web UI over a private project in an S3 bucket (moto's server on 127.0.0.1): the
member's UI shows the decrypted run names, config and charts, while the bucket holds
none of them in plaintext; a non-member's ``artifactstore ui`` refuses to start with the
access line and its exit code, serving nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.local.identity import load_or_create_identity
from artifactstore.maintenance.projects import create_project
from artifactstore.testing import MotoS3Server
from artifactstore.ui.app import create_app

MARKER = "okapi3secret"

pytestmark = pytest.mark.s3


def _as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> dict[str, str]:
    folder = tmp_path / f"person-{name}"
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(folder))
    load_or_create_identity()
    return {**os.environ, "ARTIFACTSTORE_CONFIG_DIR": str(folder)}


def test_the_ui_of_a_private_project_on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           s3_server: MotoS3Server) -> None:
    url = f"s3://{s3_server.bucket}/ui-private-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    _as(tmp_path, monkeypatch, "alice")
    artifactstore.open(url, create=True, **options).close()
    create_project("lab", url, **options)
    with artifactstore.open(url, "lab", cache_dir=tmp_path / "c", **options) as store:
        with store.run(name=f"run-{MARKER}", job_type="train",
                       config={f"lr-{MARKER}": 0.1}) as run:
            for step in range(50):
                run.log({f"loss-{MARKER}": 1 / (step + 1)})
        client = TestClient(create_app(store))
        table = client.get("/api/p/lab/").json()
        assert [row["name"] for row in table["rows"]] == [f"run-{MARKER}"]
        assert f"config.lr-{MARKER}" in table["columns"]
        page = client.get(f"/api/p/lab/runs/{run.id}").json()
        assert page["metrics"][f"loss-{MARKER}"]["points"] == 50
        assert MARKER in client.get(f"/p/lab/runs/{run.id}").text

    backend = open_backend(url, **options)
    try:
        keys = list(backend.list(""))
        assert len(keys) > 5
        for key in keys:
            assert MARKER not in key
            assert MARKER.encode() not in backend.get(key), key
    finally:
        backend.close()

    # a non-member: the UI does not start, one line, the access exit code (12)
    env = _as(tmp_path, monkeypatch, "mallory")
    env |= {"AWS_ENDPOINT_URL_S3": s3_server.endpoint_url,
            "AWS_ACCESS_KEY_ID": s3_server.access_key,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key}
    done = subprocess.run([sys.executable, "-m", "artifactstore", "ui", "--check", "--store",
                           url, "--project", "lab"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 12, done.stderr
    assert done.stderr.count("\n") == 1
    assert MARKER not in done.stderr + done.stdout
