"""Big chunks for big compressible files (design §2.2, issue 20): the rule, the config,
deduplication on edits, and a frozen store made with them (golden-v1-bigchunks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from artifactstore.backends import open_backend
from artifactstore.backends.readonly import ReadOnlyBackend
from artifactstore.core import encoding
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import FormatError, InvalidInputError
from artifactstore.core.synthetic import csv_rows, random_bytes
from artifactstore.maintenance.verify import verify_objects
from artifactstore.objects.bigchunks import BigChunks, looks_compressible
from artifactstore.objects.blobrefs import FileRef
from artifactstore.objects.config import StoreConfig, load
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import FLAG_ZSTD, Compression, Kind, seal
from artifactstore.objects.layout import CONFIG_KEY
from artifactstore.objects.store import ObjectStore
from artifactstore.testing.golden import blob_envelopes, read_file_refs

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden-v1-bigchunks"
SMALL = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
#: a profile small enough for unit tests: files of 64 KiB and more, 32 KiB chunks
BIG = BigChunks(chunker=ChunkerParams(min_size=8192, avg_size=32768, max_size=131072),
                min_file=65536, probe=4096)


def _store(tmp_path: Path, big: BigChunks | None = BIG, name: str = "s") -> ObjectStore:
    config = StoreConfig.new(chunker=SMALL, pack_target=1 << 20, big_chunks=big)
    return ObjectStore.open(open_backend(str(tmp_path / name)), create=config,
                            cache_dir=tmp_path / f"cache-{name}")


class _Trickle:
    """A stream that returns at most ``step`` bytes a read (short reads)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        part = self._data[self._pos : self._pos + n]
        self._pos += len(part)
        return part


def test_the_rule_takes_text_and_leaves_binary() -> None:
    import numpy as np

    weights = (np.random.default_rng(1).standard_normal(1 << 14) * 0.02).astype("float32")
    assert looks_compressible(csv_rows(65536, seed=1), 50)
    assert looks_compressible(b"\0" * 4096, 50)
    assert not looks_compressible(random_bytes(65536, seed=1), 50)
    assert not looks_compressible(weights.tobytes(), 50)
    assert not looks_compressible(b"", 0)


def test_big_text_files_get_big_chunks_and_others_keep_the_store_chunker(
        tmp_path: Path) -> None:
    text = csv_rows(400_000, seed=3)
    noise = random_bytes(400_000, seed=4)
    short = csv_rows(60_000, seed=5)  # below min_file
    with _store(tmp_path) as store:
        refs = {n: store.write_bytes(d) for n, d in
                (("text", text), ("noise", noise), ("short", short))}
        assert max(c.length for c in refs["text"].chunks) > SMALL.max_size
        assert min(c.length for c in refs["text"].chunks[:-1]) >= BIG.chunker.min_size
        assert max(c.length for c in refs["noise"].chunks) <= SMALL.max_size
        assert max(c.length for c in refs["short"].chunks) <= SMALL.max_size
        for name, data in (("text", text), ("noise", noise), ("short", short)):
            assert store.read_file(refs[name]) == data


def test_a_store_without_the_profile_cuts_every_file_alike(tmp_path: Path) -> None:
    text = csv_rows(400_000, seed=3)
    with _store(tmp_path, big=None) as store:
        ref = store.write_bytes(text)
        assert max(c.length for c in ref.chunks) <= SMALL.max_size
        assert store.config.big_chunks is None


@settings(max_examples=20, deadline=None)
@given(size=st.integers(0, 300_000), step=st.integers(1, 100_000),
       text=st.booleans())
def test_streamed_and_in_memory_files_are_cut_alike(tmp_path_factory: pytest.TempPathFactory,
                                                    size: int, step: int, text: bool) -> None:
    # Deduplication needs the same chunks for the same content on every path.
    data = (csv_rows(size, seed=7) if text else random_bytes(size, seed=7))[:size]
    tmp_path = tmp_path_factory.mktemp("cut")
    with _store(tmp_path) as store:
        whole = store.write_bytes(data)
        streamed = store.write_file(_Trickle(data, step))  # type: ignore[arg-type]
        assert streamed == whole
        assert store.read_file(streamed) == data


