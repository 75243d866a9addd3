"""Issue 5 acceptance: private projects leak nothing to the backend, open only for members,
detect every flipped byte and swapped object, and audits judge signatures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import blake3
import pytest

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.core import encoding
from artifactstore.core.errors import (
    AccessDeniedError,
    ArtifactStoreError,
    IntegrityError,
    ReadOnlyError,
)
from artifactstore.local.identity import load_identity, load_or_create_identity
from artifactstore.maintenance.projects import (
    add_member,
    create_project,
    rekey_project,
    remove_member,
)
from artifactstore.maintenance.verify import verify_objects
from artifactstore.objects.envelope import Kind, seal
from artifactstore.records.codec import RecordCodec
from artifactstore.records.versions import version_key
from artifactstore.testing.servers import MotoS3Server

MARKER = "zebra7marker"


@contextmanager
def person(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Iterator[str]:
    """Act as ``name``: their own config folder, so their own identity; yields its line."""
    folder = tmp_path / f"person-{name}"
    with monkeypatch.context() as m:
        m.setenv("ARTIFACTSTORE_CONFIG_DIR", str(folder))
        yield load_or_create_identity().public.to_line()


def identity_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> str:
    """Make ``name``'s identity (their own config folder) and return its public line."""
    with person(monkeypatch, tmp_path, name) as line:
        return line


def new_project(url: str, name: str, visibility: str = "private") -> None:
    """Make the store at ``url`` (if needed) and project ``name``, as the current person."""
    artifactstore.open(url, create=True).close()
    create_project(name, url, visibility=visibility)


def secret_folder(tmp_path: Path) -> tuple[Path, list[bytes]]:
    folder = tmp_path / f"data-{MARKER}"
    (folder / f"sub-{MARKER}").mkdir(parents=True)
    contents = [f"rows about {MARKER}\n".encode() * 500, os.urandom(200_000) + MARKER.encode()]
    (folder / f"{MARKER}.csv").write_bytes(contents[0])
    (folder / f"sub-{MARKER}" / "weights.bin").write_bytes(contents[1])
    return folder, contents


def log_secrets(store: artifactstore.Store, tmp_path: Path) -> list[bytes]:
    folder, contents = secret_folder(tmp_path)
    with store.run(job_type=f"train-{MARKER}", config={"note": MARKER},
                   capture_code=False) as run:
        run.log({f"loss-{MARKER}": 0.5})
        run.log_artifact(folder, name=f"secret-{MARKER}", type="dataset",
                         metadata={"owner": MARKER}, aliases=[f"prod-{MARKER}"])
    return contents


def assert_nothing_leaks(backend_url: str, options: dict[str, Any],
                         contents: list[bytes]) -> None:
    backend = open_backend(backend_url, **options)
    needles = [MARKER.encode(), b"secret-" + MARKER.encode()]
    for data in contents:
        digest = blake3.blake3(data).digest()
        needles += [digest, digest.hex().encode()]
    keys = list(backend.list(""))
    assert len(keys) > 8
    for key in keys:
        assert MARKER not in key, key
        stored = backend.get(key)
        for needle in needles:
            assert needle not in stored, (key, needle[:20])
    backend.close()


def test_a_private_project_leaks_nothing_locally(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        new_project(url, "lab")
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
            assert store.refs.codec.encrypted
            contents = log_secrets(store, tmp_path)
            back = store.artifact(f"secret-{MARKER}:prod-{MARKER}")
            out = back.download(tmp_path / "out")
            assert (Path(out) / f"{MARKER}.csv").read_bytes() == contents[0]
    assert_nothing_leaks(url, {}, contents)


@pytest.mark.s3
def test_a_private_project_leaks_nothing_on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               s3_server: MotoS3Server) -> None:
    url = f"s3://{s3_server.bucket}/private-{os.urandom(4).hex()}"
    options = s3_server.backend_options()
    with person(monkeypatch, tmp_path, "alice"):
        artifactstore.open(url, create=True, **options).close()
        create_project("lab", url, **options)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c", **options) as store:
            contents = log_secrets(store, tmp_path)
            assert store.artifact(f"secret-{MARKER}").files()
    assert_nothing_leaks(url, options, contents)


