"""Issue 14 points 1-2: no write without trust, atomic and race-free project creation.

Attacks are replayed as the storage admin would run them (objects replaced or deleted
straight in the bucket), against real local folders and S3 (moto server); crashes are
real SIGKILLs of a subprocess at an exact write; races are real processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_calls import cli, cli_json
from test_privacy_acceptance import identity_line, person

import artifactstore
from artifactstore.backends import Backend, open_backend
from artifactstore.backends.memory import MemoryBackend
from artifactstore.core.errors import AccessDeniedError, IntegrityError
from artifactstore.local.identity import load_identity
from artifactstore.maintenance.projects import add_member, create_project, rekey_project
from artifactstore.maintenance.verify import verify_store
from artifactstore.records.projects import ProjectKeys
from artifactstore.repository.access import member_of
from artifactstore.testing.oldlayout import create_old_layout
from artifactstore.testing.processes import run_workers
from artifactstore.testing.servers import MotoS3Server

MARK = uuid.uuid4().hex[:12]
NEW_CONTENT = f"new-content-{MARK}-".encode() * 50
NEW_NAME = f"leaked-{MARK}"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A store URL that does not exist yet, and its backend options."""
    if request.param == "local":
        yield str(tmp_path / "store"), {}
    else:
        server: MotoS3Server = request.getfixturevalue("s3_server")
        yield f"s3://{server.bucket}/trust-{uuid.uuid4().hex[:12]}", server.backend_options()


def _every_object(backend: Backend) -> Iterator[tuple[str, bytes]]:
    for key in backend.list(""):
        yield key, backend.get(key)


def _assert_nothing_new(backend: Backend) -> None:
    """No stored object holds the new content or the new artifact name, in any form."""
    for key, data in _every_object(backend):
        assert NEW_NAME not in key
        assert NEW_NAME.encode() not in data, key
        assert NEW_CONTENT[:40] not in data, key


def _attacker_record(project: str, visibility: str) -> bytes:
    """A project record (with genesis) made and signed by the current person."""
    me = load_identity()
    scratch = MemoryBackend(f"attacker-{uuid.uuid4().hex}")
    ProjectKeys(scratch, project, me.signing_key).create(visibility, member_of(me))
    return scratch.get(f"projects/{project}/project")


def _wipe(backend: Backend, project: str) -> None:
    for key in list(backend.list(f"projects/{project}/")):
        rest = key[len(f"projects/{project}/"):]
        if rest.startswith(("members/", "keys/")) or rest == "recovery":
            backend.delete(key)


def _log_new(url: str, options: dict[str, Any], cache: Path, tmp_path: Path) -> None:
    (tmp_path / "new.bin").write_bytes(NEW_CONTENT)
    with artifactstore.open(url, project="lab", cache_dir=cache, **options) as store:
        store.log_artifact(tmp_path / "new.bin", name=NEW_NAME, type="data")


@pytest.mark.parametrize("attack", ["public-record", "public-record-and-wipe", "own-genesis"])
def test_the_downgrade_is_refused_and_writes_nothing(
        where: tuple[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        attack: str) -> None:
    url, options = where
    identity_line(monkeypatch, tmp_path, "carol")
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True, **options).close()
        create_project("lab", url, visibility="private", **options)
        (tmp_path / "old.bin").write_bytes(b"before the attack")
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "pinned",
                                **options) as store:
            store.log_artifact(tmp_path / "old.bin", name="data", type="data")
    backend = open_backend(url, **options)
    with person(monkeypatch, tmp_path, "mallory"):  # the storage admin
        record = _attacker_record("lab", "private" if attack == "own-genesis" else "public")
    backend.put("projects/lab/project", record)
    if attack != "public-record":
        _wipe(backend, "lab")

    # A member on a new machine (empty cache), and someone who never was a member.
    for who in ("alice", "carol"):
        with person(monkeypatch, tmp_path, who), \
                pytest.raises((IntegrityError, AccessDeniedError)) as refused:
            _log_new(url, options, tmp_path / f"fresh-{who}", tmp_path)
        assert refused.value.exit_code in (5, 12)
        assert "\n" not in str(refused.value)
    # A machine that pinned the project, once its local copy of the record is gone.
    shutil.rmtree(tmp_path / "pinned" / "refs")
    with person(monkeypatch, tmp_path, "alice"), \
            pytest.raises(IntegrityError, match=r"not the one this machine pinned.*project "
                                                r"trust lab"):
        _log_new(url, options, tmp_path / "pinned", tmp_path)
    _assert_nothing_new(backend)