def test_edits_store_only_the_chunks_they_touch(tmp_path: Path) -> None:
    rows = csv_rows(2_000_000, seed=8)
    edited = rows[:1_000_000] + b"9,9,inserted,0.1,0.2,0.3,4\n" * 100 + rows[1_000_000:]
    with _store(tmp_path) as store:
        store.write_bytes(rows)
        before = store.stats.bytes_new
        store.write_bytes(edited)
        added = store.stats.bytes_new - before
    assert 0 < added <= 4 * BIG.chunker.max_size


def test_big_chunks_are_sealed_with_the_profile_zstd_parameters(tmp_path: Path) -> None:
    text = csv_rows(400_000, seed=3)
    with _store(tmp_path) as store:
        ref = store.write_bytes(text)
    blobs = blob_envelopes(tmp_path / "s")
    header = blobs[ref.chunks[0].id.raw][:8]
    assert header[6] & FLAG_ZSTD
    tuned = seal(Kind.CHUNK, text[: ref.chunks[0].length], BIG.compression)
    assert blobs[ref.chunks[0].id.raw] == tuned


def test_encrypted_big_chunks_round_trip(tmp_path: Path) -> None:
    text = csv_rows(300_000, seed=9)
    config = StoreConfig.new(chunker=SMALL, big_chunks=BIG)
    backend = open_backend(str(tmp_path / "enc"))
    keys = DomainKeys.from_epoch_key(bytes(range(32)))
    with ObjectStore.open(backend, create=config, keys=keys, cache_dir=tmp_path / "c") as s:
        ref = s.write_bytes(text)
        assert max(c.length for c in ref.chunks) > SMALL.max_size
    with ObjectStore.open(backend, keys=keys, cache_dir=tmp_path / "c2") as s:
        assert s.read_file(ref) == text


def test_config_keeps_the_profile_and_old_clients_can_parse_the_rest(tmp_path: Path) -> None:
    backend = open_backend(f"memory://big-{tmp_path.name}")
    wanted = StoreConfig.new()
    backend.put(CONFIG_KEY, wanted.to_bytes())
    assert load(backend) == wanted
    assert wanted.big_chunks == BigChunks()
    assert wanted.largest_chunk == 2 << 20
    body = encoding.unpack(wanted.to_bytes()[8:])
    # The fields an older client reads strictly are as they were (no "params").
    assert body["compression"] == {"algorithm": "zstd", "level": 1, "min_saving": 0.1}
    assert body["chunker"] == ChunkerParams().to_dict()
    assert set(body["big_chunks"]) == {"chunker", "compression", "min_file", "probe",
                                       "top16_percent"}


def test_uncompressed_stores_keep_big_chunks_uncompressed() -> None:
    config = StoreConfig.new(compression=Compression(algorithm="none"))
    assert config.big_chunks is not None
    assert config.big_chunks.compression.algorithm == "none"


def test_a_damaged_profile_is_a_format_error(tmp_path: Path) -> None:
    backend = open_backend(f"memory://bad-{tmp_path.name}")
    body = encoding.unpack(StoreConfig.new().to_bytes()[8:])
    body["big_chunks"] = {"chunker": body["chunker"]}
    backend.put(CONFIG_KEY, seal(Kind.CONFIG, encoding.pack(body)))
    with pytest.raises(FormatError, match="big_chunks"):
        load(backend)


def test_compression_parameters_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="unknown zstd parameter"):
        Compression(params=(("speed", 1),))
    with pytest.raises(InvalidInputError, match="sorted"):
        Compression(params=(("min_match", 7), ("hash_log", 16)))
    assert Compression.from_dict({"algorithm": "zstd", "level": 1, "min_saving": 0.1,
                                  "params": {"min_match": 7, "hash_log": 16}}).params == (
        ("hash_log", 16), ("min_match", 7))
    with pytest.raises(InvalidInputError, match="probe"):
        BigChunks(min_file=10, probe=100)


# -- the frozen store -------------------------------------------------------------

