"""Spools: a pack's parts written to a reusable temporary file, read back as exactly its bytes."""

from __future__ import annotations

import random
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.backends.partsbody import FileBody
from artifactstore.core import vectorio
from artifactstore.core.vectorio import write_parts
from artifactstore.objects.spool import Spools

packs = st.lists(st.lists(st.binary(max_size=64), max_size=6), min_size=1, max_size=5)


@given(packs=packs)
def test_each_pack_reads_back_as_its_own_bytes_from_a_reused_file(
    packs: list[list[bytes]]
) -> None:
    spools = Spools()
    files = set()
    for parts in packs:
        given_parts: list[bytes | memoryview] = [memoryview(p) for p in parts]
        with spools.spooled(given_parts) as (file, size):
            assert given_parts == []  # handed over: the caller holds no parts
            assert size == sum(len(p) for p in parts)
            assert FileBody(file, size).read() == b"".join(parts)  # no older pack's tail
            files.add(id(file))
    assert len(files) == 1  # one upload at a time: one file
    spools.close()


def test_a_failed_upload_closes_its_file_and_close_closes_the_rest() -> None:
    spools = Spools()
    with pytest.raises(RuntimeError), spools.spooled([b"abc"]) as (failed, _):
        raise RuntimeError("upload failed")
    assert failed.closed  # in an unknown state: never reused
    with spools.spooled([b"de"]) as (file, size):
        assert file is not failed
        assert FileBody(file, size).read() == b"de"
    with spools.spooled([b"f"]) as (again, _):
        spools.close()  # closed while an upload runs: that file closes when it ends
        assert not again.closed
    assert again.closed
    assert file is again


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=300), max_size=40), st.integers(0, 64),
       st.booleans())
def test_write_parts_writes_every_byte_in_order(parts: list[bytes], offset: int,
                                                positional: bool) -> None:
    """core.vectorio.write_parts, at the file's position or from an offset."""
    with tempfile.TemporaryFile() as file:
        file.write(b"#" * offset)
        written = write_parts(file, parts, offset=offset if positional else None)
        file.seek(0)
        assert written == sum(map(len, parts))
        assert file.read() == b"#" * offset + b"".join(parts)


@pytest.mark.parametrize("positional", [False, True])
def test_write_parts_loops_over_more_parts_than_one_call_takes(
        positional: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectorio, "IOV_MAX", 3)
    rng = random.Random(5)
    parts = [rng.randbytes(rng.randrange(0, 500)) for _ in range(50)]
    with tempfile.TemporaryFile() as file:
        file.write(b"head")
        assert write_parts(file, parts, offset=4 if positional else None) == sum(map(len, parts))
        file.seek(0)
        assert file.read() == b"head" + b"".join(parts)