def test_only_members_read_and_removal_locks_out_new_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    bob = identity_line(monkeypatch, tmp_path, "bob")
    with person(monkeypatch, tmp_path, "alice"):
        new_project(url, "lab")
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "a") as store:
            (tmp_path / "v0.txt").write_text("before")
            store.log_artifact(tmp_path / "v0.txt", name="notes", type="text")
    with person(monkeypatch, tmp_path, "bob"), \
            pytest.raises(AccessDeniedError, match="members add"):
        artifactstore.open(url, project="lab", cache_dir=tmp_path / "b1")
    with person(monkeypatch, tmp_path, "alice"):
        add_member("lab", bob, url)
    with person(monkeypatch, tmp_path, "bob"), \
            artifactstore.open(url, project="lab", cache_dir=tmp_path / "b2") as store:
        assert store.artifact("notes:v0").open("v0.txt").read() == b"before"
    with person(monkeypatch, tmp_path, "alice"):
        remove_member("lab", bob, url)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "a2") as store:
            (tmp_path / "v0.txt").write_text("after")
            store.log_artifact(tmp_path / "v0.txt", name="notes", type="text")
            assert store.artifact("notes:v1").open("v0.txt").read() == b"after"
    with person(monkeypatch, tmp_path, "bob"), \
            artifactstore.open(url, project="lab", cache_dir=tmp_path / "b3") as store:
        # Rotation does not take back epoch 0, which Bob held; it keeps him out of epoch 1.
        assert store.artifact("notes:v0").open("v0.txt").read() == b"before"
        with pytest.raises(AccessDeniedError):
            store.artifact("notes:v1").files()
        # Nor can Bob write under the old key any more (new data would reach old holders).
        with pytest.raises(AccessDeniedError, match="removed"):
            store.log_artifact(tmp_path / "v0.txt", name="bobs", type="text")


def read_everything(url: str, cache: Path, out: Path) -> None:
    """What readers do: open, sync, download, read runs; and 'verify' (whole packs)."""
    with artifactstore.open(url, project="lab", cache_dir=cache) as store:
        report = verify_objects(store.objects)
        if not report.ok:
            raise IntegrityError("; ".join(report.damaged))
        store.sync()
        version = store.artifact(f"secret-{MARKER}:prod-{MARKER}")
        version.download(out)
        for run in store.runs(sync=True):
            list(store.run_history(run.run_id))


