"""The tree's specialised node encoder gives the generic canonical encoder's bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.core.digest import Digest, hash_bytes
from artifactstore.core.encoding import pack
from artifactstore.core.errors import InvalidInputError
from artifactstore.model import entries as entries_mod
from artifactstore.model.entries import FileEntry, ReferenceEntry, encode_entry
from artifactstore.model.tree import build_tree, pack_node
from artifactstore.objects.blobrefs import ChunkRef
from artifactstore.objects.envelope import Kind
from artifactstore.testing import strategies

_texts = st.text(st.characters(codec=None), max_size=12)  # lone surrogates included
_digests = st.binary(min_size=32, max_size=32).map(Digest)
_sizes = st.integers(min_value=1, max_value=(1 << 64) - 1)


def _put(kind: Kind, data: bytes) -> Digest:
    return hash_bytes(kind.name.encode() + data)


@st.composite
def _files(draw: st.DrawFn) -> FileEntry:
    lengths = draw(st.lists(st.integers(1, 1 << 40), max_size=4))
    chunks = tuple(ChunkRef(draw(_digests), n) for n in lengths)
    return FileEntry("x", sum(lengths), draw(_digests), chunks, draw(st.integers(0, 0o777)),
                     draw(_texts))


@st.composite
def _references(draw: st.DrawFn) -> ReferenceEntry:
    return ReferenceEntry(
        "x", draw(_texts.filter(bool)), draw(st.none() | st.integers(0, (1 << 64) - 1)),
        draw(st.none() | _texts), draw(st.none() | _texts), draw(st.none() | _digests),
        draw(_texts),
    )


def _dir(draw: st.DrawFn) -> dict[str, Any]:
    return {"n": draw(_texts), "t": "d", "id": draw(_digests).raw, "size": draw(_sizes),
            "files": draw(_sizes)}


@st.composite
def _records(draw: st.DrawFn) -> list[Any]:
    kinds = draw(st.lists(st.sampled_from("frd"), max_size=6))
    rows: list[Any] = []
    for kind in kinds:
        if kind == "d":
            rows.append(_dir(draw))
            continue
        entry: FileEntry | ReferenceEntry = draw(_files()) if kind == "f" else draw(_references())
        rows.append(encode_entry(draw(_texts), entry, _put))
    return rows


def _same_outcome(body_key: str, rows: list[Any]) -> None:
    def outcome(encode: Any) -> bytes | str:
        try:
            packed: bytes = encode()
        except InvalidInputError as refused:
            return f"refused: {refused}"
        return packed

    assert outcome(lambda: pack_node(body_key, rows)) == outcome(
        lambda: pack({"version": 1, body_key: rows}))


@settings(max_examples=300)
@given(_records())
def test_entries_nodes_match_the_generic_encoder(rows: list[Any]) -> None:
    _same_outcome("entries", rows)


@settings(max_examples=100)
@given(st.lists(st.tuples(_texts, _digests, _sizes, _sizes), max_size=5))
def test_split_nodes_match_the_generic_encoder(children: list[Any]) -> None:
    _same_outcome("split", [[first, d.raw, size, files] for first, d, size, files in children])


def test_huge_file_records_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entries_mod, "INLINE_CHUNKS_MAX", 3)
    chunks = tuple(ChunkRef(hash_bytes(bytes([i])), 10) for i in range(8))
    record = encode_entry("big", FileEntry("big", 80, hash_bytes(b"b"), chunks), _put)
    assert "chunklist" in record
    _same_outcome("entries", [record])


@settings(max_examples=30, deadline=None)
@given(st.lists(strategies.paths(), max_size=30, unique=True), st.integers(2, 6))
def test_whole_trees_are_the_generic_encoders(paths: list[str], threshold: int) -> None:
    """Every node build_tree stores is a canonical encoding (pack of its own decoding)."""
    from artifactstore.core.encoding import unpack

    paths = [p for p in paths if not any(q.startswith(p + "/") for q in paths)]
    stored: list[bytes] = []

    def put(kind: Kind, data: bytes) -> Digest:
        stored.append(data)
        return hash_bytes(data)

    entries = [FileEntry(p, 3, hash_bytes(p.encode()), (ChunkRef(hash_bytes(b"c"), 3),))
               for p in paths]
    build_tree(entries, put, split_threshold=threshold)
    for data in stored:
        assert pack(unpack(data)) == data


@pytest.mark.parametrize("field", ["name", "media_type", "uri"])
def test_refusals_are_the_generic_encoders(field: str) -> None:
    bad = "a\udc80"
    if field == "uri":
        record = encode_entry("r", ReferenceEntry("r", bad, None), _put)
    else:
        entry = FileEntry("f", 1, hash_bytes(b"f"), (ChunkRef(hash_bytes(b"c"), 1),),
                          media_type=bad if field == "media_type" else "text/plain")
        record = encode_entry(bad if field == "name" else "f", entry, _put)
    _same_outcome("entries", [record])
    with pytest.raises(InvalidInputError):
        pack_node("entries", [record])


_name_chars = st.sampled_from(list("abcXYZ019._-.:?#;~ é"))


@settings(max_examples=500)
@given(st.text(_name_chars, min_size=1, max_size=14)
       | st.sampled_from(["a.tar.gz", "b.TGZ", "c.svgz", ".gz", "..gz", "x.f.gz", "d.JPG",
                          ".hidden.txt", "m.tar.bz2", "n.b.c.tar.xz", "data:x.bin"]))
def test_media_type_cache_gives_the_tables_answer(name: str) -> None:
    assert entries_mod.guess_media_type("dir/" + name) == entries_mod._guess(name)
