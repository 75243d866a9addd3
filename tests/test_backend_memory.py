"""Memory backend: the conformance suite plus the shared-registry behaviour."""

from __future__ import annotations

import pytest

from artifactstore.backends import MemoryBackend, drop_memory_store, open_backend
from artifactstore.testing import BackendConformance, BackendSpec


class TestMemoryBackend(BackendConformance):
    """Memory stores live in one process, so the put-if-absent race uses 8
    threads instead of 8 processes (a spawned process would see an empty
    store of its own)."""

    race_uses_processes = False

    @pytest.fixture
    def backend_spec(self, memory_spec: BackendSpec) -> BackendSpec:
        return memory_spec


def test_same_name_shares_objects() -> None:
    first = open_backend("memory://shared-test")
    second = open_backend("memory://shared-test")
    other = MemoryBackend("another-test")
    try:
        first.put("k", b"v")
        assert second.get("k") == b"v"
        assert not other.exists("k")
        assert first.url == "memory://shared-test"
    finally:
        drop_memory_store("shared-test")
        drop_memory_store("another-test")
    assert not open_backend("memory://shared-test").exists("k")
    drop_memory_store("shared-test")


def test_stores_a_copy_of_mutable_data() -> None:
    backend = MemoryBackend("copy-test")
    try:
        data = bytearray(b"abc")
        backend.put("k", data)  # type: ignore[arg-type]
        data[0] = ord("z")
        assert backend.get("k") == b"abc"
    finally:
        drop_memory_store("copy-test")
