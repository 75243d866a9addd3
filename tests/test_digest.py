"""Tests for artifactstore.core.digest against the official BLAKE3 vectors and its own contracts."""

from __future__ import annotations

import dataclasses
import os
import random
from unittest import mock

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import load_json

from artifactstore.core import digest
from artifactstore.core.digest import Digest, Hasher, derive_key, hash_bytes, xof
from artifactstore.core.errors import InvalidInputError
from artifactstore.testing import strategies

VECTORS = load_json("blake3_test_vectors.json")
KEY = VECTORS["key"].encode("ascii")
CONTEXT = VECTORS["context_string"]
CASES = VECTORS["cases"]


def vector_input(length: int) -> bytes:
    return bytes(i % 251 for i in range(length))


@pytest.fixture(params=CASES, ids=lambda case: f"len{case['input_len']}")
def case(request: pytest.FixtureRequest) -> dict[str, object]:
    return request.param  # type: ignore[no-any-return]


def test_vector_file_has_every_case() -> None:
    assert len(CASES) == 35
    assert len(KEY) == 32


def test_hash_matches_vector(case: dict[str, str]) -> None:
    data = vector_input(int(case["input_len"]))
    expected = bytes.fromhex(case["hash"])
    assert hash_bytes(data) == Digest(expected[:32])
    assert xof(data, len(expected)) == expected


def test_keyed_hash_matches_vector(case: dict[str, str]) -> None:
    data = vector_input(int(case["input_len"]))
    expected = bytes.fromhex(case["keyed_hash"])
    assert hash_bytes(data, key=KEY) == Digest(expected[:32])
    assert xof(data, len(expected), key=KEY) == expected


def test_derive_key_matches_vector(case: dict[str, str]) -> None:
    material = vector_input(int(case["input_len"]))
    expected = bytes.fromhex(case["derive_key"])
    assert derive_key(CONTEXT, material) == expected[:32]
    assert xof(material, len(expected), derive_context=CONTEXT) == expected


@pytest.mark.parametrize("piece", [1, 63, 64, 1000, 1024, 1025, 4096])
def test_hasher_in_pieces_matches_vector(case: dict[str, str], piece: int) -> None:
    data = vector_input(int(case["input_len"]))
    plain, keyed = Hasher(), Hasher(key=KEY)
    for start in range(0, len(data), piece):
        plain.update(data[start : start + piece])
        keyed.update(memoryview(data)[start : start + piece])
    assert plain.digest().hex == case["hash"][:64]
    assert keyed.digest().hex == case["keyed_hash"][:64]


def test_memoryview_and_bytearray_hash_like_bytes() -> None:
    data = vector_input(5000)
    assert hash_bytes(memoryview(data)) == hash_bytes(bytearray(data)) == hash_bytes(data)


def test_large_input_threaded_path_agrees_with_single_threaded_blake3() -> None:
    data = os.urandom(3 * digest.PARALLEL_MIN + 17)
    reference = blake3.blake3(data, max_threads=1).digest()
    assert hash_bytes(data).raw == reference
    assert hash_bytes(data, key=KEY).raw == blake3.blake3(data, key=KEY, max_threads=1).digest()


def test_hasher_digest_can_be_read_midway_and_continued() -> None:
    hasher = Hasher()
    hasher.update(b"abc")
    assert hasher.digest() == hash_bytes(b"abc")
    hasher.update(b"def")
    assert hasher.digest() == hash_bytes(b"abcdef")
    assert Hasher().digest() == hash_bytes(b"")


@pytest.mark.parametrize("first", [65536, 3 << 20], ids=["single-threaded", "threaded"])
def test_hasher_in_either_threading_mode_matches_one_shot(first: int) -> None:
    # The first update picks the mode; later updates of any size must not matter.
    data = random.Random(7).randbytes(9 << 20)
    sizes = [first, 1, 70000, 262144, 65535, 2 << 20, 0, 5]
    hasher, offset = Hasher(), 0
    for size in sizes:
        hasher.update(data[offset : offset + size])
        offset += size
    midway = hasher.digest()
    hasher.update(data[offset:])
    assert hasher.digest().raw == blake3.blake3(data, max_threads=1).digest()
    assert midway == hash_bytes(data[:offset])


@settings(max_examples=60, deadline=None)
@given(
    data=strategies.seeded_bytes(4000),
    sizes=st.lists(st.integers(0, 400), max_size=40),
)
def test_hasher_equals_one_shot_for_any_split(data: bytes, sizes: list[int]) -> None:
    # A small threshold lets small inputs take both threading modes.
    with mock.patch.object(digest, "PARALLEL_MIN", 200):
        hasher, offset = Hasher(key=KEY), 0
        for size in sizes:
            hasher.update(data[offset : offset + size])
            offset += size
        hasher.update(data[offset:])
        result = hasher.digest()
    assert result.raw == blake3.blake3(data, key=KEY).digest()


def test_hasher_copies_its_key() -> None:
    key = bytearray(KEY)
    hasher = Hasher(key=key)
    key[0] ^= 1
    hasher.update(b"abc")
    assert hasher.digest() == hash_bytes(b"abc", key=KEY)


# --- Digest value object -------------------------------------------------------------


def test_digest_hex_round_trip_and_forms() -> None:
    raw = bytes(range(32))
    value = Digest(raw)
    assert value.hex == raw.hex() == str(value)
    assert value.short == raw.hex()[:12]
    assert Digest.from_hex(value.hex) == value
    assert Digest.from_hex(value.hex.upper()) == value
    assert repr(value) == f"Digest('{raw.hex()}')"


@pytest.mark.parametrize(
    "raw", [b"", bytes(31), bytes(33), bytearray(32), "0" * 32, memoryview(bytes(32))]
)
def test_digest_rejects_wrong_size_or_type(raw: object) -> None:
    with pytest.raises(InvalidInputError, match="digest"):
        Digest(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 63,
        "a" * 65,
        "g" * 64,
        " " + "a" * 63,
        "0x" + "a" * 62,
        "aa " * 21 + "a",
        b"a" * 64,
        None,
    ],
)
def test_digest_from_hex_rejects_malformed(text: object) -> None:
    with pytest.raises(InvalidInputError, match="64 hex characters"):
        Digest.from_hex(text)  # type: ignore[arg-type]


def test_digest_is_frozen_hashable_and_ordered_by_bytes() -> None:
    low, high = Digest(b"\x00" * 31 + b"\x01"), Digest(b"\x01" + b"\x00" * 31)
    assert low < high
    assert sorted([high, low]) == [low, high]
    assert len({low, Digest(bytes(low.raw))}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        low.raw = bytes(32)  # type: ignore[misc]


# --- argument checks -----------------------------------------------------------------


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), "k" * 32])
def test_keyed_functions_reject_bad_keys(key: object) -> None:
    with pytest.raises(InvalidInputError, match="key"):
        hash_bytes(b"x", key=key)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="key"):
        Hasher(key=key)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="key"):
        xof(b"x", 32, key=key)  # type: ignore[arg-type]


def test_derive_key_rejects_empty_context() -> None:
    with pytest.raises(InvalidInputError, match="context"):
        derive_key("", b"material")


def test_derive_key_separates_contexts() -> None:
    assert derive_key("artifactstore test a", b"m") != derive_key("artifactstore test b", b"m")
    assert len(derive_key("artifactstore test a", b"m")) == 32


def test_xof_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="not both"):
        xof(b"x", 32, key=KEY, derive_context="ctx")
    with pytest.raises(InvalidInputError, match="length"):
        xof(b"x", -1)
    assert xof(b"x", 0) == b""
