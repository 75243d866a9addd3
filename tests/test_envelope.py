"""Envelope sealing, compression policy and tamper detection (design §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from artifactstore.core.errors import IntegrityError
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import (
    HEADER_SIZE,
    MAGIC,
    AdaptiveSealer,
    Compression,
    Kind,
    open_envelope,
    open_envelope_into,
    seal,
)
from artifactstore.testing.data import random_bytes

ZSTD = Compression()


def test_header_layout_is_the_spec() -> None:
    sealed = seal(Kind.TREE, b"hello", None)
    assert sealed[:4] == MAGIC
    assert sealed[4:8] == bytes([1, Kind.TREE, 0, 0])
    assert sealed[HEADER_SIZE:] == b"hello"


def test_compressible_payload_is_compressed() -> None:
    text = b"id,label,score\n" + b"".join(b"%d,cat,%d.5\n" % (i, i % 7) for i in range(5000))
    sealed = seal(Kind.CHUNK, text, ZSTD)
    assert sealed[6] & 1
    assert len(sealed) < len(text) * 0.5
    assert open_envelope(sealed, expected_kind=Kind.CHUNK, raw_length=len(text), what="x") == (
        Kind.CHUNK,
        text,
    )


def test_incompressible_payload_is_stored_plain() -> None:
    data = random_bytes(100_000, seed=3)
    sealed = seal(Kind.CHUNK, data, ZSTD)
    assert sealed[6] == 0
    assert sealed[HEADER_SIZE:] == data


def test_compression_none_never_compresses() -> None:
    sealed = seal(Kind.CHUNK, b"a" * 10_000, Compression(algorithm="none"))
    assert sealed[6] == 0


@given(st.binary(max_size=5000),
       st.sampled_from([k for k in Kind if k is not Kind.CHUNK_DELTA]), st.booleans())
def test_round_trip(payload: bytes, kind: Kind, compress: bool) -> None:
    # (a CHUNK_DELTA opens only with its bases: tests/test_deltas.py)
    sealed = seal(kind, payload, ZSTD if compress else None)
    assert open_envelope(sealed, expected_kind=kind, raw_length=len(payload), what="x") == (
        kind,
        payload,
    )


@pytest.mark.parametrize("position", range(HEADER_SIZE))
def test_any_header_byte_flip_is_detected(position: int) -> None:
    sealed = bytearray(seal(Kind.CHUNK, b"z" * 1000, ZSTD))
    sealed[position] ^= 0x40
    with pytest.raises(IntegrityError, match="blob-under-test"):
        open_envelope(bytes(sealed), expected_kind=Kind.CHUNK, raw_length=1000,
                      what="blob-under-test")


def test_wrong_kind_is_detected() -> None:
    sealed = seal(Kind.TREE, b"node", None)
    with pytest.raises(IntegrityError, match="holds a TREE, expected CHUNK"):
        open_envelope(sealed, expected_kind=Kind.CHUNK, raw_length=None, what="b")


def test_decompression_is_bounded_by_raw_length() -> None:
    bomb = seal(Kind.CHUNK, b"\0" * (8 << 20), ZSTD)
    assert len(bomb) < 4096
    with pytest.raises(IntegrityError):
        open_envelope(bomb, expected_kind=Kind.CHUNK, raw_length=1024, what="bomb")


def test_damaged_compressed_payload_is_detected() -> None:
    text = b"abcdefgh" * 2000
    sealed = bytearray(seal(Kind.CHUNK, text, ZSTD))
    sealed[HEADER_SIZE + 5] ^= 0xFF
    # zstd frames carry no checksum: a flip either fails to decode or decodes to
    # other bytes, which the id check in the object store then catches.
    try:
        _, out = open_envelope(bytes(sealed), expected_kind=Kind.CHUNK,
                               raw_length=len(text), what="b")
    except IntegrityError:
        return
    assert out != text


def test_truncated_envelope() -> None:
    with pytest.raises(IntegrityError, match="truncated"):
        open_envelope(b"ASE", expected_kind=None, raw_length=None, what="b")


def test_adaptive_sealer_stops_trying_on_incompressible_runs_and_recovers() -> None:
    sealer = AdaptiveSealer(ZSTD, give_up_after=3, probe_every=4)
    noise = [random_bytes(5000, seed=i) for i in range(7)]
    text = b"a,b,c\n" * 1000

    def flag(blob: bytes) -> int:
        return sealer.seal_parts(Kind.CHUNK, blob)[0][6]

    # Blobs 1-3 are tried and miss; 4-6 are not tried; 7 is a probe and misses.
    assert [flag(n) for n in noise] == [0] * 7
    # The next three are not tried even though they would compress...
    assert [flag(text) for _ in range(3)] == [0, 0, 0]
    # ...the probe after them finds compression pays, and it stays on.
    assert [flag(text) for _ in range(3)] == [1, 1, 1]


KEYS = DomainKeys.from_epoch_key(bytes(range(32)))


@given(st.binary(max_size=5000), st.booleans(), st.booleans())
def test_opening_into_a_buffer_gives_the_same_plaintext(payload: bytes, compress: bool,
                                                         encrypt: bool) -> None:
    """``open_envelope_into`` (a big file's restore from a local store) yields what
    ``open_envelope`` does, into the caller's buffer, decrypting into a scratch that
    grows when too small."""
    keys = KEYS if encrypt else None
    binding = b"b" * 32
    sealed = seal(Kind.CHUNK, payload, ZSTD if compress else None, keys=keys, binding=binding)
    out = bytearray(len(payload) + 3)
    scratch = open_envelope_into(sealed, memoryview(out)[1:-2], bytearray(1),
                                 expected_kind=Kind.CHUNK, what="x", keys=keys, binding=binding)
    assert bytes(out[1:-2]) == payload
    assert (out[0], out[-2], out[-1]) == (0, 0, 0)  # nothing written outside it
    if encrypt:
        assert len(scratch) >= len(sealed) - HEADER_SIZE - 16 - len(KEYS.key_id)


def test_opening_into_a_buffer_of_another_length_fails() -> None:
    text = b"id,label,score\n" * 2000
    for compression in (ZSTD, None):
        sealed = seal(Kind.CHUNK, text, compression)
        for size in (len(text) - 1, len(text) + 1):
            with pytest.raises(IntegrityError, match="the index says"):
                open_envelope_into(sealed, memoryview(bytearray(size)), bytearray(),
                                   expected_kind=Kind.CHUNK, what="b")


def test_opening_into_a_buffer_refuses_what_open_envelope_refuses() -> None:
    text = b"abcdefgh" * 2000
    sealed = seal(Kind.CHUNK, text, ZSTD, keys=KEYS, binding=b"i" * 32)
    out = memoryview(bytearray(len(text)))
    for damaged in (sealed[:-1], sealed[:HEADER_SIZE + 3],
                    sealed[:-5] + bytes([sealed[-5] ^ 1]) + sealed[-4:]):
        with pytest.raises(IntegrityError, match="blob-x"):
            open_envelope_into(damaged, out, bytearray(), expected_kind=Kind.CHUNK,
                               what="blob-x", keys=KEYS, binding=b"i" * 32)
    with pytest.raises(IntegrityError, match="blob-x"):  # bound to its id
        open_envelope_into(sealed, out, bytearray(), expected_kind=Kind.CHUNK, what="blob-x",
                           keys=KEYS, binding=b"j" * 32)
    with pytest.raises(IntegrityError, match="holds a CHUNK, expected TREE"):
        open_envelope_into(sealed, out, bytearray(), expected_kind=Kind.TREE, what="b",
                           keys=KEYS, binding=b"i" * 32)
    plain = bytearray(seal(Kind.CHUNK, text, ZSTD))
    plain[HEADER_SIZE + 5] ^= 0xFF  # no authentication: fails to decode, or other bytes
    try:
        open_envelope_into(bytes(plain), out, bytearray(), expected_kind=Kind.CHUNK, what="b")
    except IntegrityError:
        return
    assert bytes(out) != text
