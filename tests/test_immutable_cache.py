"""The local copy of create-only objects (backends/immutable_cache.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from artifactstore.backends import Backend, open_backend
from artifactstore.backends.immutable_cache import ImmutableCacheBackend


def _cached(tmp_path: Path, usable: Callable[[str, bytes], bool] | None = None
            ) -> tuple[ImmutableCacheBackend, Backend]:
    inner = open_backend(str(tmp_path / "store"))
    fixed = ImmutableCacheBackend(inner, tmp_path / "copies",
                                  lambda key: key.startswith("fixed/"), usable)
    return fixed, inner


def test_a_create_only_object_is_read_once(tmp_path: Path) -> None:
    cached, inner = _cached(tmp_path)
    inner.put("fixed/a", b"one")
    inner.put("other/b", b"two")
    assert cached.get("fixed/a") == b"one"
    assert cached.get("other/b") == b"two"
    inner.put("fixed/a", b"changed behind the cache")
    inner.put("other/b", b"changed")
    assert cached.get("fixed/a") == b"one"  # the local copy
    assert cached.get("other/b") == b"changed"  # never copied
    assert (tmp_path / "copies" / "fixed" / "a").read_bytes() == b"one"


def test_a_copy_the_check_refuses_is_read_again(tmp_path: Path) -> None:
    cached, inner = _cached(tmp_path, lambda key, data: data.startswith(b"current"))
    inner.put("fixed/a", b"old epoch")
    assert cached.get("fixed/a") == b"old epoch"
    inner.put("fixed/a", b"current epoch")
    assert cached.get("fixed/a") == b"current epoch"  # the copy said "old": read again
    inner.put("fixed/a", b"rewritten behind the cache")
    assert cached.get("fixed/a") == b"current epoch"


def test_writes_through_the_cache_drop_the_copy(tmp_path: Path) -> None:
    cached, inner = _cached(tmp_path)
    assert cached.put_if_absent("fixed/a", b"first")
    assert (tmp_path / "copies" / "fixed" / "a").read_bytes() == b"first"
    cached.put("fixed/a", b"second")
    assert cached.get("fixed/a") == b"second"
    cached.put_parts("fixed/a", [b"th", b"ird"])
    assert cached.get("fixed/a") == b"third"
    cached.delete("fixed/a")
    assert not (tmp_path / "copies" / "fixed" / "a").exists()
    assert not inner.exists("fixed/a")