def test_the_downgrade_through_the_cli_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        assert cli(capsys, "init", url)[0] == 0
        (tmp_path / "old.bin").write_bytes(b"before the attack")
        assert cli(capsys, "log", "--store", url, "--project", "lab", "data",
                   str(tmp_path / "old.bin"))[0] == 0
    with person(monkeypatch, tmp_path, "mallory"):
        open_backend(url).put("projects/lab/project", _attacker_record("lab", "public"))
    (tmp_path / "new.bin").write_bytes(NEW_CONTENT)
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "new-laptop"))
    with person(monkeypatch, tmp_path, "alice"):
        code, out, err = cli(capsys, "log", "--store", url, "--project", "lab", NEW_NAME,
                             str(tmp_path / "new.bin"))
        assert code == 5
        assert len(err.strip().splitlines()) == 1, err
        assert "public" in err
        assert "Traceback" not in err
        code, out, err = cli(capsys, "verify", "--store", url, "--project", "lab")
        assert code != 0
        assert "projects/lab/project" in out + err
    _assert_nothing_new(open_backend(url))


def test_a_non_member_cannot_write_to_a_public_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True).close()
        create_project("open-lab", url, visibility="public")
        (tmp_path / "a.txt").write_text("by alice")
        with artifactstore.open(url, project="open-lab", cache_dir=tmp_path / "a") as store:
            store.log_artifact(tmp_path / "a.txt", name="notes", type="text")
    before = dict(_every_object(open_backend(url)))
    (tmp_path / "new.bin").write_bytes(NEW_CONTENT)
    with person(monkeypatch, tmp_path, "carol") as carol:
        code, _out, err = cli(capsys, "log", "--store", url, "--project", "open-lab", NEW_NAME,
                             str(tmp_path / "new.bin"))
        assert code == 12
        assert "not a member" in err
        assert "project members add" in err
        # Readers need no membership.
        with artifactstore.open(url, project="open-lab", cache_dir=tmp_path / "c") as store:
            assert store.artifact("notes:v0").open("a.txt").read() == b"by alice"
    assert dict(_every_object(open_backend(url))) == before
    # Once added, the same identity writes.
    with person(monkeypatch, tmp_path, "alice"):
        add_member("open-lab", carol, url)
    with person(monkeypatch, tmp_path, "carol"):
        code, _, err = cli(capsys, "log", "--store", url, "--project", "open-lab", "mine",
                           str(tmp_path / "new.bin"))
        assert code == 0, err


# -- crash and race safety of the first write ---------------------------------------------

_CHILD = """
import sys
import artifactstore
import artifactstore.repository.opening
from artifactstore.backends.faults import FaultInjectingBackend

pattern, url, path = sys.argv[1:4]
real = artifactstore.repository.opening.open_backend_stack
artifactstore.repository.opening.open_backend_stack = lambda u, **o: FaultInjectingBackend(
    real(u, **o), kill_after=pattern)
with artifactstore.open(url, project="lab") as store:
    store.log_artifact(path, name="data", type="dataset")
"""


@pytest.mark.parametrize("crash_after", [
    r"projects/lab/project",  # the genesis: the only object of project creation
    r"objects/[0-9a-f]+/packs/.*",  # the first data after it
    r"projects/lab/artifacts/n-[0-9a-f]+/versions/0000000000",  # the commit point
])
def test_a_first_log_killed_after_any_write_is_finished_by_the_retry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        crash_after: str) -> None:
    url = str(tmp_path / "store")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.bin").write_bytes(os.urandom(100_000))
    with person(monkeypatch, tmp_path, "alice"):
        assert cli(capsys, "init", url)[0] == 0  # private by default
        env = {**os.environ, "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache")}
        killed = subprocess.run([sys.executable, "-c", _CHILD, crash_after, url, str(folder)],
                                env=env, capture_output=True, text=True, timeout=120)
        assert killed.returncode == -9, killed.stderr  # the crash happened where asked
        keys = set(open_backend(url).list(""))
        assert "projects/lab/project" in keys
        code, out, err = cli(capsys, "log", "--store", url, "--project", "lab", "data",
                             str(folder))
        assert code == 0, err
        code, out, err = cli(capsys, "verify", "--store", url, "--project", "lab")
        assert code == 0, out + err
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c2") as store:
            assert store.artifact("data:latest").open("a.bin").read() == \
                (folder / "a.bin").read_bytes()


