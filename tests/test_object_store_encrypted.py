"""Encrypted key domains (design §13.3): keyed ids, no plaintext on the backend, tamper
and swap detection, no reading without the key, no plaintext planted in."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.crypto import generate_key
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import AccessDeniedError, IntegrityError
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import Kind, open_envelope, seal
from artifactstore.objects.index import decode_index
from artifactstore.objects.layout import index_prefix, pack_prefix, parse_id_key
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.data import random_bytes

SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
MARKER = b"MARKER-7f3a-do-not-leak"
KEYS = DomainKeys.from_epoch_key(bytes(range(32)))

OpenStore = Callable[..., ObjectStore]


class _OpenOptions(TypedDict, total=False):
    """The keywords of ObjectStore.open that the tests pass through open_store."""

    cache_dir: str | os.PathLike[str] | None
    concurrency: int


@pytest.fixture(params=["memory", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return open_backend(f"memory://encrypted-{request.node.name}")
    return open_backend(str(tmp_path / "store"))


@pytest.fixture
def open_store(tmp_path: Path) -> OpenStore:
    def _open(backend: Backend, keys: DomainKeys | None = KEYS,
              **kwargs: Unpack[_OpenOptions]) -> ObjectStore:
        kwargs.setdefault("cache_dir", tmp_path / f"cache-{id(keys)}")
        config = StoreConfig.new(chunker=SMALL, pack_target=64 << 10)
        return ObjectStore.open(backend, create=config, keys=keys, **kwargs)

    return _open


def secret_data() -> bytes:
    # Compressible text with the marker in every chunk, and random bytes.
    return (MARKER + b" lorem ipsum " * 300) * 20 + random_bytes(50_000, seed=3)


def all_objects(backend: Backend) -> dict[str, bytes]:
    return {key: backend.get(key) for key in backend.list("objects/")}


def test_round_trip_with_keyed_ids(backend: Backend, open_store: OpenStore) -> None:
    data = secret_data()
    with open_store(backend) as store:
        ref = store.write_bytes(data)
        tree = store.put_blob(Kind.TREE, b"node " + MARKER)
    assert ref.digest == hash_bytes(data)  # the file digest stays plain (inside manifests)
    first = data[:ref.chunks[0].length]
    assert ref.chunks[0].id == hash_bytes(first, key=KEYS.id_key)
    assert ref.chunks[0].id != hash_bytes(first)
    with open_store(backend) as store:
        assert store.read_file(ref) == data
        assert store.read_blob(tree) == b"node " + MARKER
        assert tree == hash_bytes(b"node " + MARKER, key=KEYS.id_key)
    assert all(key.startswith(f"objects/{KEYS.domain}/") for key in all_objects(backend))


def test_no_plaintext_marker_or_digest_reaches_the_backend(backend: Backend,
                                                           open_store: OpenStore) -> None:
    data = secret_data()
    with open_store(backend) as store:
        ref = store.write_bytes(data)
        store.put_blob(Kind.MANIFEST, MARKER * 3)
    needles = [MARKER, hash_bytes(data).raw, hash_bytes(data).hex.encode(),
               *(hash_bytes(data[:n]).raw for n in (1024, 4096))]
    for key, stored in all_objects(backend).items():
        for needle in needles:
            assert needle not in stored, key
    assert ref.chunks  # something was stored


def test_same_content_dedups_within_a_key_and_not_across_keys(
        backend: Backend, open_store: OpenStore) -> None:
    other = DomainKeys.from_epoch_key(generate_key())
    data = random_bytes(30_000, seed=9)
    with open_store(backend) as store:
        first = store.write_bytes(data)
    with open_store(backend) as store:
        again = store.write_bytes(data)
        assert store.stats.blobs_new == 0
    with open_store(backend, keys=other) as store:
        theirs = store.write_bytes(data)
        assert store.stats.blobs_new == len(theirs.chunks)
    assert first.chunks == again.chunks
    assert {c.id for c in first.chunks}.isdisjoint(c.id for c in theirs.chunks)


def test_every_byte_of_every_object_is_authenticated(backend: Backend,
                                                     open_store: OpenStore) -> None:
    with open_store(backend, concurrency=1) as store:
        store.put_blob(Kind.TREE, b"t" * 300)
    (pack_key,) = backend.list(pack_prefix(KEYS.domain))
    (idx_key,) = backend.list(index_prefix(KEYS.domain))
    pack_id = parse_id_key(pack_key)
    idx_id = parse_id_key(idx_key)
    assert pack_id is not None
    assert idx_id is not None
    pack, index = backend.get(pack_key), backend.get(idx_key)
    with open_store(backend) as store:
        for pos in range(len(pack)):
            backend.put(pack_key, flipped(pack, pos))
            with pytest.raises(IntegrityError):
                store.verify_pack(pack_id)
    for pos in range(len(index)):
        with pytest.raises(IntegrityError):
            decode_index(idx_id, flipped(index, pos), KEYS)


def flipped(data: bytes, pos: int) -> bytes:
    damaged = bytearray(data)
    damaged[pos] ^= 0x01
    return bytes(damaged)


def test_swapped_blobs_fail_to_open(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend, concurrency=1) as store:
        a = store.put_blob(Kind.TREE, b"a" * 500)
        b = store.put_blob(Kind.TREE, b"b" * 500)
        la, lb = store.locate(a), store.locate(b)
    assert la.length == lb.length
    (key,) = backend.list(pack_prefix(KEYS.domain))
    raw = bytearray(backend.get(key))
    blob_a = raw[la.offset:la.offset + la.length]
    raw[la.offset:la.offset + la.length] = raw[lb.offset:lb.offset + lb.length]
    raw[lb.offset:lb.offset + lb.length] = blob_a
    backend.put(key, bytes(raw))
    with open_store(backend) as store:
        for blob in (a, b):
            with pytest.raises(IntegrityError, match="failed authentication"):
                store.read_blob(blob)


def test_reading_needs_the_key(backend: Backend, open_store: OpenStore) -> None:
    with open_store(backend, concurrency=1) as store:
        blob = store.put_blob(Kind.TREE, b"secret tree")
        location = store.locate(blob)
    (key,) = backend.list(pack_prefix(KEYS.domain))
    envelope = backend.get_range(key, location.offset, location.length)
    with pytest.raises(AccessDeniedError, match="is encrypted"):
        open_envelope(envelope, expected_kind=Kind.TREE, raw_length=None, what="blob")
    other = DomainKeys.from_epoch_key(generate_key())
    record = seal(Kind.VERSION, b"record", keys=KEYS, binding=b"projects/p/a")
    with pytest.raises(AccessDeniedError, match="another key"):
        open_envelope(record, expected_kind=Kind.VERSION, raw_length=None, what="ref",
                      keys=other, binding=b"projects/p/a")


def test_planted_plaintext_is_refused() -> None:
    planted = seal(Kind.VERSION, b"a forged record")
    with pytest.raises(IntegrityError, match="planted"):
        open_envelope(planted, expected_kind=Kind.VERSION, raw_length=None, what="ref",
                      keys=KEYS, binding=b"projects/p/x")
    moved = seal(Kind.VERSION, b"record", keys=KEYS, binding=b"projects/p/a")
    assert open_envelope(moved, expected_kind=Kind.VERSION, raw_length=None, what="ref",
                         keys=KEYS, binding=b"projects/p/a")[1] == b"record"
    with pytest.raises(IntegrityError, match="failed authentication"):
        open_envelope(moved, expected_kind=Kind.VERSION, raw_length=None, what="ref",
                      keys=KEYS, binding=b"projects/p/b")


def test_the_plain_domain_is_unchanged(backend: Backend, open_store: OpenStore) -> None:
    data = random_bytes(20_000, seed=1)
    with open_store(backend, keys=None) as store:
        ref = store.write_bytes(data)
    assert ref.chunks[0].id == hash_bytes(data[:ref.chunks[0].length])
    assert list(backend.list(pack_prefix("plain")))
