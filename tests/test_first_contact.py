"""First contact lists only what can contradict the project record (issue 20, design §13.5).

A client that has never seen a project judges its record against the keys that could
contradict it: member events, key epochs, the recovery slot and the name tags. It lists
those prefixes, not the whole project (versions, runs, journal, bundles: the 93 pages a
first contact cost at 20,000 versions). Every contradiction it found from the whole
listing it still finds (the attacks themselves: tests/test_project_trust.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from test_privacy_acceptance import person

import artifactstore
from artifactstore.backends.memory import MemoryBackend
from artifactstore.core.errors import IntegrityError
from artifactstore.local.identity import load_identity
from artifactstore.records.projectcheck import contradictions, judged_listing
from artifactstore.records.projects import ProjectKeys
from artifactstore.repository.access import member_of, project_access
from artifactstore.testing.listings import ListingRecorder
from artifactstore.testing.servers import MotoS3Server

PLANTS = {
    "keys/0000000001/info": "says the project is public",
    "recovery": "says the project is public",
    f"artifacts/n-{'ab' * 16}/versions/0000000001": "says the project is public",
    "members/0000000000": "exists beside the genesis",
}


def _public(backend: MemoryBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with person(monkeypatch, tmp_path, "alice"):
        me = load_identity()
        ProjectKeys(backend, "lab", me.signing_key).create("public", member_of(me))
    for n in range(30):  # what a first contact must not list
        for part in (f"artifacts/data-{n}/versions/{n:010d}", f"journal/{n:020d}-x~y",
                     f"runs/r{n}/start", f"bundles/{n:020d}", f"lifecycle/{n:010d}"):
            backend.put(f"projects/lab/{part}", b"x")
    backend.put("projects/lab/artifacts/n-public-name/versions/0000000001", b"x")


def test_first_contact_lists_only_the_judged_prefixes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = ListingRecorder(f"first-{uuid.uuid4().hex}")
    _public(backend, tmp_path, monkeypatch)
    with person(monkeypatch, tmp_path, "alice"):
        backend.listed.clear()
        access = project_access(backend, "lab", private_by_default=False, may_create=False)
    assert access.codec.refusal is None  # a public artifact named "n-…" is no name tag
    judged = {"projects/lab/members/", "projects/lab/keys/", "projects/lab/recovery",
              "projects/lab/artifacts/n-"}
    assert judged <= set(backend.listed)
    assert set(backend.listed) <= judged  # never the project, its versions or journal


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_every_contradiction_is_still_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plant: str) -> None:
    backend = MemoryBackend(f"plant-{uuid.uuid4().hex}")
    _public(backend, tmp_path, monkeypatch)
    backend.put(f"projects/lab/{plant}", b"planted")
    info = ProjectKeys(backend, "lab", None).info()
    assert info is not None
    whole = contradictions("lab", info, backend.list("projects/lab/"))
    judged = contradictions("lab", info, judged_listing(backend, "lab"))
    assert [str(f) for f in judged] == [str(f) for f in whole]
    assert PLANTS[plant] in str(judged[0])
    with person(monkeypatch, tmp_path, "alice"):
        access = project_access(backend, "lab", private_by_default=False, may_create=False)
    assert isinstance(access.codec.refusal, IntegrityError)


def test_a_recordless_project_is_still_judged_on_its_artifacts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No record: the claim check still sees any artifact (private-by-default store)."""
    backend = MemoryBackend(f"none-{uuid.uuid4().hex}")
    backend.put("projects/lab/artifacts/data/versions/0000000001", b"x")
    with person(monkeypatch, tmp_path, "alice"), pytest.raises(IntegrityError,
                                                              match="record was deleted"):
        project_access(backend, "lab", private_by_default=True, may_create=True)


@pytest.mark.s3
def test_first_contact_on_s3_costs_four_listings_whatever_the_size(
        s3_server: MotoS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"s3://{s3_server.bucket}/first-{uuid.uuid4().hex[:12]}"
    options = s3_server.backend_options()
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True, **options).close()
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "writer",
                                **options) as store:
            for n in range(3):
                (tmp_path / "v.bin").write_bytes(b"v%d" % n)
                store.log_artifact(tmp_path / "v.bin", name=f"data-{n}", type="data")
        s3_server.reset_count()
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "fresh", **options):
            pass
    listed = [parse_qs(r.partition("?")[2]).get("prefix", [""])[0]
              for r in s3_server.requests if "list-type" in r]
    project = [p.partition("/projects/lab/")[2] for p in listed if "/projects/lab/" in p]
    assert sorted(project) == ["artifacts/n-", "keys/", "members/", "recovery"], listed


def test_a_concurrent_first_write_on_this_machine_is_not_a_vanished_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two processes of one user make a store's first write at once: B lists the project
    # and sees no record; A creates it and pins it in the machine's pin book; then B,
    # with its listing of a moment ago, must find A's project, not report "its project
    # record disappeared" (a CI failure of test_store_open's two-process race).
    from artifactstore.local.pins import PinBook

    backend = MemoryBackend(f"race-{uuid.uuid4().hex}")
    with person(monkeypatch, tmp_path, "alice"):
        seen_by_b = tuple(backend.list("projects/lab/"))
        assert seen_by_b == ()
        a = project_access(backend, "lab", private_by_default=True, may_create=True,
                           pins=PinBook(tmp_path / "pins", "lab", "store-1"))
        assert a.info is not None
        assert a.codec.refusal is None
        b = project_access(backend, "lab", private_by_default=True, may_create=True,
                           pins=PinBook(tmp_path / "pins", "lab", "store-1"),
                           seen_absent=seen_by_b)
    assert b.info == a.info
    assert b.codec.refusal is None
    # A record that is really gone after the pin is still refused.
    for key in list(backend.list("projects/lab/project")):
        backend.delete(key)
    with person(monkeypatch, tmp_path, "alice"), pytest.raises(
            IntegrityError, match="its project record disappeared"):
        project_access(backend, "lab", private_by_default=True, may_create=True,
                       pins=PinBook(tmp_path / "pins", "lab", "store-1"), seen_absent=())
