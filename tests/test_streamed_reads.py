"""Streamed range reads of remote packs (``backends.base.iter_range``,
``objects.streamedread``): the same one request per read, a MiB at a time, breaks and
truncations handled, an early stop that does not hang."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.backends import open_backend, open_backend_stack
from artifactstore.backends.base import Backend, iter_range
from artifactstore.backends.retry import RetryingBackend
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import IntegrityError
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.layout import PLAIN_DOMAIN, pack_prefix
from artifactstore.objects.store import ObjectStore
from artifactstore.objects.streamedread import StreamedRead
from artifactstore.testing.data import random_bytes
from artifactstore.testing.servers import MotoS3Server


def _s3(s3_server: MotoS3Server) -> Backend:
    url = f"s3://{s3_server.bucket}/stream-{os.urandom(4).hex()}"
    return open_backend_stack(url, **s3_server.backend_options())


def test_an_s3_range_comes_in_pieces_of_a_mib_from_one_request(
        s3_server: MotoS3Server) -> None:
    backend = _s3(s3_server)
    data = random_bytes(3 << 20, seed=1)
    backend.put("packs/a", data)
    s3_server.reset_count()
    pieces = list(iter_range(backend, "packs/a", 1000, len(data) - 2000))
    assert s3_server.request_count == 1, s3_server.requests
    assert b"".join(pieces) == data[1000:-1000]
    assert len(pieces) >= 3
    assert max(len(p) for p in pieces) <= 1 << 20
    # an empty range, and one past the end, are get_range's answers
    assert b"".join(iter_range(backend, "packs/a", 0, 0)) == b""
    assert b"".join(iter_range(backend, "packs/a", len(data) + 10, 5)) == b""
    backend.close()


def test_a_stream_stopped_early_closes_its_response(s3_server: MotoS3Server) -> None:
    backend = _s3(s3_server)
    backend.put("packs/b", random_bytes(3 << 20, seed=2))
    pieces = iter_range(backend, "packs/b", 0, 3 << 20)
    assert len(next(pieces)) == 1 << 20
    pieces.close()  # type: ignore[attr-defined]
    # the connection went back (or was dropped): the next read works
    assert backend.get_range("packs/b", 0, 10) == random_bytes(3 << 20, seed=2)[:10]
    backend.close()


class Breaking(RetryingBackend):
    """A backend whose streams stop after ``after`` bytes (a broken connection)."""

    def __init__(self, inner: Backend, after: int) -> None:
        super().__init__(inner)
        self.after = after
        self.ranges: list[tuple[int, int]] = []

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        data = self._inner.get_range(key, start, length)
        yield data[: self.after]

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.ranges.append((start, length))
        return super().get_range(key, start, length)


def test_a_broken_stream_is_finished_with_one_range_read() -> None:
    inner = open_backend(f"memory://stream-{os.urandom(4).hex()}")
    data = random_bytes(200_000, seed=3)
    inner.put("pack", data)
    spans = [(0, 50_000), (50_000, 70_000), (120_000, 80_000)]
    backend = Breaking(inner, after=60_000)
    with ThreadPoolExecutor(2) as pool:
        got = list(StreamedRead(backend, "pack", spans, pool).blobs())
    assert got == [data[o:o + n] for o, n in spans]
    assert backend.ranges == [(50_000, 150_000)]  # from the first blob not handed over


def test_a_truncated_pack_gives_short_bytes_and_the_store_reports_it() -> None:
    inner = open_backend(f"memory://stream-{os.urandom(4).hex()}")
    inner.put("pack", b"x" * 1000)
    with ThreadPoolExecutor(2) as pool:
        got = list(StreamedRead(inner, "pack", [(0, 600), (600, 600)], pool).blobs())
    assert got == [b"x" * 600, b"x" * 400]


def test_a_consumer_that_stops_early_does_not_hang_the_reader() -> None:
    inner = open_backend(f"memory://stream-{os.urandom(4).hex()}")
    inner.put("pack", bytes(64 << 20))
    spans = [(i << 20, 1 << 20) for i in range(64)]
    pool = ThreadPoolExecutor(1)
    read = StreamedRead(inner, "pack", spans, pool)
    blobs = read.blobs()
    assert next(blobs) == bytes(1 << 20)
    read.cancel()
    pool.shutdown(wait=True)  # returns: the producer saw the cancel on its full queue


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "encrypted"])
def test_an_s3_store_reads_files_back_through_streams(
        s3_server: MotoS3Server, tmp_path: Path, keyed: bool) -> None:
    from artifactstore.objects.domainkeys import DomainKeys

    keys = DomainKeys.from_epoch_key(bytes(range(32))) if keyed else None
    config = StoreConfig.new(chunker=ChunkerParams(min_size=1024, avg_size=4096,
                                                   max_size=16384), pack_target=1 << 20)
    backend = _s3(s3_server)
    files = [random_bytes(n, seed=10 + i) for i, n in enumerate([3_000_000, 10, 700_000])]
    with ObjectStore.open(backend, create=config, keys=keys, cache_dir=tmp_path) as store:
        refs = [store.write_bytes(f) for f in files]
    with ObjectStore.open(backend, keys=keys, cache_dir=tmp_path) as store:
        got = [b"".join(blocks) for blocks in store.iter_files(refs, check=True)]
        assert got == files
        # a reader abandoned in the middle of a file leaves the store usable
        first = next(iter(store.iter_files(refs, check=True)))
        next(first)
        del first
        assert store.read_file(refs[1]) == files[1]
    backend.close()


def test_damage_in_a_streamed_pack_is_reported(s3_server: MotoS3Server, tmp_path: Path) -> None:
    backend = _s3(s3_server)
    with ObjectStore.open(backend, create=StoreConfig.new(), cache_dir=tmp_path) as store:
        ref = store.write_bytes(random_bytes(200_000, seed=5))
    (key,) = backend.list(pack_prefix(PLAIN_DOMAIN))
    data = bytearray(backend.get(key))
    data[100] ^= 1
    backend.put(key, bytes(data))
    with ObjectStore.open(backend, cache_dir=tmp_path) as store, \
            pytest.raises(IntegrityError):
        b"".join(store.iter_file(ref))
    backend.close()


class Pieces(RetryingBackend):
    """Streams cut into pieces of the sizes given, in turn."""

    def __init__(self, inner: Backend, sizes: list[int]) -> None:
        super().__init__(inner)
        self.sizes = sizes

    def iter_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        data = self._inner.get_range(key, start, length)
        at, turn = 0, 0
        while at < len(data):
            size = self.sizes[turn % len(self.sizes)]
            yield data[at:at + size]
            at, turn = at + size, turn + 1


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 300), min_size=1, max_size=12),
       gaps=st.lists(st.integers(0, 40), min_size=12, max_size=12),
       sizes=st.lists(st.integers(1, 500), min_size=1, max_size=4))
def test_blobs_are_cut_out_of_any_pieces(lengths: list[int], gaps: list[int],
                                         sizes: list[int]) -> None:
    """Whatever the pieces (smaller than a blob, spanning several, gaps between
    blobs), every span's bytes come out in order, views or joined."""
    inner = open_backend(f"memory://stream-{os.urandom(4).hex()}")
    spans, at = [], 0
    for length, gap in zip(lengths, gaps, strict=False):
        at += gap
        spans.append((at, length))
        at += length
    data = random_bytes(at + 5, seed=len(lengths))
    inner.put("pack", data)
    with ThreadPoolExecutor(1) as pool:
        got = [bytes(b) for b in StreamedRead(Pieces(inner, sizes), "pack", spans, pool).blobs()]
    assert got == [data[o:o + n] for o, n in spans]