def _first_writer(worker: int, barrier: Any, results: Any, url: str, config: str,
                  cache: str, folder: str) -> None:
    try:
        os.environ["ARTIFACTSTORE_CONFIG_DIR"] = config
        (Path(folder) / f"w{worker}.txt").write_text(f"worker {worker}")
        barrier.wait()
        with artifactstore.open(url, project="lab", cache_dir=f"{cache}-{worker}") as store:
            version = store.log_artifact(Path(folder) / f"w{worker}.txt", name=f"w{worker}",
                                         type="text")
        results.put((worker, version.ref, None))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put((worker, None, f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("private", [True, False])
def test_eight_first_writers_at_once_all_succeed_with_one_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        private: bool) -> None:
    url = str(tmp_path / "store")
    folder = tmp_path / "data"
    folder.mkdir()
    with person(monkeypatch, tmp_path, "alice"):  # one identity, made before the race
        assert cli(capsys, "init", url, *(() if private else ("--public",)))[0] == 0
    results = run_workers(_first_writer, (url, str(tmp_path / "person-alice"),
                                          str(tmp_path / "cache"), str(folder)))
    assert sorted(results.values()) == sorted(f"w{i}:v0" for i in range(8))
    backend = open_backend(url)
    assert [k for k in backend.list("projects/lab/") if not k.startswith(
        ("projects/lab/artifacts/", "projects/lab/journal/", "projects/lab/journal-head"))
    ] == ["projects/lab/project"]
    with person(monkeypatch, tmp_path, "alice"):
        report = verify_store(url, "lab", cache_dir=tmp_path / "verify")
        assert report.ok, report.damaged
        assert report.versions == 8
        info = ProjectKeys(backend, "lab", None).info()
        assert info is not None
        assert info.visibility == ("private" if private else "public")


# -- verify and audit name what is missing or planted -------------------------------------

def _team_project(url: str, layout: str, bob: str, tmp_path: Path) -> str:
    """Project 'lab' with member events 0-1, key epochs 0-1, slots for Alice and Bob."""
    artifactstore.open(url, create=True).close()
    if layout == "old":
        me = load_identity()
        create_old_layout(ProjectKeys(open_backend(url), "lab", me.signing_key), "private",
                          member_of(me))
    else:
        create_project("lab", url, visibility="private")
    add_member("lab", bob, url)  # member event 1 and Bob's slot in epoch 0
    (tmp_path / "f.txt").write_text("data")  # under epoch 0: readable whatever epoch 1 loses
    with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
        store.log_artifact(tmp_path / "f.txt", name="notes", type="text")
    rekey_project("lab", url)  # epoch 1 with slots for both
    return load_identity().public.fingerprint


@pytest.mark.parametrize("layout", ["genesis", "old"])
@pytest.mark.parametrize("lost", ["members/0000000001", "keys/0000000001/slots/BOB",
                                  "keys/0000000001/info", "members/0000000000"])
def test_verify_and_audit_name_a_deleted_project_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        layout: str, lost: str) -> None:
    if lost == "members/0000000000" and layout == "genesis":
        lost = "project"  # the genesis in the project record is member event 0
    url = str(tmp_path / "store")
    bob = identity_line(monkeypatch, tmp_path, "bob")
    with person(monkeypatch, tmp_path, "alice"):
        _team_project(url, layout, bob, tmp_path)
        code, out, err = cli(capsys, "verify", "--store", url, "--project", "lab")
        assert code == 0, out + err
        bob_fp = ProjectKeys(open_backend(url), "lab", None).members()[1].fingerprint
        key = f"projects/lab/{lost.replace('BOB', bob_fp)}"
        open_backend(url).delete(key)
        monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "other-machine"))
        code, report = cli_json(capsys, "verify", "--store", url, "--project", "lab")
        assert code == 5
        assert key in [d["object"] for d in report["damaged"]], report["damaged"]
        if lost == "members/0000000000":
            # Nobody is a member any more: key epochs cannot be judged, nothing opens.
            with pytest.raises(IntegrityError, match=r"member event 1 .* not signed"):
                artifactstore.open(url, project="lab", cache_dir=tmp_path / "c3")
            return
        if lost == "project":
            # The record is gone but its project's past is not: nobody may write (claim) it.
            with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c3") as store, \
                    pytest.raises(IntegrityError):
                store.log_artifact(tmp_path / "f.txt", name="claimed", type="text")
            return
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c3") as store:
            flags = {(f.code, f.subject) for f in store.audit("notes:v0").flags}
        assert ("project-record", key) in flags


