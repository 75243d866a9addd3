"""The trust issue's attacks with a team server in the way: the attacker edits the
*backing* store directly (the bucket admin, or whoever stole the server's bucket
credentials), members read and write through ``artifactstore+http://`` and refuse the
same way. And a private project logged through the server leaves none of its names or
contents in the backing store's bytes nor in the server's log.

The downgrade test of tests/test_project_trust.py runs here unchanged: imported, it
takes this module's ``where`` fixture (the server's URL), and its attacker's
``open_backend`` is pointed at the backing store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_project_trust
from cli_calls import cli_json
from test_privacy_acceptance import (
    MARKER,
    assert_nothing_leaks,
    log_secrets,
    new_project,
    person,
)
from test_project_trust import test_the_downgrade_is_refused_and_writes_nothing

import artifactstore
from artifactstore.backends import Backend, RetryingBackend, open_backend
from artifactstore.core.errors import ArtifactStoreError
from artifactstore.local.identity import load_identity
from artifactstore.records.projects import ProjectKeys
from artifactstore.repository.access import member_of
from artifactstore.testing.servers import MotoS3Server
from artifactstore.testing.teamserver import open_settings, serve_process, serving_team

__all__ = ["test_the_downgrade_is_refused_and_writes_nothing"]  # run here, through a server


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backing(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """The backing store's URL (not created yet) and its options."""
    if request.param == "local":
        folder = tmp_path / "backing"
        folder.mkdir()
        return str(folder), {}
    server: MotoS3Server = request.getfixturevalue("s3_server")
    return f"s3://{server.bucket}/served-{uuid.uuid4().hex[:12]}", server.backend_options()


@pytest.fixture
def where(backing: tuple[str, dict[str, Any]],
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server's store URL for clients; the attacker of test_project_trust reaches
    the backing store instead (its ``open_backend`` of the server's URL opens it)."""
    url, options = backing
    store = RetryingBackend(open_backend(url, **options))
    try:
        with serving_team(open_settings(url), backend=store) as base:
            served = f"artifactstore+{base}/"

            def attacker_backend(target: str, **more: Any) -> Backend:
                if target == served:
                    return open_backend(url, **options)
                return open_backend(target, **more)

            monkeypatch.setattr(test_project_trust, "open_backend", attacker_backend)
            yield served, {}
    finally:
        store.close()


def test_swapped_version_records_are_detected_through_the_server(
        where: tuple[str, dict[str, Any]], backing: tuple[str, dict[str, Any]],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """test_privacy_acceptance::test_swapped_version_records_are_detected, served."""
    served, _ = where
    with person(monkeypatch, tmp_path, "alice"):
        new_project(served, "lab")
        with artifactstore.open(served, project="lab", cache_dir=tmp_path / "c") as store:
            for text in ("one", "two"):
                (tmp_path / "f.txt").write_text(text)
                store.log_artifact(tmp_path / "f.txt", name="notes", type="text")
        direct = open_backend(backing[0], **backing[1])
        v0, v1 = sorted(k for k in direct.list("") if "/versions/" in k)
        a, b = direct.get(v0), direct.get(v1)
        direct.put(v0, b)
        direct.put(v1, a)
        direct.close()
        with artifactstore.open(served, project="lab", cache_dir=tmp_path / "c2") as store:
            for ref in ("notes:v0", "notes:v1"):
                with pytest.raises(ArtifactStoreError, match="failed authentication"):
                    store.artifact(ref)


def test_verify_names_a_planted_key_epoch_through_the_server(
        where: tuple[str, dict[str, Any]], backing: tuple[str, dict[str, Any]],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """test_project_trust::test_verify_names_a_planted_key_epoch, served."""
    served, _ = where
    with person(monkeypatch, tmp_path, "alice"):
        new_project(served, "lab")
        alice = member_of(load_identity())
    with person(monkeypatch, tmp_path, "mallory"):
        direct = open_backend(backing[0], **backing[1])
        keys = ProjectKeys(direct, "lab", load_identity().signing_key)
        keys._write_epoch(1, os.urandom(32), [alice])  # an epoch whose key Mallory knows
        direct.close()
    with person(monkeypatch, tmp_path, "alice"):
        code, report = cli_json(capsys, "verify", "--store", served, "--project", "lab")
    assert code == 5
    problems = {d["object"]: d["problem"] for d in report["damaged"]}
    assert "not signed by a member" in problems["projects/lab/keys/0000000001/info"]


def test_a_private_project_through_the_server_leaks_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plaintext scan: the backing store's keys and bytes, and the server process's
    whole log (stderr: access lines and warnings), hold no name, alias, metric, file
    name or content of the private project."""
    folder = tmp_path / "backing"
    folder.mkdir()
    config = tmp_path / "server.toml"
    config.write_text('[roles]\neveryone = "admin"\n')
    with serve_process(str(folder), tmp_path / "server.log", config=config) as server, \
            person(monkeypatch, tmp_path, "alice"):
        new_project(server.store_url, "lab")
        with artifactstore.open(server.store_url, project="lab",
                                cache_dir=tmp_path / "c") as store:
            assert store.refs.codec.encrypted
            contents = log_secrets(store, tmp_path)
            out = store.artifact(f"secret-{MARKER}:prod-{MARKER}").download(tmp_path / "out")
            assert (Path(out) / f"{MARKER}.csv").read_bytes() == contents[0]
        assert server.stop() == 0
    assert_nothing_leaks(str(folder), {}, contents)
    log = server.log_text()
    assert log.count('"method"') > 20  # the access log did record the traffic
    assert MARKER not in log
    for data in contents:
        assert data[:24].decode("latin-1") not in log
