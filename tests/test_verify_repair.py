"""Whole-store verify (structure, --read-data, subsets) and 'repair index' (lifecycle issue)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from artifactstore.core.digest import Digest
from artifactstore.core.errors import IntegrityError, InvalidInputError
from artifactstore.core.synthetic import random_bytes
from artifactstore.local.identity import load_or_create_identity
from artifactstore.maintenance.projects import create_project
from artifactstore.maintenance.repair import rebuild_index, repair_index
from artifactstore.maintenance.verify import Subset, verify_store
from artifactstore.repository.opening import open_objects
from cli_calls import cli, cli_json

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.backends.local import LocalBackend
from artifactstore.model.tree import FileEntry
from artifactstore.objects import index as index_mod
from artifactstore.objects import scan as scan_mod
from artifactstore.objects.envelope import Kind, seal
from artifactstore.objects.layout import pack_key, pack_prefix
from artifactstore.objects.packs import PackBuilder, assemble, check_pack, read_tail

KiB = 1 << 10


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "me"))
    monkeypatch.delenv("ARTIFACTSTORE_URL", raising=False)


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def log_history(store: artifactstore.Store, tmp_path: Path) -> dict[str, dict[str, bytes]]:
    """Two artifacts, three versions; weights.bin is the same in model:v0 and v1."""
    weights = random_bytes(300 * KiB, seed=1)
    history = {
        "model:v0": {"weights.bin": weights, "config.json": b'{"lr": 0.1}'},
        "model:v1": {"weights.bin": weights, "config.json": b'{"lr": 0.01}'},
        "data:v0": {"rows.csv": b"a,b\n1,2\n" * 5000, "img/x.bin": random_bytes(90 * KiB, 2)},
    }
    for ref, files in history.items():
        name = ref.split(":")[0]
        folder = write(tmp_path / "in" / ref.replace(":", "-"), files)
        store.log_artifact(folder, name=name, type="model" if name == "model" else "dataset")
    return history


def assert_downloads(store: artifactstore.Store, history: dict[str, dict[str, bytes]],
                     out: Path) -> None:
    for ref, files in history.items():
        target = store.artifact(ref).download(out / ref.replace(":", "-"))
        for name, data in files.items():
            assert (target / name).read_bytes() == data, (ref, name)
        assert store.artifact(ref).verify() == len(files)


def drop_indexes(url: str) -> list[str]:
    backend = open_backend(url)
    dropped = [k for k in backend.list("objects/") if k.split("/")[2] == "index"]
    for key in dropped:
        backend.delete(key)
    backend.close()
    return dropped


def chunk_location(store: artifactstore.Store, ref: str, path: str) -> tuple[str, int]:
    """The pack key holding the first chunk of ``path`` and the middle of that chunk."""
    entry = store.artifact(ref).entry(path)
    assert isinstance(entry, FileEntry)
    where = store.objects.locate(entry.chunks[0].id)
    return pack_key(store.objects.domain, where.pack), where.offset + where.length // 2


def flip(url: str, key: str, offset: int) -> None:
    backend = open_backend(url)
    data = bytearray(backend.get(key))
    data[offset] ^= 0x40
    backend.put(key, bytes(data))
    backend.close()


@contextmanager
def opened(url: str, tmp_path: Path, project: str | None = None) -> Iterator[artifactstore.Store]:
    with artifactstore.open(url, project, cache_dir=tmp_path / "cache") as store:
        yield store


# -- verify ---------------------------------------------------------------------------


def test_a_clean_store_verifies_structure_without_reading_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
    code, report = cli_json(capsys, "verify", "--store", url)
    assert code == 0
    assert report["ok"] is True
    assert report["versions"] == 3
    assert report["files"] == 6
    assert report["packs"] == report["bytes"] == 0  # nothing re-hashed
    assert report["packs_total"] >= 3
    assert report["damaged"] == report["affected"] == []
    code, report = cli_json(capsys, "verify", "--store", url, "--read-data")
    assert code == 0
    assert report["packs"] == report["packs_total"]
    assert report["bytes"] > 390 * KiB
    code, out, _ = cli(capsys, "verify", "--store", url)
    assert code == 0
    assert out.startswith("ok: 3 versions, 6 files")


def test_the_structure_check_reads_only_index_objects_and_structure_blobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
    whole: list[str] = []
    ranges: list[int] = []
    get, get_range = LocalBackend.get, LocalBackend.get_range

    def counting_get(self: LocalBackend, key: str) -> bytes:
        whole.append(key)
        return get(self, key)

    def counting_range(self: LocalBackend, key: str, start: int, length: int) -> bytes:
        ranges.append(length)
        return get_range(self, key, start, length)

    monkeypatch.setattr(LocalBackend, "get", counting_get)
    monkeypatch.setattr(LocalBackend, "get_range", counting_range)
    assert verify_store(url, read_data=False, cache_dir=tmp_path / "cache").ok
    assert not [k for k in whole if "/packs/" in k]
    assert 0 < sum(ranges) < 8 * KiB  # manifests, tree nodes: not the 800 KiB of data


def test_a_corrupt_byte_names_the_pack_the_file_and_both_versions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
        key, middle = chunk_location(store, "model:v1", "weights.bin")
    flip(url, key, middle)
    code, report = cli_json(capsys, "verify", "--store", url, "--read-data")
    assert code == 5
    assert report["ok"] is False
    assert report["error"] == "IntegrityError"
    assert [d["object"] for d in report["damaged"]] == [key]
    assert report["damaged"][0]["blobs"] == 1
    affected = {(a["ref"], a["path"], a["object"]) for a in report["affected"]}
    # precise: only the file whose chunk broke, not everything sharing the pack
    assert affected == {("model:v0", "weights.bin", key), ("model:v1", "weights.bin", key)}
    assert key in report["message"]
    code, out, err = cli(capsys, "verify", "--store", url, "--read-data")
    assert code == 5
    (line,) = out.splitlines()
    assert line.startswith(f"pack {key} is damaged (1 of ")
    assert line.endswith(" blobs fail their check): affects model:v0 (weights.bin), "
                         "model:v1 (weights.bin)")
    assert err.count("\n") == 1
    assert err.startswith(f"artifactstore: error: 1 damaged object(s), the first: pack {key} ")
    # A 100% subset is --read-data.
    code, subset = cli_json(capsys, "verify", "--store", url, "--read-data-subset", "100%")
    assert code == 5
    assert subset["affected"] == report["affected"]


def test_structure_check_names_a_missing_pack_and_the_versions_it_breaks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
        key, _ = chunk_location(store, "model:v0", "weights.bin")
    backend = open_backend(url)
    backend.delete(key)
    code, report = cli_json(capsys, "verify", "--store", url)
    assert code == 5
    (damaged,) = report["damaged"]
    assert damaged["object"] == key
    assert "is missing" in damaged["problem"]
    refs = {a["ref"] for a in report["affected"]}
    assert refs == {"model:v0", "model:v1"}  # data:v0 does not use the pack
    assert {"ref": "model:v1", "path": "weights.bin", "object": key} in report["affected"]


def test_structure_check_catches_a_damaged_tree_node_without_read_data(
        tmp_path: Path) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
        record = store.artifact("data:v0").record
        where = store.objects.locate(record.digest)  # the root tree node
        key = pack_key(store.objects.domain, where.pack)
    flip(url, key, where.offset + where.length - 3)
    report = verify_store(url, read_data=False, cache_dir=tmp_path / "cache")
    assert not report.ok
    assert report.total("packs_checked") == 0
    assert [d.object for d in report.damage] == [key]
    assert [(a.ref, a.path) for a in report.affected] == [("data:v0", None)]
    assert report.damage_lines()[0].endswith("affects data:v0 (file list)")


def test_read_data_subsets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    open_objects(url, create=True, pack_target=32 * KiB).close()
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
    code, full = cli_json(capsys, "verify", "--store", url, "--read-data")
    assert code == 0
    packs = full["packs"]
    assert packs >= 6
    code, all_of_them = cli_json(capsys, "verify", "--store", url, "--read-data-subset", "100%")
    assert (all_of_them["packs"], all_of_them["blobs"]) == (full["packs"], full["blobs"])
    code, few = cli_json(capsys, "verify", "--store", url, "--read-data-subset", "1%")
    assert code == 0
    assert few["packs"] == 1
    code, half = cli_json(capsys, "verify", "--store", url, "--read-data-subset", "0.5")
    assert half["packs"] == (packs + 1) // 2
    groups = [cli_json(capsys, "verify", "--store", url, "--read-data-subset", f"{n}/3")[1]
              for n in (1, 2, 3)]
    assert sum(g["packs"] for g in groups) == packs
    # The same seed picks the same packs; the subset is a pure function of the ids.
    ids = [Digest(bytes([i]) * 32) for i in range(40)]
    assert Subset.parse("25%", seed=7).choose(ids) == Subset.parse("25%", seed=7).choose(ids)
    assert Subset.parse("25%", seed=7).choose(ids) != Subset.parse("25%", seed=8).choose(ids)
    assert len(Subset.parse("25%").choose(ids)) == 10


@pytest.mark.parametrize("value", ["150%", "abc", "0", "0%", "3/2", "0/4", "-1%", "nan"])
def test_bad_subsets_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         value: str) -> None:
    url = str(tmp_path / "s")
    open_objects(url, create=True).close()
    code, _, err = cli(capsys, "verify", "--store", url, f"--read-data-subset={value}")
    assert code == 2
    assert err.count("\n") == 1
    assert "read-data subset" in err
    with pytest.raises(InvalidInputError):
        Subset.parse(value)


def test_read_data_flags_belong_to_the_whole_store_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
    code, _, err = cli(capsys, "verify", "model:v0", "--store", url, "--read-data")
    assert code == 2
    assert "verify without REF" in err
    assert cli(capsys, "verify", "model:v0", "--store", url)[0] == 0  # unchanged
    with pytest.raises(SystemExit) as exited:
        cli(capsys, "verify", "--store", url, "--read-data", "--read-data-subset", "5%")
    assert exited.value.code == 2


# -- repair index -----------------------------------------------------------------------


def test_repair_index_after_every_index_object_is_lost(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        history = log_history(store, tmp_path)
        packs = sorted(open_backend(url).list(pack_prefix("plain")))
    assert drop_indexes(url)
    code, _, err = cli(capsys, "get", "model:v1", "--store", url, "--dir", str(tmp_path / "x"))
    assert code == 3
    assert "blob" in err
    code, report = cli_json(capsys, "verify", "--store", url)
    assert code == 5
    assert "repair index" in report["damaged"][0]["problem"]
    assert {a["ref"] for a in report["affected"]} == set(history)

    code, repaired = cli_json(capsys, "repair", "index", "--store", url)
    assert code == 0
    assert repaired["packs_indexed"] == packs
    assert repaired["index_objects_written"]
    assert repaired["damaged_packs"] == repaired["removed_index_objects"] == []
    code, again = cli_json(capsys, "repair", "index", "--store", url)
    assert (code, again["index_objects_written"], again["trailers_read"]) == (0, [], 0)

    for ref, files in history.items():
        out = tmp_path / "out" / ref.replace(":", "-")
        assert cli(capsys, "get", ref, "--store", url, "--dir", str(out), "-q")[0] == 0
        for name, data in files.items():
            assert (out / name).read_bytes() == data
        assert cli(capsys, "verify", ref, "--store", url, "--dir", str(out))[0] == 0
    code, report = cli_json(capsys, "verify", "--store", url, "--read-data")
    assert (code, report["ok"], report["packs"]) == (0, True, len(packs))
    with opened(url, tmp_path) as store:  # the local index cache follows the new objects
        assert_downloads(store, history, tmp_path / "again")


def test_repair_index_of_a_private_project(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    load_or_create_identity()
    artifactstore.open(url, cache_dir=tmp_path / "cache", create=True).close()
    create_project("lab", url)
    with opened(url, tmp_path, "lab") as store:
        assert store.refs.codec.encrypted
        history = log_history(store, tmp_path)
        domain = store.objects.domain
    assert drop_indexes(url)
    code, report = cli_json(capsys, "verify", "--store", url, "--project", "lab")
    assert code == 5
    assert {a["ref"] for a in report["affected"]} == set(history)
    code, repaired = cli_json(capsys, "repair", "index", "--store", url, "--project", "lab")
    assert code == 0
    assert domain in repaired["domains"]
    assert repaired["packs_indexed"]
    assert all(k.startswith(f"objects/{domain}/") for k in repaired["packs_indexed"])
    code, report = cli_json(capsys, "verify", "--store", url, "--project", "lab", "--read-data")
    assert (code, report["ok"]) == (0, True)
    with opened(url, tmp_path, "lab") as store:
        assert_downloads(store, history, tmp_path / "out")


def test_damaged_index_objects_are_replaced_then_removed(tmp_path: Path) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        history = log_history(store, tmp_path)
    backend = open_backend(url)
    victims = sorted(backend.list("objects/plain/index/"))[:2]
    for victim in victims:
        flip(url, victim, 20)
    report = verify_store(url, read_data=False, cache_dir=tmp_path / "cache")
    assert [d.object for d in report.damage[:2]] == victims
    assert "cannot be read" in report.damage[0].problem
    assert report.affected  # their blobs are in no readable index now
    with open_objects(url, cache_dir=tmp_path / "c2") as objects:
        repaired = rebuild_index(objects)
        assert repaired.removed_index_objects == victims
        assert len(repaired.index_objects_written) == 1  # one object lists both flushes
        assert not rebuild_index(objects).changed
    assert not set(victims) & set(backend.list("objects/plain/index/"))
    assert verify_store(url, cache_dir=tmp_path / "cache").ok
    with artifactstore.open(url, cache_dir=tmp_path / "c3") as store:
        assert_downloads(store, history, tmp_path / "out")


def test_a_replacement_equal_to_the_damaged_index_object_overwrites_it(tmp_path: Path) -> None:
    # Index objects are named by their bytes: rebuilding the packs of one damaged
    # object gives the same bytes, so the same key, and the put repairs it in place.
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
    victim = sorted(open_backend(url).list("objects/plain/index/"))[0]
    flip(url, victim, 20)
    with open_objects(url, cache_dir=tmp_path / "c2") as objects:
        repaired = rebuild_index(objects)
    assert repaired.index_objects_written == [victim]
    assert repaired.removed_index_objects == []
    assert verify_store(url, cache_dir=tmp_path / "cache").ok


def test_packs_whose_trailer_does_not_check_are_named_not_indexed(tmp_path: Path) -> None:
    url = str(tmp_path / "s")
    with opened(url, tmp_path) as store:
        log_history(store, tmp_path)
    backend = open_backend(url)
    bad = sorted(backend.list(pack_prefix("plain")))[0]
    flip(url, bad, len(backend.get(bad)) - 20)  # inside the trailer
    drop_indexes(url)
    report = repair_index(url, cache_dir=tmp_path / "cache")
    plain = report.domains["plain"]
    assert [line.split(":")[0] for line in plain.damaged_packs] == [bad]
    assert bad not in plain.packs_indexed
    assert len(plain.packs_indexed) == plain.packs - 1
    # verify names the pack as unindexed and each blob it held as in no index
    checked = verify_store(url, read_data=False, cache_dir=tmp_path / "cache")
    assert checked.domains["plain"].unindexed_packs == [bad]
    assert not checked.ok
    assert {d.kind for d in checked.damage} == {"blob"}
    assert checked.affected


def test_a_pack_split_across_index_objects_is_listed_again_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Index objects hold at most MAX_ENTRIES_PER_INDEX blobs, so a pack can be listed
    # by two of them; losing the second must not leave the pack half-indexed.
    monkeypatch.setattr(index_mod, "MAX_ENTRIES_PER_INDEX", 3)
    monkeypatch.setattr(scan_mod, "MAX_ENTRIES_PER_INDEX", 3)
    url = str(tmp_path / "s")
    data = random_bytes(400 * KiB, seed=9)
    with open_objects(url, create=True, cache_dir=tmp_path / "c1") as objects:
        ref = objects.write_bytes(data)
        objects.flush()
    assert len(ref.chunks) > 3
    backend = open_backend(url)
    indexes = sorted(backend.list("objects/plain/index/"))
    assert len(indexes) >= 2
    for key in indexes[1:]:  # keep one full index object: the pack's first blobs
        backend.delete(key)
    with open_objects(url, cache_dir=tmp_path / "c2") as objects:
        report = rebuild_index(objects)
        assert report.trailers_read == 1
        assert report.blobs_indexed == len(ref.chunks)
    with open_objects(url, cache_dir=tmp_path / "c3") as objects:
        assert objects.read_file(ref) == data
        assert not rebuild_index(objects).changed


def test_read_tail_reads_a_pack_from_its_trailer_alone() -> None:
    builder = PackBuilder()
    for i in range(5):
        blob = seal(Kind.CHUNK, bytes([i]) * 100)
        builder.add(Digest(bytes([i]) * 32), Kind.CHUNK, blob[:8], blob[8:], 100)
    pack = assemble(builder.take())
    entries = check_pack(pack.data, pack.id, what="p")
    tail_size = len(pack.data) - sum(e.length for e in entries)
    assert read_tail(pack.data[-tail_size:], pack.id, len(pack.data), what="p") == entries
    assert read_tail(pack.data, pack.id, len(pack.data), what="p") == entries
    with pytest.raises(IntegrityError, match="part of the trailer"):
        read_tail(pack.data[-tail_size + 4:], pack.id, len(pack.data), what="p")
    with pytest.raises(IntegrityError, match="does not match its id"):
        read_tail(pack.data[-tail_size:], Digest(b"\0" * 32), len(pack.data), what="p")
    with pytest.raises(IntegrityError, match="unlisted bytes"):
        read_tail(pack.data[-tail_size:], pack.id, len(pack.data) + 1, what="p")

