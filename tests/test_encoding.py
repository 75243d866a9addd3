"""Tests for artifactstore.core.encoding: msgpack-test-suite vectors, canonical rules,
hostile input."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import math
import random
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import load_json

from artifactstore.core.encoding import MAX_DEPTH, pack, unpack
from artifactstore.core.errors import IntegrityError, InvalidInputError
from artifactstore.testing import strategies

SUITE: dict[str, list[dict[str, Any]]] = load_json("msgpack_test_suite.json")
REFUSED_GROUPS = {"50.timestamp.yaml", "60.ext.yaml"}


def suite_cases() -> list[tuple[str, Any, list[bytes]]]:
    """(group, value, encodings) for every case; timestamp and ext values stay raw."""
    cases = []
    for group, entries in SUITE.items():
        for entry in entries:
            forms = [bytes.fromhex(text.replace("-", "")) for text in entry["msgpack"]]
            if "bignum" in entry:
                value: Any = int(entry["bignum"])
            elif "binary" in entry:
                value = bytes.fromhex(entry["binary"].replace("-", ""))
            else:
                (kind,) = set(entry) - {"msgpack"}
                value = entry[kind]
            cases.append((group, value, forms))
    return cases


CASES = suite_cases()
SUPPORTED = [c for c in CASES if c[0] not in REFUSED_GROUPS]
FLOAT_HEADERS = {0xCA, 0xCB}


def case_id(case: tuple[str, Any, list[bytes]]) -> str:
    return f"{case[0]}:{case[1]!r:.30}"


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares types and float bits (so True != 1 and -0.0 != 0.0).

    Dict order is not compared: unpack returns maps in canonical order.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(strict_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def test_suite_has_every_group() -> None:
    assert len(SUITE) == 15
    assert sum(len(forms) for _, _, forms in CASES) == 233


# --- vectors -------------------------------------------------------------------------


@pytest.mark.parametrize("case", SUPPORTED, ids=case_id)
def test_every_listed_encoding_unpacks_to_the_value(case: tuple[str, Any, list[bytes]]) -> None:
    _, value, forms = case
    for form in forms:
        decoded = unpack(form)
        assert decoded == value, form.hex()
        if form[0] not in FLOAT_HEADERS:
            assert type(decoded) is type(value)


@pytest.mark.parametrize("case", SUPPORTED, ids=case_id)
def test_pack_gives_the_canonical_listed_form(case: tuple[str, Any, list[bytes]]) -> None:
    _, value, forms = case
    packed = pack(value)
    assert packed in forms
    if isinstance(value, float):
        # Pinned: always float64, although the suite lists float32 first.
        assert packed == b"\xcb" + struct.pack(">d", value)
    elif isinstance(value, int) and not isinstance(value, bool):
        int_forms = [f for f in forms if f[0] not in FLOAT_HEADERS]
        assert len(packed) == min(map(len, int_forms))
        if value >= 0:  # ties (9-byte values) go to the unsigned form
            assert packed[0] < 0x80 or 0xCC <= packed[0] <= 0xCF
    else:
        assert packed == min(forms, key=len)
    assert strict_equal(unpack(packed), value)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in REFUSED_GROUPS], ids=case_id)
def test_timestamps_and_ext_types_are_refused(case: tuple[str, Any, list[bytes]]) -> None:
    group, value, forms = case
    for form in forms:
        # The vector itself is right (decoded here with msgpack's own types) ...
        decoded = msgpack.unpackb(form, ext_hook=msgpack.ExtType)
        if group == "50.timestamp.yaml":
            assert decoded == msgpack.Timestamp(*value)
        else:
            assert decoded == msgpack.ExtType(value[0], bytes.fromhex(value[1].replace("-", "")))
        # ... and the canonical decoder refuses it.
        with pytest.raises(IntegrityError, match=r"malformed msgpack in vector: .*ext"):
            unpack(form, what="vector")


# --- canonical rules -----------------------------------------------------------------


def test_map_entries_are_sorted_by_packed_key_bytes() -> None:
    # "b" (a1 62) sorts before "aa" (a2 61 61): shorter str keys first; then
    # bytes keys (c4 ..) after all short str keys.
    expected = bytes.fromhex("83" + "a162" + "01" + "a26161" + "02" + "c40161" + "03")
    assert pack({b"a": 3, "aa": 2, "b": 1}) == expected
    assert pack({"b": 1, b"a": 3, "aa": 2}) == expected


def test_floats_are_float64_and_nan_is_canonical() -> None:
    assert pack(0.5) == bytes.fromhex("cb3fe0000000000000")
    assert pack(1.0) == bytes.fromhex("cb3ff0000000000000")
    negative_nan = struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0]
    payload_nan = struct.unpack(">d", bytes.fromhex("7ff0000000000001"))[0]
    for nan in (math.nan, negative_nan, payload_nan):
        assert pack(nan) == bytes.fromhex("cb7ff8000000000000")
    assert pack(-0.0) == bytes.fromhex("cb8000000000000000")
    assert math.copysign(1.0, unpack(pack(-0.0))) == -1.0
    assert unpack(pack(math.inf)) == math.inf
    assert unpack(pack(-math.inf)) == -math.inf


def test_exact_types_keep_their_own_encodings() -> None:
    assert pack(True) == b"\xc3"
    assert pack(1) == b"\x01"
    assert pack("a") == b"\xa1a"
    assert pack(b"a") == b"\xc4\x01a"


def test_tuples_and_byte_buffers_encode_like_lists_and_bytes() -> None:
    assert pack((1, (2, b"x"))) == pack([1, [2, b"x"]])
    assert unpack(pack((1, (2,)))) == [1, [2]]
    assert pack(bytearray(b"xy")) == pack(memoryview(b"xy")) == pack(b"xy")


@pytest.mark.parametrize(
    ("value", "packed"), [(-(2**63), "d38000000000000000"), (2**64 - 1, "cf" + "ff" * 8)]
)
def test_int_range_edges_are_accepted(value: int, packed: str) -> None:
    assert pack(value).hex() == packed
    assert unpack(pack(value)) == value


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


@pytest.mark.parametrize(
    ("value", "type_name", "path"),
    [
        ({1, 2}, "set", "$"),
        (frozenset(), "frozenset", "$"),
        ({"a": [1, {"b": {1}}]}, "set", "$['a'][1]['b']"),
        ([datetime.datetime(2024, 1, 1)], "datetime.datetime", "$[0]"),
        ({"x": decimal.Decimal(1)}, "decimal.Decimal", "$['x']"),
        ([object()], "object", "$[0]"),
        (msgpack.ExtType(1, b"x"), "msgpack.ext.ExtType", "$"),
        (msgpack.Timestamp(1), "msgpack.ext.Timestamp", "$"),
        ({"c": Color.RED}, "Color", "$['c']"),
        ([Level.LOW], "Level", "$[0]"),
        ([Name("x")], "Name", "$[0]"),
        (collections.OrderedDict(a=1), "OrderedDict", "$"),
        ({"k": [0, 2**64]}, "int 18446744073709551616", "$['k'][1]"),
        ([-(2**63) - 1], "int -9223372036854775809", "$[0]"),
        ({"s": "\udc80"}, "UTF-8", "$['s']"),
        ({1: "a"}, "map key of type int", "$"),
        ({"a": {None: 1}}, "map key of type NoneType", "$['a']"),
        ({(1,): 1}, "map key of type tuple", "$"),
        ({"\ud800": 1}, "UTF-8", "$"),
    ],
)
def test_unsupported_values_are_refused_naming_type_and_path(
    value: object, type_name: str, path: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        pack(value)
    message = str(info.value)
    assert type_name in message
    assert f" at {path};" in message


def test_nesting_limit() -> None:
    value: list[Any] = []
    for _ in range(MAX_DEPTH - 1):
        value = [value]
    assert unpack(pack(value)) == value  # MAX_DEPTH arrays deep
    with pytest.raises(InvalidInputError, match="nested deeper than 512"):
        pack([value])


# --- hostile input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "incomplete"),
        (b"\x01\x02", "extra data"),
        (b"\xa3ab", "incomplete"),
        (b"\x92\x01", "incomplete"),
        (b"\xc1", "type byte"),
        (b"\xa1\xff", "utf-8"),
        (bytes.fromhex("8201010202"), "map key"),
        (bytes.fromhex("81c0c0"), "map key"),
        (bytes.fromhex("82a16101a16102"), "duplicate map key"),
        (bytes.fromhex("dd7fffffff"), "max_array_len"),
        (bytes.fromhex("dbffffffff"), "incomplete|max_str_len"),
        (bytes.fromhex("c6ffffffff"), "incomplete|max_bin_len"),
        (b"\x91" * 1100 + b"\xc0", "nested too deeply"),
    ],
)
def test_malformed_input_is_an_integrity_error(data: bytes, reason: str) -> None:
    with pytest.raises(IntegrityError, match=f"^malformed msgpack in tree 3f2a: .*(?i:{reason})"):
        unpack(data, what="tree 3f2a")


def test_size_limit() -> None:
    data = pack(b"x" * 1000)
    assert unpack(data, max_size=len(data)) == b"x" * 1000
    with pytest.raises(IntegrityError, match="1003 bytes is over the 1002-byte limit"):
        unpack(data, max_size=len(data) - 1)


def test_default_what_is_data() -> None:
    with pytest.raises(IntegrityError, match=r"^malformed msgpack in data: "):
        unpack(b"\xc1")


# --- properties ----------------------------------------------------------------------

values = strategies.msgpack_values()


def shuffled(value: object, rng: random.Random) -> object:
    """The same value with every dict rebuilt in a random insertion order."""
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: shuffled(item, rng) for key, item in items}
    return value


@settings(max_examples=200, deadline=None)
@given(value=values)
def test_round_trip(value: object) -> None:
    packed = pack(value)
    decoded = unpack(packed)
    assert strict_equal(decoded, value)
    assert pack(decoded) == packed


@settings(max_examples=200, deadline=None)
@given(value=values, seed=st.integers())
def test_pack_ignores_dict_insertion_order(value: object, seed: int) -> None:
    assert pack(shuffled(value, random.Random(seed))) == pack(value)


@settings(max_examples=100, deadline=None)
@given(value=values)
def test_pack_agrees_with_msgpack_on_sorted_values(value: object) -> None:
    # With maps pre-sorted by packed key, canonical msgpack is plain msgpack
    # (use_bin_type, float64): we add ordering and checks, not a dialect.
    def sort_maps(v: object) -> object:
        if isinstance(v, list):
            return [sort_maps(i) for i in v]
        if isinstance(v, dict):
            keys = sorted(v, key=lambda k: msgpack.packb(k, use_bin_type=True))
            return {k: sort_maps(v[k]) for k in keys}
        return v

    assert pack(value) == msgpack.packb(sort_maps(value), use_bin_type=True)
