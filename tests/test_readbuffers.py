"""Tests for artifactstore.core.readbuffers: a buffer is handed out again only when no
view of it exists, so the bytes a view shows never change under it."""

from __future__ import annotations

import pytest

from artifactstore.core.readbuffers import ReadBuffers, viewed


def test_a_buffer_is_viewed_while_any_view_of_it_exists() -> None:
    buffer = bytearray(b"abcdef")
    assert not viewed(buffer)
    whole = memoryview(buffer)
    part = whole[2:4].toreadonly()  # a slice of a view is a view of the buffer too
    del whole
    assert viewed(buffer)
    del part
    assert not viewed(buffer)
    assert buffer == b"abcdef"  # the probe leaves it as it was


def test_take_reuses_only_a_buffer_nothing_views() -> None:
    buffers = ReadBuffers(1024, keep=2)
    first = buffers.take()
    chunk = memoryview(first)[:10].toreadonly()
    second = buffers.take()
    assert second is not first  # a chunk still views the first
    third = buffers.take()
    assert third is second  # the second has no view: read into it again
    view = memoryview(second)
    fourth = buffers.take()  # both kept buffers viewed: a new one, not kept
    assert fourth is not first
    assert fourth is not second
    assert buffers.made == 3
    del chunk
    assert buffers.take() is first
    del view
    buffers.release()
    assert buffers.take() is not second  # forgotten: a new buffer
    assert buffers.made == 4


def test_idle_buffers_beside_the_one_taken_are_given_back() -> None:
    buffers = ReadBuffers(1024, keep=3)
    views = []
    taken = []
    for _ in range(3):
        taken.append(buffers.take())
        views.append(memoryview(taken[-1]))
    assert buffers.made == 3
    views.clear()  # all three idle now
    again = buffers.take()
    assert again is taken[0]
    pin = memoryview(again)
    new = buffers.take()
    assert all(new is not b for b in taken)  # the other two were given back, not kept idle
    assert buffers.made == 4
    del pin


def test_keep_idle_reuses_every_kept_buffer_once_free() -> None:
    buffers = ReadBuffers(1024, keep=3, keep_idle=True)
    taken, views = [], []
    for _ in range(3):
        taken.append(buffers.take())
        views.append(memoryview(taken[-1]))
    beyond = buffers.take()  # all viewed, and keep reached: a buffer beyond them
    assert all(beyond is not b for b in taken)
    assert buffers.made == 4
    views.clear()  # all three idle now: each is handed out again, none made
    again = []
    for _ in range(3):
        again.append(buffers.take())
        views.append(memoryview(again[-1]))
    assert {id(b) for b in again} == {id(b) for b in taken}
    assert buffers.made == 4


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="size"):
        ReadBuffers(0, 1)
    with pytest.raises(ValueError, match="keep"):
        ReadBuffers(1, -1)
