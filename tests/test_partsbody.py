"""PartsBody and FileBody: a seekable body over a pack's parts, or over the first bytes of
a spooled file, reads as those bytes."""

from __future__ import annotations

import io
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from artifactstore.backends.partsbody import FileBody, PartsBody

parts_lists = st.lists(st.binary(max_size=40), max_size=8)
reads = st.lists(st.tuples(st.integers(-1, 60), st.integers(0, 200)), max_size=12)


@given(parts=parts_lists, steps=reads)
def test_reads_and_seeks_as_the_joined_bytes(
    parts: list[bytes], steps: list[tuple[int, int]]
) -> None:
    joined = b"".join(parts)
    body = PartsBody([memoryview(p) if i % 2 else p for i, p in enumerate(parts)])
    model = io.BytesIO(joined)
    assert len(body) == len(joined)
    for size, position in steps:
        assert body.seek(position) == model.seek(position)
        assert body.read(size) == model.read(size)
        assert body.tell() == model.tell()
    body.seek(0)
    assert body.read() == joined


@given(parts=parts_lists, size=st.integers(1, 50))
def test_readinto_fills_buffers_across_parts(parts: list[bytes], size: int) -> None:
    body = PartsBody(parts)
    out = bytearray()
    buffer = bytearray(size)
    while n := body.readinto(buffer):
        out += buffer[:n]
    assert bytes(out) == b"".join(parts)


def test_seek_from_the_end_and_current_and_bad_seeks() -> None:
    body = PartsBody([b"abc", b"", b"defg"])
    assert body.seek(-2, io.SEEK_END) == 5
    assert body.read() == b"fg"
    body.seek(1)
    assert body.seek(2, io.SEEK_CUR) == 3
    assert body.read(2) == b"de"
    assert body.seekable()
    assert body.readable()
    assert not body.writable()
    with pytest.raises(ValueError, match="negative"):
        body.seek(-1)
    with pytest.raises(ValueError, match="whence"):
        body.seek(0, 7)


def test_the_parts_are_not_copied_until_read() -> None:
    part = bytearray(b"x" * 10)
    body = PartsBody([memoryview(part)])
    part[0:1] = b"y"  # a view, not a copy: the change shows
    assert body.read(2) == b"yx"


@given(data=st.binary(max_size=120), extra=st.binary(max_size=20), steps=reads)
def test_a_file_body_reads_and_seeks_as_the_first_bytes_of_its_file(
    data: bytes, extra: bytes, steps: list[tuple[int, int]]
) -> None:
    with tempfile.TemporaryFile() as file:
        file.write(data + extra)  # bytes past ``size`` are not part of the body
        file.flush()
        body = FileBody(file, len(data))
        model = io.BytesIO(data)
        assert len(body) == len(data)
        for size, position in steps:
            assert body.seek(position) == model.seek(position)
            assert body.read(size) == model.read(size)
            assert body.tell() == model.tell()
        out = bytearray()
        buffer = bytearray(7)
        body.seek(0)
        while n := body.readinto(buffer):
            out += buffer[:n]
        assert bytes(out) == data
        body.seek(0)
        assert body.readall() == data


def test_a_file_body_reads_with_its_own_position_and_fails_on_a_short_file() -> None:
    with tempfile.TemporaryFile() as file:
        file.write(b"0123456789")
        file.flush()
        first, second = FileBody(file, 10), FileBody(file, 10)
        assert first.read(4) == b"0123"
        assert second.read(3) == b"012"  # a retry's new body starts again at 0
        assert first.read() == b"456789"
        file.truncate(5)  # the file lost its end: an error, never short bytes
        with pytest.raises(OSError, match="ended at 5 of 10"):
            FileBody(file, 10).read()
