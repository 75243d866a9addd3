"""Pack building and trailers (design §5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import IntegrityError
from artifactstore.objects.envelope import Kind, open_envelope, seal_parts
from artifactstore.objects.packs import (
    RECORD,
    BlobEntry,
    PackBuilder,
    assemble,
    check_pack,
    checked_records,
    decode_records,
    encode_records,
    read_trailer,
)


def _pack(blobs: list[bytes]) -> tuple[bytes, list[bytes]]:
    builder = PackBuilder()
    for b in blobs:
        builder.add(hash_bytes(b), Kind.CHUNK, *seal_parts(Kind.CHUNK, b, None), len(b))
    pack = assemble(builder.take())
    assert check_pack(pack.data, pack.id, what="p") == pack.entries
    assert len(builder) == 0
    assert builder.size == 0
    return pack.data, blobs


def test_trailer_lists_every_blob_at_its_offset() -> None:
    data, blobs = _pack([b"one", b"two" * 100, b""[:0] + b"three"])
    entries = read_trailer(data, what="p")
    assert [e.id for e in entries] == [hash_bytes(b) for b in blobs]
    for e, b in zip(entries, blobs, strict=True):
        _, plain = open_envelope(data[e.offset : e.offset + e.length], expected_kind=Kind.CHUNK,
                                 raw_length=e.raw_length, what="b")
        assert plain == b


def test_empty_pack_has_a_readable_trailer() -> None:
    assert read_trailer(assemble(PackBuilder().take()).data, what="p") == ()


@pytest.mark.parametrize("cut", [1, 4, 8, 20])
def test_truncated_pack_is_detected(cut: int) -> None:
    data, _ = _pack([b"x" * 100, b"y" * 100])
    with pytest.raises(IntegrityError, match="pack-x"):
        read_trailer(data[:-cut], what="pack-x")


def test_damaged_magic_is_detected() -> None:
    data, _ = _pack([b"x" * 100])
    with pytest.raises(IntegrityError, match="trailer"):
        read_trailer(data[:-1] + b"!", what="p")


def _blobs_verify(data: bytes) -> bool:
    for e in read_trailer(data, what="p"):
        _, plain = open_envelope(data[e.offset : e.offset + e.length], expected_kind=e.kind,
                                 raw_length=e.raw_length, what="b")
        if hash_bytes(plain) != e.id:
            return False
    return True


def test_every_flipped_byte_is_caught_by_pack_or_blob_checks() -> None:
    builder = PackBuilder()
    for b in (b"alpha" * 30, b"beta" * 50, b"gamma"):
        builder.add(hash_bytes(b), Kind.CHUNK, *seal_parts(Kind.CHUNK, b, None), len(b))
    pack = assemble(builder.take())
    for pos in range(len(pack.data)):
        damaged = bytearray(pack.data)
        damaged[pos] ^= 0x10
        try:
            check_pack(bytes(damaged), pack.id, what="p")
            intact = _blobs_verify(bytes(damaged))
        except IntegrityError:
            continue
        assert not intact, f"flip at {pos} went unnoticed"


def test_unlisted_bytes_before_the_trailer_are_caught() -> None:
    builder = PackBuilder()
    builder.add(hash_bytes(b"x"), Kind.CHUNK, *seal_parts(Kind.CHUNK, b"x", None), 1)
    pack = assemble(builder.take())
    with pytest.raises(IntegrityError, match="unlisted"):
        check_pack(b"junk" + pack.data, pack.id, what="p")


def test_a_pack_keeps_at_most_three_read_buffers_alive() -> None:
    # New chunks scattered through a big file come from many read buffers; views of
    # the first three are kept, later ones are copied so their buffers can go.
    import array
    import gc
    import weakref

    from artifactstore.objects.packs import PINNED_BUFFERS, PackBatch

    batch = PackBatch(None)
    alive = []
    for i in range(6):
        buffer = array.array("B", bytes([i]) * 100_000)
        alive.append(weakref.ref(buffer))
        view = memoryview(buffer)[1000:2000]
        batch.add(hash_bytes(view), Kind.CHUNK, view, adaptive=True)
        del buffer, view
    gc.collect()
    assert [ref() is not None for ref in alive] == [True] * PINNED_BUFFERS + [False] * 3
    pack = assemble(batch.seal())
    assert [e.raw_length for e in read_trailer(pack.data, what="p")] == [1000] * 6
    gc.collect()
    assert all(ref() is None for ref in alive)  # sealed: nothing pinned any more


def test_blob_records_round_trip_and_refuse_unknown_kinds_and_empty_blobs() -> None:
    blob = hash_bytes(b"x")
    entries = [BlobEntry(blob, Kind.CHUNK, 0, 10, 7),
               BlobEntry(hash_bytes(b"y"), Kind.TREE, 10, 5, 5)]
    assert decode_records(encode_records(entries), what="index i") == entries
    with pytest.raises(IntegrityError, match=f"index i lists blob {blob.hex} of unknown kind 99"):
        decode_records(RECORD.pack(blob.raw, 99, 0, 10, 7), what="index i")
    with pytest.raises(IntegrityError, match=f"index i lists blob {blob.hex} with length 0"):
        decode_records(RECORD.pack(blob.raw, int(Kind.CHUNK), 0, 0, 0), what="index i")
    with pytest.raises(IntegrityError, match="malformed blob list"):
        decode_records(b"short", what="index i")


@pytest.mark.parametrize("decode", [decode_records, checked_records])
def test_checked_rows_are_the_entries_and_refuse_what_they_refuse(
    decode: Callable[..., object],
) -> None:
    """``checked_records`` (the cold index merge's rows, no object per row) checks
    exactly what ``decode_records`` checks, a bad row anywhere in the list."""
    blob = hash_bytes(b"x")
    good = encode_records([BlobEntry(hash_bytes(b"y"), Kind.TREE, 10, 5, 5)])
    assert checked_records(good + encode_records([BlobEntry(blob, Kind.CHUNK, 0, 10, 7)]),
                           what="i") == [(hash_bytes(b"y").raw, int(Kind.TREE), 10, 5, 5),
                                         (blob.raw, int(Kind.CHUNK), 0, 10, 7)]
    with pytest.raises(IntegrityError, match=f"index i lists blob {blob.hex} of unknown kind 99"):
        decode(good + RECORD.pack(blob.raw, 99, 0, 10, 7), what="index i")
    with pytest.raises(IntegrityError, match=f"index i lists blob {blob.hex} with length 0"):
        decode(good + RECORD.pack(blob.raw, int(Kind.CHUNK), 0, 0, 0), what="index i")
    with pytest.raises(IntegrityError, match="malformed blob list"):
        decode(good + b"short", what="index i")


@pytest.mark.parametrize("encrypted", [False, True])
def test_chunks_sealed_in_a_pool_give_the_same_pack_and_free_their_buffers(
    encrypted: bool,
) -> None:
    """ChunkSealing seals chunks with their own compression as they are added, in a
    pool: the pack's blobs are byte for byte those sealed at once (mixed with chunks of
    the batch's own policy, in order), and a read buffer is no longer kept alive by the
    batch once its chunks are sealed (the batch sealing at once keeps the first three)."""
    import array
    import gc
    import random
    import weakref
    from concurrent.futures import ThreadPoolExecutor

    from artifactstore.objects.bigchunks import BigChunks
    from artifactstore.objects.chunksealing import ChunkSealing
    from artifactstore.objects.domainkeys import DomainKeys
    from artifactstore.objects.packs import PINNED_BUFFERS, PackBatch

    keys = DomainKeys.from_epoch_key(bytes(range(32))) if encrypted else None
    text = BigChunks().compression
    rng = random.Random(7)
    words = [b"alpha", b"beta", b"1234", b",", b"\n", b"gamma", b"0.5"]
    blobs = [b"".join(rng.choice(words) for _ in range(rng.randint(10, 5000)))
             for _ in range(40)] + [rng.randbytes(3000)]  # the last does not compress
    packs = []
    for pooled in (False, True):
        pool = ThreadPoolExecutor(max_workers=2)
        batch = PackBatch(None, keys, sealing=ChunkSealing(pool, 3) if pooled else None)
        refs = []
        for i, blob in enumerate(blobs):
            buffer = array.array("B", blob)  # a read buffer (weakly referenceable)
            refs.append(weakref.ref(buffer))
            view = memoryview(buffer).toreadonly()
            # the big-chunk policy, but for a few chunks of the batch's own
            batch.add(hash_bytes(view), Kind.CHUNK, view, adaptive=True,
                      compression=None if i % 10 == 5 else text)
            del buffer, view
        pool.shutdown(wait=True)  # every job done
        gc.collect()
        alive = [i for i, ref in enumerate(refs) if ref() is not None]
        # in an encrypted domain, chunks of the batch's own policy that do not compress
        # are sealed as they are added too (PackBatch.add), so they pin nothing
        expected = ([] if encrypted else [5, 15, 25]) if pooled else list(range(PINNED_BUFFERS))
        assert alive == expected
        pending = batch.seal()
        packs.append((b"".join(pending.parts), pending.entries))
        del pending
        gc.collect()
        assert all(ref() is None for ref in refs)
    (plain, plain_entries), (pooled_bytes, pooled_entries) = packs
    assert pooled_bytes == plain  # every envelope, in order (a trailer's salt is random)
    assert pooled_entries == plain_entries


@pytest.mark.parametrize("one_compresses", [False, True])
def test_an_encrypted_batch_seals_small_chunks_that_do_not_compress_as_they_come(
    one_compresses: bool,
) -> None:
    """A local store's encrypted batch seals a small chunk of its own policy as it is
    added, while none of its chunks compressed (AES-GCM lets go of the GIL: on the I/O
    thread that was a thread switch per blob); from the first that compresses, the rest
    wait for the pack's sealing. Either way the pack is byte for byte the one a batch
    sealing every blob as it comes (S3's) makes, and a chunk sealed as it came keeps no
    read buffer alive."""
    import array
    import gc
    import random
    import weakref

    from artifactstore.objects.domainkeys import DomainKeys
    from artifactstore.objects.envelope import Compression
    from artifactstore.objects.packs import PackBatch

    keys = DomainKeys.from_epoch_key(bytes(range(32)))
    rng = random.Random(11)
    blobs = [rng.randbytes(3000) for _ in range(6)]
    if one_compresses:
        blobs.insert(2, b"alpha,beta,1234,0.5\n" * 400)
    local = PackBatch(Compression(), keys)
    eager = PackBatch(Compression(), keys, eager=True)
    refs = []
    for blob in blobs:
        buffer = array.array("B", blob)  # a read buffer (weakly referenceable)
        refs.append(weakref.ref(buffer))
        view = memoryview(buffer).toreadonly()
        blob_id = hash_bytes(blob)
        local.add(blob_id, Kind.CHUNK, view, adaptive=True)
        eager.add(blob_id, Kind.CHUNK, blob, adaptive=True)
        del buffer, view
    gc.collect()
    alive = [i for i, ref in enumerate(refs) if ref() is not None]
    # after the chunk that compressed (index 2), the next ones wait, pinning up to three
    assert alive == ([3, 4, 5] if one_compresses else [])
    mine, theirs = local.seal(), eager.seal()
    assert b"".join(mine.parts) == b"".join(theirs.parts)
    assert mine.entries == theirs.entries
    stored = sum(e.length for e in mine.entries)
    raw = sum(len(b) for b in blobs)
    assert (stored < raw) is one_compresses  # the text chunk compressed, the others did not
