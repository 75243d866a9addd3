"""A writer lists ``index/`` once, not once per version (issue 20; design §15 "Index freshness").

The chain of quiet condemnation looks (objects/freshness.py) on a fake clock; a writer
of many versions listing ``index/`` a bounded number of times; and the cases where it
must list again: a condemnation, a gap of half the commit window (a whole gc cycle
fits in it: the swept blob is written anew, not deduplicated), a blob its index does
not hold at the commit check, another writer's blobs, a writer killed before it saved
its index cache.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import artifactstore
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.digest import Digest
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.freshness import IndexFreshness
from artifactstore.objects.gcrecords import condemnations
from artifactstore.objects.layout import PLAIN_DOMAIN, index_prefix
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.data import random_bytes
from artifactstore.testing.listings import ListingRecorder
from artifactstore.testing.stores import init_quick_store

SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
INDEX = index_prefix(PLAIN_DOMAIN)


CountingBackend = ListingRecorder


def _commit_one(objects: ObjectStore, data: bytes) -> list[Digest]:
    objects.begin_session()
    ref = objects.write_bytes(data)
    objects.flush()
    objects.prepare_commit()
    objects.commit_guard()
    objects.end_session()
    return [c.id for c in ref.chunks]


# -- the chain on a fake clock --------------------------------------------------------


def test_the_chain_trusts_after_a_quiet_look_then_a_listing() -> None:
    fresh = IndexFreshness(commit_window=120, relist_after=300)
    fresh.listed(0.0)  # a first listing with no look before it anchors nothing
    fresh.looked(1.0, quiet=True)
    assert not fresh.trusted()
    assert not fresh.may_skip(2.0)
    fresh.listed(2.0)  # a quiet look 1 s before a listing: the anchor
    assert fresh.trusted()
    assert fresh.may_skip(30.0)
    for t in (30.0, 80.0, 130.0, 180.0):  # looks less than W/2 = 60 s apart
        fresh.looked(t, quiet=True)
        assert fresh.trusted()
    assert not fresh.may_skip(302.0)  # the listing is older than relist_after


def test_a_condemnation_or_a_gap_of_half_the_window_breaks_the_chain() -> None:
    fresh = IndexFreshness(commit_window=120, relist_after=300)
    fresh.looked(0.0, quiet=True)
    fresh.listed(0.5)
    fresh.looked(10.0, quiet=False)  # gc condemned something
    assert not fresh.trusted()
    assert not fresh.may_skip(11.0)
    fresh.listed(11.0)  # the last look found condemnations: no anchor
    assert not fresh.trusted()
    fresh.looked(12.0, quiet=True)
    fresh.listed(12.5)
    assert fresh.trusted()
    assert not fresh.may_skip(72.0)  # 60 s after the last look: a sweep fits in the gap
    fresh.looked(72.0, quiet=True)
    assert not fresh.trusted()


# -- a writer -------------------------------------------------------------------------


def test_a_writer_of_many_versions_lists_the_index_a_bounded_number_of_times(
        tmp_path: Path) -> None:
    backend = CountingBackend(f"fresh-{uuid.uuid4().hex}")
    config = StoreConfig.new(chunker=SMALL, pack_target=64 << 10)
    with ObjectStore.open(backend, create=config, cache_dir=tmp_path / "cache") as objects:
        written = [_commit_one(objects, random_bytes(5_000, seed=n)) for n in range(40)]
        assert len(list(backend.list(INDEX))) == 40  # one index object per version
    index_listings = [p for p in backend.listed if p == INDEX]
    assert len(index_listings) <= 3, len(index_listings)  # was 2 per version (80)
    with ObjectStore.open(backend, cache_dir=tmp_path / "other") as reader:
        for n, chunks in enumerate(written):
            assert b"".join(reader.read_blob(c) for c in chunks) == random_bytes(5_000, seed=n)


def test_a_whole_gc_cycle_between_two_versions_is_seen(tmp_path: Path) -> None:
    """gc needs the commit window between condemning and sweeping: a writer's looks
    that far apart relist, so the blob gc swept is stored again, not deduplicated."""
    url = str(tmp_path / "store")
    init_quick_store(url)  # W = 0.5 s
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.bin").write_bytes(random_bytes(50_000, seed=1))
    (folder / "b.bin").write_bytes(random_bytes(50_000, seed=2))
    with artifactstore.open(url, cache_dir=tmp_path / "writer") as writer:
        writer.log_artifact(folder / "a.bin", name="a", type="dataset")
        writer.log_artifact(folder / "b.bin", name="b", type="dataset")  # the chain holds
        with artifactstore.open(url, cache_dir=tmp_path / "gc") as admin:
            admin.delete("a:v0", force=True)
            report = admin.gc(grace=0)  # condemns, waits W, sweeps
            assert report.bytes_freed > 0
        assert condemnations(writer.objects.backend, PLAIN_DOMAIN) == []
        writer.log_artifact(folder / "a.bin", name="a2", type="dataset")
        writer.artifact("a2").verify()
    with artifactstore.open(url, cache_dir=tmp_path / "fresh") as reader:
        reader.artifact("a2").verify()
        reader.artifact("b").verify()


def test_a_condemned_blob_is_written_anew_by_a_trusting_writer(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=120)  # the chain holds across the whole test
    for name in ("a.bin", "copy.bin", "warm.bin"):  # one content, no stat cache hits
        (tmp_path / name).write_bytes(random_bytes(50_000, seed=3))
    with artifactstore.open(url, cache_dir=tmp_path / "writer") as writer:
        writer.log_artifact(tmp_path / "a.bin", name="a", type="dataset")
        writer.log_artifact(tmp_path / "warm.bin", name="warm", type="dataset")
        with artifactstore.open(url, cache_dir=tmp_path / "gc") as admin:
            admin.delete("a:v0", force=True)
            admin.delete("warm:v0", force=True)
            admin.gc(grace=3600)  # condemns only
        doomed = {p for r in condemnations(writer.objects.backend, PLAIN_DOMAIN) for p in r.packs}
        assert doomed
        version = writer.log_artifact(tmp_path / "copy.bin", name="again", type="dataset")
        chunks = [c.id for entry in version.files() for c in getattr(entry, "chunks", ())]
        assert chunks
        for chunk in chunks:
            assert writer.objects.locate(chunk).pack not in doomed


def test_another_writers_blobs_are_duplicated_not_referenced_unseen(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=120)
    shared = tmp_path / "shared.bin"
    shared.write_bytes(random_bytes(80_000, seed=4))
    with artifactstore.open(url, cache_dir=tmp_path / "writer") as writer:
        writer.log_artifact(tmp_path / "shared.bin", name="first", type="dataset")
        other = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            import artifactstore
            with artifactstore.open({url!r}, cache_dir={str(tmp_path / 'other')!r}) as s:
                s.log_artifact({str(shared)!r}, name="theirs", type="dataset")
            """)], capture_output=True, text=True, timeout=120)
        assert other.returncode == 0, other.stderr
        shared.write_bytes(shared.read_bytes()[:40_000] + random_bytes(40_000, seed=5))
        writer.log_artifact(shared, name="mine", type="dataset")
        writer.artifact("mine").verify()
    with artifactstore.open(url, cache_dir=tmp_path / "fresh") as reader:
        for name in ("first", "theirs", "mine"):
            reader.artifact(name).verify()


def test_a_writer_killed_before_saving_its_index_cache_leaves_a_readable_store(
        tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url, commit_window=120)
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import os, pathlib
        import artifactstore
        s = artifactstore.open({url!r}, cache_dir={str(cache)!r})
        for n in range(4):
            p = pathlib.Path({str(tmp_path)!r}) / f"f{{n}}.bin"
            p.write_bytes(os.urandom(20_000) + bytes([n]))
            s.log_artifact(p, name=f"a{{n}}", type="dataset")
        os._exit(0)  # killed: no close, the index cache holds the first version only
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    with artifactstore.open(url, cache_dir=cache) as store:  # the same cache, reused
        for n in range(4):
            store.artifact(f"a{n}").verify()
        store.log_artifact(tmp_path / "f3.bin", name="again", type="dataset")
        assert store.objects.stats.packs_written == 0  # deduplicated: the rows were refetched