EXPECTED = {
    "big.csv": csv_rows(200_000, seed=3),
    "noise.bin": random_bytes(70_000, seed=4),
    "small.csv": csv_rows(20_000, seed=5),
}


def _refs() -> dict[str, FileRef]:
    return read_file_refs(DATA / "golden-v1-bigchunks.json")


def test_golden_big_chunk_store_reads_and_verifies(tmp_path: Path) -> None:
    store = ObjectStore.open(ReadOnlyBackend(open_backend(str(GOLDEN))),
                             cache_dir=tmp_path / "cache")
    with store:
        assert store.config.big_chunks is not None
        assert store.config.big_chunks.min_file == 65536
        refs = _refs()
        assert set(refs) == set(EXPECTED)
        for name, data in EXPECTED.items():
            assert store.read_file(refs[name]) == data, name
    assert verify_objects(ObjectStore.open(ReadOnlyBackend(open_backend(str(GOLDEN))),
                                           cache_dir=tmp_path / "c2")).ok


def test_current_writer_reproduces_the_golden_big_chunk_blobs(tmp_path: Path) -> None:
    # Same config and input give the same cut points and byte-identical envelopes.
    shutil.copy(GOLDEN / "config", tmp_path / "config")
    with ObjectStore.open(open_backend(str(tmp_path)), cache_dir=tmp_path / "c") as store:
        refs = {name: store.write_bytes(data) for name, data in EXPECTED.items()}
    assert refs == _refs()
    assert blob_envelopes(tmp_path) == blob_envelopes(GOLDEN)



@pytest.mark.parametrize("through", ["file", "read-only stream"])
def test_a_big_file_read_into_reused_buffers_is_cut_and_hashed_alike(
        tmp_path: Path, through: str) -> None:
    """A file of over three reads is read into reused buffers (objects/store.py,
    core/readbuffers.py), from a file's ``readinto`` or, for a stream with ``read``
    only, copied into them: the same chunks, ids and digest as the bytes in memory,
    and the same bytes read back (its chunks waited in packs as views of them)."""
    data = csv_rows(26 << 20, seed=11)[: 26 << 20]  # over three 8 MiB reads
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    with _store(tmp_path) as store:
        whole = store.write_bytes(data)
    with _store(tmp_path, name="t") as store:
        if through == "file":
            with path.open("rb") as f:
                streamed = store.write_file(f, size_hint=len(data))
        else:
            streamed = store.write_file(_Trickle(data, 3 << 20),  # type: ignore[arg-type]
                                        size_hint=len(data))
        store.flush()
        assert streamed == whole
        assert store.read_file(streamed) == data


#: the big-chunk zstd parameters of stores made before session 14 (and of the golden stores)
_DFAST = (("chain_log", 14), ("hash_log", 16), ("min_match", 7), ("search_log", 1),
          ("strategy", 2), ("target_length", 0), ("window_log", 22))


def test_new_stores_compress_big_chunks_with_zstd_fast_and_old_stores_keep_theirs(
        tmp_path: Path) -> None:
    params = dict(BigChunks().compression.params)
    assert params["strategy"] == 1
    assert params["hash_log"] == 12
    assert params["min_match"] == 7
    assert params["target_length"] == 0  # literals stay Huffman-coded
    text = csv_rows(400_000, seed=5)
    fast = seal(Kind.CHUNK, text, BigChunks().compression)
    assert fast[6] & FLAG_ZSTD
    assert len(fast) < len(text) // 2
    # A store whose config names the earlier "dfast" keeps writing with it.
    old = BigChunks(chunker=BIG.chunker, min_file=BIG.min_file, probe=BIG.probe,
                    compression=Compression(params=_DFAST))
    _store(tmp_path, old).close()
    with ObjectStore.open(open_backend(str(tmp_path / "s")),
                          cache_dir=tmp_path / "c2") as store:
        assert store.config.big_chunks is not None
        assert store.config.big_chunks.compression.params == _DFAST
        ref = store.write_bytes(text)
    blobs = blob_envelopes(tmp_path / "s")
    assert blobs[ref.chunks[0].id.raw] == seal(Kind.CHUNK, text[: ref.chunks[0].length],
                                               old.compression)