def test_verify_names_a_planted_key_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True).close()
        create_project("lab", url, visibility="private")
        alice = member_of(load_identity())
    with person(monkeypatch, tmp_path, "mallory"):
        keys = ProjectKeys(open_backend(url), "lab", load_identity().signing_key)
        keys._write_epoch(1, os.urandom(32), [alice])  # an epoch whose key Mallory knows
    with person(monkeypatch, tmp_path, "alice"):
        code, report = cli_json(capsys, "verify", "--store", url, "--project", "lab")
    assert code == 5
    problems = {d["object"]: d["problem"] for d in report["damaged"]}
    assert "not signed by a member" in problems["projects/lab/keys/0000000001/info"]


# -- re-pinning after a deliberate change -------------------------------------------------

def test_project_trust_accepts_a_checked_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache"))
    with person(monkeypatch, tmp_path, "alice"):
        assert cli(capsys, "init", url)[0] == 0
        (tmp_path / "f.txt").write_text("one")
        assert cli(capsys, "log", "--store", url, "--project", "lab", "notes",
                   str(tmp_path / "f.txt"))[0] == 0
        rekey_project("lab", url)
        assert cli(capsys, "ls", "--store", url, "--project", "lab")[0] == 0  # sees epoch 1
        code, shown = cli_json(capsys, "project", "show", "lab", "--store", url)
        assert (shown["pinned"], shown["pin_matches"]) == (True, True)
        # The team restores the project's keys from a backup taken before the rekey.
        backend = open_backend(url)
        for key in list(backend.list("projects/lab/keys/0000000001/")):
            backend.delete(key)
        (tmp_path / "f.txt").write_text("three")
        code, _, err = cli(capsys, "log", "--store", url, "--project", "lab", "notes",
                           str(tmp_path / "f.txt"))
        assert code == 5
        assert "key epochs up to 0, 1 were seen" in err
        assert "artifactstore project trust lab" in err
        code, shown = cli_json(capsys, "project", "show", "lab", "--store", url)
        assert (shown["pinned"], shown["pin_matches"]) == (True, False)
        # A human checked: re-pin.
        code, trusted = cli_json(capsys, "project", "trust", "lab", "--store", url)
        assert code == 0
        assert (trusted["before"]["epoch"], trusted["pin"]["epoch"]) == (1, 0)
        assert trusted["changes"] == ["it shows key epochs up to 0, 1 were seen"]
        code, _, err = cli(capsys, "log", "--store", url, "--project", "lab", "notes",
                           str(tmp_path / "f.txt"))
        assert code == 0, err
        code, shown = cli_json(capsys, "project", "show", "lab", "--store", url)
        assert (shown["pinned"], shown["pin_matches"]) == (True, True)


def test_a_pin_is_private_to_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True, cache_dir=tmp_path / "c").close()
        create_project("lab", url, visibility="private")
        artifactstore.open(url, project="lab", cache_dir=tmp_path / "c").close()
    pins = list((tmp_path / "c" / "known").glob("*/lab/pin"))
    assert len(pins) == 1
    assert pins[0].stat().st_mode & 0o777 == 0o600
    assert pins[0].parent.parent.stat().st_mode & 0o777 == 0o700


def test_a_project_without_record_is_claimed_only_without_another_past(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    (tmp_path / "f.txt").write_text("legacy")
    with person(monkeypatch, tmp_path, "alice"):
        with artifactstore.open(url, create=True, cache_dir=tmp_path / "c") as store:
            store.log_artifact(tmp_path / "f.txt", name="old", type="text")
        backend = open_backend(url)
        # Made before project records: only its artifacts are there.
        backend.delete("projects/default/project")
        with artifactstore.open(url, cache_dir=tmp_path / "c2") as store:
            store.log_artifact(tmp_path / "f.txt", name="again", type="text")  # claims it
        info = ProjectKeys(backend, "default", None).info()
        assert info is not None
        assert info.visibility == "public"
        assert info.creator == member_of(load_identity())
        # A project whose record was deleted while member events remain is not claimed.
        create_project("lab", url, visibility="public")
        add_member("lab", identity_line(monkeypatch, tmp_path, "bob"), url)
        backend.delete("projects/lab/project")
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c3") as store, \
                pytest.raises(IntegrityError, match="record was deleted"):
            store.log_artifact(tmp_path / "f.txt", name="mine", type="text")
        assert not backend.exists("projects/lab/project")
