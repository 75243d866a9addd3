"""Record codecs (design §13.3): signatures bound to kind and key, encrypted refs with
name tags, and refusal without the key."""

from __future__ import annotations

import uuid

import pytest

from artifactstore.backends.memory import MemoryBackend
from artifactstore.core import encoding
from artifactstore.core.crypto import SigningKey, generate_key
from artifactstore.core.digest import Digest
from artifactstore.core.errors import AccessDeniedError, IntegrityError
from artifactstore.local.catalog import Catalog
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import Kind, seal
from artifactstore.records.codec import PLAIN, KeyRing, RecordCodec
from artifactstore.records.refs import NewVersion, Refs
from artifactstore.records.runs import RunLog, RunStart, new_run_id

SIGNER = SigningKey.generate()
RING = KeyRing({0: DomainKeys.from_epoch_key(bytes(range(32)))}, name_key=bytes(32))
DIGEST = Digest(bytes(range(32)))


def fresh_backend() -> MemoryBackend:
    return MemoryBackend(f"records-{uuid.uuid4().hex}")


def commit(refs: Refs, name: str = "secret-model") -> None:
    refs.commit_version(NewVersion(name, type="model", manifest=DIGEST, digest=DIGEST, size=1,
                                   files=1, metadata={"note": "confidential"}))


def test_signed_records_say_who_signed_them() -> None:
    refs = Refs(fresh_backend(), "p", RecordCodec(signer=SIGNER))
    commit(refs)
    refs.set_alias("secret-model", "production", 0)
    reader = Refs(refs._backend, "p")
    record = reader.version("secret-model", 0)
    assert record.signature.state == "valid"
    assert record.signature.signer == SIGNER.public_bytes
    (event,) = reader.alias_history("secret-model", "production")
    assert event.signature.signer == SIGNER.public_bytes


def test_unsigned_records_are_reported_as_such() -> None:
    refs = Refs(fresh_backend(), "p")
    commit(refs)
    assert refs.version("secret-model", 0).signature.state == "unsigned"


def test_a_signature_is_bound_to_kind_key_and_body() -> None:
    codec = RecordCodec(signer=SIGNER)
    data = codec.seal(Kind.VERSION, "projects/p/a", {"x": 1})
    assert codec.open(Kind.VERSION, "projects/p/a", data)[1].state == "valid"
    assert PLAIN.open(Kind.VERSION, "projects/p/b", data)[1].state == "invalid"
    # A forger who rewrites the body keeps the old signature: it no longer verifies.
    wrapper = encoding.unpack(data[8:])
    wrapper["body"] = encoding.pack({"x": 2})
    forged = seal(Kind.VERSION, encoding.pack(wrapper))
    body, signature = PLAIN.open(Kind.VERSION, "projects/p/a", forged)
    assert body == {"x": 2}
    assert signature.state == "invalid"


def test_private_refs_hide_names_and_contents() -> None:
    backend = fresh_backend()
    refs = Refs(backend, "p", RecordCodec(signer=SIGNER, ring=RING))
    commit(refs)
    commit(refs, "other-model")
    refs.set_alias("secret-model", "production", 0)
    log = RunLog(backend, "p", refs.codec)
    run_id = new_run_id()
    log.write_start(RunStart(project="p", run_id=run_id, name="secret-run", job_type="train",
                             tags=(), config={"lr": "confidential"}, started_at="2026-11-26",
                             by="alice@laptop", env={}, code=None, heartbeat=30.0))
    for key in backend.list(""):
        stored = backend.get(key)
        for needle in (b"secret", b"production", b"confidential", b"alice", DIGEST.raw):
            assert needle not in stored, key
            assert needle.decode(errors="ignore") not in key or needle == DIGEST.raw, key
    assert refs.artifacts() == ["other-model", "secret-model"]
    assert refs.aliases("secret-model") == {"production": 0}
    assert refs.resolve("secret-model", "production").number == 0
    assert log.read_start(run_id).config == {"lr": "confidential"}


def test_private_refs_need_the_key() -> None:
    backend = fresh_backend()
    commit(Refs(backend, "p", RecordCodec(ring=RING)))
    (key,) = [k for k in backend.list("") if "/versions/" in k and "/journal/" not in k]
    with pytest.raises(AccessDeniedError, match="is encrypted"):
        PLAIN.open(Kind.VERSION, key, backend.get(key))
    other = KeyRing({0: DomainKeys.from_epoch_key(generate_key())}, name_key=bytes(32))
    with pytest.raises(AccessDeniedError, match="members add"):
        RecordCodec(ring=other).open(Kind.VERSION, key, backend.get(key))
    # A plaintext record planted among encrypted ones is refused, not believed.
    backend.put(key, PLAIN.seal(Kind.VERSION, key, {"project": "p"}))
    with pytest.raises(IntegrityError, match="planted"):
        RecordCodec(ring=RING).open(Kind.VERSION, key, backend.get(key))


def test_swapped_private_records_are_detected() -> None:
    backend = fresh_backend()
    refs = Refs(backend, "p", RecordCodec(ring=RING))
    commit(refs)
    commit(refs, "other-model")
    a, b = sorted(k for k in backend.list("") if "/versions/" in k and "/journal/" not in k)
    data_a, data_b = backend.get(a), backend.get(b)
    backend.put(a, data_b)
    backend.put(b, data_a)
    fresh = Refs(backend, "p", RecordCodec(ring=RING))
    for name in ("secret-model", "other-model"):
        with pytest.raises(IntegrityError, match="failed authentication"):
            fresh.version(name, 0)


def test_the_catalog_syncs_a_private_project() -> None:
    backend = fresh_backend()
    codec = RecordCodec(signer=SIGNER, ring=RING)
    refs = Refs(backend, "p", codec)
    commit(refs)
    refs.set_alias("secret-model", "production", 0)
    catalog = Catalog(backend, "p", None, codec=codec)
    catalog.sync()
    assert [r.artifact for r, _ in catalog.versions()] == ["secret-model"]
    assert catalog.current_aliases() == {("secret-model", 0): ["production"]}
