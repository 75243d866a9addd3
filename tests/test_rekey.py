"""Issue 5: ``project rekey --reencrypt`` ends old access too: after it, the keys a removed
member kept open nothing left in the bucket, and members read everything as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_calls import cli_json
from test_privacy_acceptance import identity_line, person

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.core.errors import AccessDeniedError
from artifactstore.local.identity import load_identity
from artifactstore.maintenance.projects import create_project, rekey_project, remove_member
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import FLAG_ENCRYPTED, HEADER_SIZE
from artifactstore.records.bundles import bundles_prefix, decode
from artifactstore.records.codec import sealing_key_id
from artifactstore.records.projects import ProjectKeys
from artifactstore.repository.access import member_of
from artifactstore.testing.stores import init_quick_store


def _key_ids_in_bucket(url: str) -> set[bytes]:
    backend = open_backend(url)
    found = set()
    for key in backend.list(""):
        data = backend.get(key)
        if len(data) > HEADER_SIZE + 16 and data[6] & FLAG_ENCRYPTED:
            found.add(bytes(data[HEADER_SIZE:HEADER_SIZE + 16]))
    return found


def _key_ids_in_bundles(url: str) -> set[bytes]:
    """The key epochs that sealed the records copied into the bundles of project lab."""
    backend = open_backend(url)
    return {key_id for name in backend.list(bundles_prefix("lab"))
            for data in decode(backend.get(name)).values()
            if (key_id := sealing_key_id(data)) is not None}


@pytest.mark.slow
def test_rekey_reencrypt_leaves_nothing_old_keys_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url)
    bob_line = identity_line(monkeypatch, tmp_path, "bob")
    with person(monkeypatch, tmp_path, "alice"):
        create_project("lab", url, members=[bob_line])
    with person(monkeypatch, tmp_path, "bob"):  # bob keeps the key of epoch 0
        bob = load_identity()
        kept = ProjectKeys(open_backend(url), "lab", None).unlock(bob.x25519_private,
                                                                   member_of(bob))
        old_key_ids = {DomainKeys.from_epoch_key(k).key_id for k in kept.values()}
    files = {}
    with person(monkeypatch, tmp_path, "alice"):
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c0") as store:
            for i in range(2):
                f = tmp_path / f"w{i}.bin"
                files[i] = os.urandom(150_000)
                f.write_bytes(files[i])
                with store.run(job_type="train", capture_code=False) as run:
                    run.log({"loss": 1.0 / (i + 1)})
                    run.log_artifact(f, name="model", type="model", aliases=["prod"])
        remove_member("lab", bob_line, url)  # epoch 1: bob's keys open only epoch 0 data
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c1") as store:
            f = tmp_path / "w2.bin"
            files[2] = os.urandom(150_000)
            f.write_bytes(files[2])
            store.log_artifact(f, name="model", type="model")
            assert store.bundle_records() > 0  # copies of records as sealed now
        assert old_key_ids & _key_ids_in_bucket(url)  # before: bob could read epoch 0 data
        assert old_key_ids & _key_ids_in_bundles(url)
        code, out = cli_json(capsys, "project", "rekey", "lab", "--reencrypt", "--store", url)
        assert code == 0
        assert out["epoch"] == 2
        assert out["versions_rewritten"] == 3
        assert out["left_behind"] == []
        assert all(out["old_domains"].values())  # epochs 0 and 1 emptied
        assert out["bundles_deleted"] >= 1
        assert out["records_bundled"] > 0
        # c0 keeps local copies of v0 and v1 as first sealed: they must be read again.
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c0") as store:
            ring = store.refs.codec.ring
            assert ring is not None
            current = ring.current.key_id
            for i, version in enumerate(store.versions("model")):
                assert version.record.signature.key_id == current
                assert version.verify() == 1
                assert version.open(version.files()[0].path).read() \
                    == files[i]
            assert [e.target for e in store.alias_history("model", "prod")] == [0, 1]
            assert len(store.runs(sync=True)) == 2
            report = store.audit("model:v0")
            assert not [f for f in report.flags if f.severity == "error"]
    assert _key_ids_in_bucket(url) == {current}  # nothing under an old key is left
    assert _key_ids_in_bundles(url) == {current}  # not even in a bundle's copies
    with person(monkeypatch, tmp_path, "bob"), pytest.raises(AccessDeniedError), \
            artifactstore.open(url, project="lab", cache_dir=tmp_path / "cb") as store:
        store.artifact("model:v0").files()


def test_rekey_without_reencrypt_only_rotates(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url)
    with person(monkeypatch, tmp_path, "alice"):
        create_project("lab", url)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
            f = tmp_path / "a.bin"
            f.write_bytes(os.urandom(10_000))
            store.log_artifact(f, name="a", type="model")
        epoch, report = rekey_project("lab", url)
        assert (epoch, report) == (1, None)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c2") as store:
            store.artifact("a:v0").verify()
            ring = store.refs.codec.ring
            assert ring is not None
            assert ring.current.key_id != store.artifact("a:v0").record.signature.key_id


def test_rekey_reencrypt_tells_the_wait_callback_the_seconds_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15, point 5: emptying the old domains waits out the commit window, and
    says so (the CLI turns this into a countdown on a terminal)."""
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=1.5)
    with person(monkeypatch, tmp_path, "alice"):
        create_project("lab", url)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
            f = tmp_path / "w.bin"
            f.write_bytes(os.urandom(50_000))
            store.log_artifact(f, name="model", type="model")
        seen: list[float] = []
        _, report = rekey_project("lab", url, reencrypt=True, on_wait=seen.append)
    assert report is not None
    assert all(report.old_domains.values())
    assert seen[-1] == 0.0
    assert 0 < seen[0] <= 1.5
    assert len(seen) >= 3  # about once a second, not one call for the whole wait