def test_every_stored_object_of_a_private_project_is_authenticated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    bob = identity_line(monkeypatch, tmp_path, "bob")
    with person(monkeypatch, tmp_path, "alice"):
        new_project(url, "lab")
        # a member event, a key epoch and slots as objects (epoch 0 is in the genesis)
        add_member("lab", bob, url)
        rekey_project("lab", url)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
            log_secrets(store, tmp_path)
        read_everything(url, tmp_path / "c0", tmp_path / "o0")
        backend = open_backend(url)
        me = load_identity().public.fingerprint  # Bob's slots are Bob's to read
        keys = [k for k in backend.list("")
                if k != "config" and not k.startswith("projects/default/")
                and ("/slots/" not in k or k.endswith(me))
                # Journal entries are empty hints whose bytes nobody reads, and the head
                # is a random change token only compared (design §12.8).
                and "/journal/" not in k and not k.endswith("/journal-head")]
        kinds_seen: set[int] = set()
        for n, key in enumerate(keys):
            original = backend.get(key)
            kinds_seen.add(original[5] if original[:4] == b"ASE1" else -1)
            for where in (5, len(original) // 2, len(original) - 1):
                damaged = bytearray(original)
                damaged[where] ^= 0x10
                backend.put(key, bytes(damaged))
                with pytest.raises(ArtifactStoreError):
                    read_everything(url, tmp_path / f"c{n}-{where}", tmp_path / f"o{n}-{where}")
            backend.put(key, original)
    assert {int(k) for k in (Kind.RUN, Kind.RUN_EVENT, Kind.RUN_METRICS, Kind.VERSION,
                             Kind.ALIAS_EVENT, Kind.PROJECT, Kind.MEMBER_EVENT, Kind.KEY_EPOCH,
                             Kind.KEY_SLOT, Kind.INDEX)} <= kinds_seen


def test_swapped_version_records_are_detected(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        new_project(url, "lab")
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
            for text in ("one", "two"):
                (tmp_path / "f.txt").write_text(text)
                store.log_artifact(tmp_path / "f.txt", name="notes", type="text")
        backend = open_backend(url)
        v0, v1 = sorted(k for k in backend.list("") if "/versions/" in k)
        a, b = backend.get(v0), backend.get(v1)
        backend.put(v0, b)
        backend.put(v1, a)
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c2") as store:
            for ref in ("notes:v0", "notes:v1"):
                with pytest.raises(ArtifactStoreError, match="failed authentication"):
                    store.artifact(ref)


def test_audit_flags_forged_and_outsider_signatures(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        new_project(url, "open-lab", "public")
        with artifactstore.open(url, project="open-lab", cache_dir=tmp_path / "c") as store:
            (tmp_path / "f.txt").write_text("data")
            store.log_artifact(tmp_path / "f.txt", name="notes", type="text")
            report = store.audit("notes:v0")
            assert report.ok, report.flags
            assert report.version["signed_by"] == store.signers()[
                store.refs.codec.signer.public_bytes]  # type: ignore[union-attr]
    # Mallory can write to the bucket but is not a member: the client refuses to write
    # for her, so she plants a record signed by her own key herself.
    with person(monkeypatch, tmp_path, "mallory"), \
            artifactstore.open(url, project="open-lab", cache_dir=tmp_path / "m") as store:
        (tmp_path / "f.txt").write_text("planted")
        with pytest.raises(AccessDeniedError, match="not a member"):
            store.log_artifact(tmp_path / "f.txt", name="notes", type="text")
    backend = open_backend(url)
    body = encoding.unpack(encoding.unpack(
        backend.get(version_key("open-lab", "notes", 0))[8:])["body"])
    body["number"] = 1
    with person(monkeypatch, tmp_path, "mallory"):
        v1 = version_key("open-lab", "notes", 1)
        backend.put(v1, RecordCodec(signer=load_identity().signing_key).seal(
            Kind.VERSION, v1, body))
    with person(monkeypatch, tmp_path, "mallory"), \
            artifactstore.open(url, project="open-lab", cache_dir=tmp_path / "m2") as store:
        flags = {(f.code, f.subject) for f in store.audit("notes:v1").flags}
        assert ("signer-not-member", "notes:v1") in flags
    # Forge: keep Alice's signature, change the body of v0.
    backend = open_backend(url)
    key = version_key("open-lab", "notes", 0)
    wrapper = encoding.unpack(backend.get(key)[8:])
    body = encoding.unpack(wrapper["body"])
    body["description"] = "forged"
    wrapper["body"] = encoding.pack(body)
    backend.put(key, seal(Kind.VERSION, encoding.pack(wrapper)))
    with person(monkeypatch, tmp_path, "alice"), \
            artifactstore.open(url, project="open-lab", cache_dir=tmp_path / "c3") as store:
        flags = {(f.code, f.subject) for f in store.audit("notes:v0").flags}
        assert ("bad-signature", "notes:v0") in flags


def test_private_projects_do_not_share_blobs_public_ones_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "store")
    data = os.urandom(300_000)
    (tmp_path / "big.bin").write_bytes(data)
    with person(monkeypatch, tmp_path, "alice"):
        for name, visibility in (("priv-a", "private"), ("priv-b", "private"),
                                 ("pub-a", "public"), ("pub-b", "public")):
            new_project(url, name, visibility)
            with artifactstore.open(url, project=name, cache_dir=tmp_path / name) as store:
                store.log_artifact(tmp_path / "big.bin", name="model", type="model")

    def stored_bytes(domain_filter: str) -> int:
        return sum(p.stat().st_size for p in (tmp_path / "store" / "objects").rglob("*")
                   if p.is_file() and "/packs/" in p.as_posix()
                   and domain_filter in p.relative_to(tmp_path / "store").parts[1])

    plain = stored_bytes("plain")
    assert len(data) < plain < 1.2 * len(data)  # the two public projects: one copy
    encrypted = sum(p.stat().st_size for p in (tmp_path / "store" / "objects").rglob("*")
                    if p.is_file() and "/packs/" in p.as_posix()) - plain
    assert encrypted > 2 * len(data)  # the two private projects: one copy each


def test_a_public_project_reads_over_http_read_only(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from artifactstore.testing.webserver import static_web_server

    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        new_project(url, "open-lab", "public")
        with artifactstore.open(url, project="open-lab", cache_dir=tmp_path / "c") as store:
            (tmp_path / "f.txt").write_text("for everyone")
            store.log_artifact(tmp_path / "f.txt", name="notes", type="text")
    # A reader with no identity, through a web server with directory indexes (loopback
    # http here; https:// in real use).
    with person(monkeypatch, tmp_path, "anyone"), \
            static_web_server(tmp_path / "store", listings=True) as base, \
            artifactstore.open(base, project="open-lab", cache_dir=tmp_path / "r") as store:
        version = store.artifact("notes:latest")
        assert version.open("f.txt").read() == b"for everyone"
        assert version.record.signature.state == "valid"
        # Read-only, and not a member either (only members write): either refusal stands.
        with pytest.raises((ReadOnlyError, AccessDeniedError), match=r"read-only|not a member"):
            store.log_artifact(tmp_path / "f.txt", name="other", type="text")
        with pytest.raises((ReadOnlyError, AccessDeniedError), match=r"read-only|not a member"):
            store.set_alias("notes:latest", "mine")


def test_verify_reads_the_key_domains_a_member_holds(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from artifactstore.maintenance.verify import verify_store
    from artifactstore.objects.layout import pack_prefix

    url = str(tmp_path / "store")
    with person(monkeypatch, tmp_path, "alice"):
        new_project(url, "lab")
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c") as store:
            log_secrets(store, tmp_path)
            domain = store.objects.domain
        report = verify_store(url, "lab")
        assert report.ok
        assert domain in report.domains
        assert report.domains[domain].blobs_checked > 0
        assert report.skipped_domains == []
    with person(monkeypatch, tmp_path, "outsider"):
        report = verify_store(url, "lab")  # not a member: plain domain only, the rest named
        assert report.ok
        assert report.skipped_domains == [domain]
    backend = open_backend(url)
    (pack,) = backend.list(pack_prefix(domain))
    damaged = bytearray(backend.get(pack))
    damaged[100] ^= 0x01
    backend.put(pack, bytes(damaged))
    with person(monkeypatch, tmp_path, "alice"):
        report = verify_store(url, "lab")
        assert not report.ok
        assert any(pack in d for d in report.damaged)
