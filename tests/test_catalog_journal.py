"""The change journal (design §12.8): writers name each new record in it, and a warm
catalog sync lists only the journal's window instead of every record."""

from __future__ import annotations

import builtins
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from record_calls import commit, digest

from artifactstore.backends import open_backend_stack
from artifactstore.backends.base import list_after
from artifactstore.backends.memory import MemoryBackend
from artifactstore.core.crypto import SigningKey
from artifactstore.local.catalog import Catalog
from artifactstore.objects.domainkeys import DomainKeys
from artifactstore.objects.envelope import Kind
from artifactstore.records import bundles, journal
from artifactstore.records.codec import PLAIN, KeyRing, RecordCodec
from artifactstore.records.lifecycle import LifecycleLog
from artifactstore.records.refs import Refs
from artifactstore.records.runs import RunLog, RunStart, new_run_id
from artifactstore.testing import BackendSpec, MotoS3Server
from artifactstore.testing.listings import ListingRecorder

CountingBackend = ListingRecorder


def backend() -> CountingBackend:
    return CountingBackend(f"journal-{uuid.uuid4().hex}")


def start_run(log: RunLog) -> str:
    run_id = new_run_id()
    log.write_start(RunStart(project="p", run_id=run_id, name="r", job_type="train", tags=(),
                             config={}, started_at=datetime.now(UTC).isoformat(), by="me",
                             env={}, code=None, heartbeat=30.0))
    return run_id


def entries(b: MemoryBackend) -> list[str]:
    return [k for k in MemoryBackend.list(b, journal.journal_prefix("p"))]



def _synced(artifact: str) -> tuple[CountingBackend, Refs, Catalog]:
    """A store holding one version of ``artifact``, and a catalog that synced it."""
    b = backend()
    refs = Refs(b, "p")
    commit(refs, artifact, 1)
    catalog = Catalog(b, "p", None)
    catalog.sync()
    return b, refs, catalog

def test_every_create_only_record_gets_one_journal_entry() -> None:
    b = backend()
    refs = Refs(b, "p")
    commit(refs, "m", 1)
    refs.set_alias("m", "prod", 0)
    log = RunLog(b, "p")
    run_id = start_run(log)
    log.append_event(run_id, 0, {"type": "use", "artifact": "m", "number": 0,
                                 "digest": digest(1).raw, "ref": "m:v0"})
    LifecycleLog(b, "p").append("delete", by="me", artifact="m", numbers=[0])
    named = sorted(str(journal.record_of("p", e)) for e in entries(b))
    records = sorted(k for k in MemoryBackend.list(b, "projects/p/")
                     if "/journal/" not in k and k != journal.head_key("p"))
    assert named == records
    assert len(named) == 5


def test_a_warm_sync_lists_the_journal_window_and_fetches_only_what_is_new() -> None:
    b = backend()
    refs = Refs(b, "p")
    for i in range(5):
        commit(refs, f"m{i}", i)
    catalog = Catalog(b, "p", None)
    first = catalog.sync()
    assert first.full
    assert first.fetched == 5
    b.listed.clear()
    empty = catalog.sync()
    assert not empty.full
    assert empty.fetched == 0
    assert b.listed == [journal.journal_prefix("p")]  # one listing: the journal's tail
    commit(refs, "m9", 9)
    refs.set_alias("m9", "prod", 0)
    new = catalog.sync()
    assert (new.full, new.fetched) == (False, 2)
    assert {r.artifact for r, _ in catalog.versions()} == {*(f"m{i}" for i in range(5)), "m9"}
    assert catalog.current_aliases() == {("m9", 0): ["prod"]}


def test_records_without_entries_show_at_the_next_full_listing() -> None:
    """An old writer (or one that died before its entry): the journal misses the record;
    a full listing (forced, or when ``full_age`` has passed) finds it."""
    b = backend()
    refs = Refs(b, "p")
    commit(refs, "old", 1)
    catalog = Catalog(b, "p", None)
    catalog.sync()
    commit(refs, "silent", 2)
    for entry in entries(b):
        b.delete(entry)
    assert catalog.sync().fetched == 0
    assert catalog.sync(full=True).fetched == 1
    commit(refs, "silent2", 3)
    for entry in entries(b):
        b.delete(entry)
    catalog.full_age = 0.0
    stats = catalog.sync()
    assert stats.full
    assert {r.artifact for r, _ in catalog.versions()} == {"old", "silent", "silent2"}


def test_a_deleted_record_is_only_seen_gone_by_a_full_listing() -> None:
    b, _refs, catalog = _synced("m")
    b.delete("projects/p/artifacts/m/versions/0000000000")
    catalog.sync()
    assert [gone for _, gone in catalog.versions()] == [False]
    catalog.sync(full=True)
    assert [gone for _, gone in catalog.versions()] == [True]


def test_forged_entries_are_hints_that_cost_a_request_at_most() -> None:
    """The storage admin can write entries: one naming no record is skipped after a GET
    that finds nothing, and one naming a key outside the record prefixes is not read."""
    b, _refs, catalog = _synced("m")
    now = datetime.now(UTC)
    for rel in ("artifacts/ghost/versions/0000000003", "members/x", "q/artifacts/a/b",
                "objects/abc"):
        b.put(f"{journal.journal_prefix('p')}{now:%Y%m%d%H%M%S%f}-0badf00d~"
              + rel.replace("/", "~"), b"")
    b.put(f"{journal.journal_prefix('p')}junk", b"")
    stats = catalog.sync()
    assert (stats.full, stats.fetched) == (False, 0)
    assert [r.artifact for r, _ in catalog.versions()] == ["m"]
    assert journal.record_of("p", f"{journal.journal_prefix('p')}x~members~y") is None
    stamp = f"{now:%Y%m%d%H%M%S%f}-0badf00d"
    assert journal.record_of("p", f"{journal.journal_prefix('p')}{stamp}~runs/x") is None


def test_an_entry_landing_late_inside_the_grace_is_seen() -> None:
    """A writer read its clock before the reader's last sync, its entry landed after."""
    b, refs, catalog = _synced("a")
    catalog.sync()
    key = "projects/p/artifacts/late/versions/0000000000"
    commit(refs, "late", 2)
    for entry in entries(b):
        if journal.record_of("p", entry) == key:
            b.delete(entry)
    earlier = datetime.now(UTC) - journal.GRACE + timedelta(seconds=30)
    b.put(journal.entry_key("p", key, earlier), b"")
    assert catalog.sync().fetched == 1


def test_a_private_project_journal_names_tags_not_names() -> None:
    b = backend()
    ring = KeyRing({0: DomainKeys.from_epoch_key(bytes(range(32)))}, name_key=bytes(32))
    codec = RecordCodec(ring=ring)
    refs = Refs(b, "p", codec)
    commit(refs, "secret-model", 1)
    catalog = Catalog(b, "p", None, codec=codec)
    catalog.sync()
    commit(refs, "secret-other", 2)
    assert all("secret" not in e for e in entries(b))
    assert catalog.sync().fetched == 1
    assert {r.artifact for r, _ in catalog.versions()} == {"secret-model", "secret-other"}


def test_the_window_starts_grace_before_the_last_sync() -> None:
    t = datetime(2026, 12, 7, 0, 58, tzinfo=UTC)
    start = journal.window_start("p", t)
    before = journal.entry_key("p", "projects/p/runs/x/start", t - journal.GRACE
                               - timedelta(microseconds=1))
    inside = journal.entry_key("p", "projects/p/runs/x/start", t - journal.GRACE)
    assert before < start < inside


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from(["record", "entry", "sync"])),
                max_size=30))
def test_interleaved_writers_and_a_journal_reader_agree_with_a_full_listing(
    steps: list[tuple[str, str]],
) -> None:
    """Two writers whose record and entry land at separate moments, a reader syncing in
    between: once every entry has landed, one journal sync knows every record."""
    b = backend()
    reader = Catalog(b, "p", None)
    reader.sync()
    pending: dict[str, list[str]] = {"a": [], "b": []}
    counter = 0
    for writer, step in steps:
        if step == "record":
            counter += 1
            name = f"{writer}{counter}"
            key = f"projects/p/artifacts/{name}/versions/0000000000"
            silent = Refs(_NoJournal(b), "p")
            commit(silent, name, counter)
            pending[writer].append(key)
        elif step == "entry" and pending[writer]:
            journal.note(b, "p", pending[writer].pop(0))
        else:
            reader.sync()
    for writer in "ab":
        for key in pending[writer]:
            journal.note(b, "p", key)
    reader.sync()
    full = Catalog(b, "p", None)
    full.sync(full=True)
    assert [r for r, _ in reader.versions()] == [r for r, _ in full.versions()]


class _NoJournal(MemoryBackend):
    """The same objects, with journal entries dropped (the test writes them itself)."""

    def __init__(self, inner: MemoryBackend) -> None:
        super().__init__(inner.url.removeprefix("memory://"))

    def put(self, key: str, data: bytes) -> None:
        if "/journal/" not in key:
            super().put(key, data)


@pytest.mark.s3
def test_list_after_is_one_request_on_s3(s3_spec: BackendSpec, s3_server: MotoS3Server) -> None:
    b = open_backend_stack(s3_spec.url, create=True, **s3_spec.options)
    for key in ("j/a", "j/b", "j/c", "jx", "k/a"):
        b.put(key, b"")
    s3_server.reset_count()
    assert list(list_after(b, "j/", "j/a")) == ["j/b", "j/c"]
    assert list(list_after(b, "j/", "")) == ["j/a", "j/b", "j/c"]
    assert list(list_after(b, "j/", "j/c")) == []
    assert s3_server.request_count == 3


@pytest.mark.s3
def test_a_warm_sync_on_s3_is_one_request(s3_spec: BackendSpec,
                                          s3_server: MotoS3Server) -> None:
    b = open_backend_stack(s3_spec.url, create=True, **s3_spec.options)
    refs = Refs(b, "p")
    for i in range(3):
        commit(refs, f"m{i}", i)
    catalog = Catalog(b, "p", None)
    catalog.sync()
    s3_server.reset_count()
    assert catalog.sync().fetched == 0
    assert s3_server.request_count == 1
    commit(Refs(b, "p"), "new", 9)
    s3_server.reset_count()
    assert catalog.sync().fetched == 1
    assert s3_server.request_count == 2  # the journal's tail and the new record
    assert "new" in catalog.artifact_numbers()


# -- record bundles (design §12.9) --------------------------------------------------------


class GetCounting(CountingBackend):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.gets = 0

    def get(self, key: str) -> bytes:
        self.gets += 1
        return super().get(key)


SIGNED = RecordCodec(signer=SigningKey.generate())


def signed_project(n: int, codec: RecordCodec = SIGNED) -> GetCounting:
    b = GetCounting(f"bundles-{uuid.uuid4().hex}")
    refs = Refs(b, "p", codec)
    for i in range(n):
        commit(refs, f"m{i}", i)
    log = RunLog(b, "p", codec)
    run_id = start_run(log)
    log.append_event(run_id, 0, {"type": "use", "artifact": "m0", "number": 0,
                                 "digest": digest(0).raw, "ref": "m0:v0"})
    return b


def test_a_first_sync_reads_bundles_instead_of_one_get_per_record() -> None:
    b = signed_project(250)
    assert bundles.write_bundles(b, "p", size=100) == 252
    assert bundles.write_bundles(b, "p", size=100) == 0  # nothing new to bundle
    commit(Refs(b, "p", SIGNED), "after", 999)  # not bundled: fetched on its own
    b.gets = 0
    catalog = Catalog(b, "p", None, codec=SIGNED)
    assert catalog.sync().fetched == 253
    assert b.gets == 3 + 1  # three bundles, one record
    fetched = Catalog(MemoryBackend(b.url.removeprefix("memory://")), "p", None, codec=SIGNED)
    fetched.sync()
    assert [r for r, _ in catalog.versions()] == [r for r, _ in fetched.versions()]
    assert catalog.runs() == fetched.runs()


def test_a_bundle_cannot_add_change_or_hide_records() -> None:
    """Bundled bytes stand for a record only when validly signed for that key; a record
    the listing lacks is not added; a tampered one is fetched instead."""
    b = signed_project(250)
    key0 = "projects/p/artifacts/m0/versions/0000000000"
    key1 = "projects/p/artifacts/m1/versions/0000000000"
    forged = bundles.encode([
        ("artifacts/m0/versions/0000000000", b.get(key1)),  # m1's record under m0's key
        ("artifacts/ghost/versions/0000000000", b.get(key1)),  # a record nobody listed
        ("artifacts/m2/versions/0000000000", PLAIN.seal(Kind.VERSION, key1, {"x": 1})),
    ])
    b.put("projects/p/bundles/20261207000000000000-00000000", forged)
    b.put("projects/p/bundles/20261207000000000001-00000000", b"not msgpack")
    catalog = Catalog(b, "p", None, codec=SIGNED)
    catalog.sync()
    names = [r.artifact for r, _ in catalog.versions()]
    assert "ghost" not in names
    assert len(names) == 250
    assert {r.artifact for r, _ in catalog.versions() if r.number == 0} >= {"m0", "m1", "m2"}
    assert key0 in {k for (k,) in catalog.query("SELECT key FROM seen")}


def test_unsigned_records_are_never_taken_from_a_bundle() -> None:
    b = signed_project(250, PLAIN)
    bundles.write_bundles(b, "p")
    b.gets = 0
    Catalog(b, "p", None).sync()
    assert b.gets > 250  # each record fetched on its own


def test_a_bundle_verified_in_parallel_parts_takes_exactly_the_authentic_records(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature checks of one bundle run in parts on several threads: the records
    they accept, refuse and fetch are those of one check after another."""
    monkeypatch.setattr(bundles, "_VERIFY_PART", 16)
    monkeypatch.setattr(bundles, "_VERIFY_WORKERS", 4)
    b = signed_project(250)
    assert bundles.write_bundles(b, "p") == 252
    key1 = "projects/p/artifacts/m1/versions/0000000000"
    tampered = bytearray(b.get(key1))
    tampered[-1] ^= 1  # a bad signature: this record is fetched on its own
    b.put("projects/p/bundles/20000101000000000000-00000000", bundles.encode([
        ("artifacts/m0/versions/0000000000", b.get(key1)),
        ("artifacts/m3/versions/0000000000", bytes(tampered)),
    ]))
    b.gets = 0
    catalog = Catalog(b, "p", None, codec=SIGNED)
    assert catalog.sync().fetched == 252
    assert b.gets == 2  # the two bundles; every record taken from the real one
    fetched = Catalog(MemoryBackend(b.url.removeprefix("memory://")), "p", None, codec=SIGNED)
    fetched.sync()
    assert [r for r, _ in catalog.versions()] == [r for r, _ in fetched.versions()]
    assert catalog.runs() == fetched.runs()


def _until_waiting(thread: threading.Thread) -> None:
    """Return once ``thread`` waits on a condition (polls its stack; fails after 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident or -1)
        names = []
        while frame is not None:
            names.append(frame.f_code.co_name)
            frame = frame.f_back
        if "wait" in names and "_run" in names:
            return
        time.sleep(0.01)
    raise AssertionError("the thread never waited for the caller")


AheadFound = bundles.Ahead[tuple[dict[str, bytes], bundles.Checked]]


def test_bundles_checked_ahead_hold_at_most_their_limit_and_yield_them_all() -> None:
    """A first sync checks bundles in a background thread while it lists (bundles.Ahead):
    at most ``limit`` bytes wait (one bundle when it is tiny), all arrive, in order."""
    b = signed_project(250)
    assert bundles.write_bundles(b, "p", size=60) == 252  # 5 bundles
    # Ahead's default ``prepare`` keeps each bundle as (found, checked)
    ahead: AheadFound = bundles.Ahead(b, "p", SIGNED, limit=1)
    try:
        _until_waiting(ahead._thread)  # it stopped for the caller, not at its end
        assert len(ahead._ready) == 1  # the thread waits for the caller
        taken = [sorted(found) for found, _ in ahead]
    finally:
        ahead.close()
    assert [len(t) for t in taken] == [60, 60, 60, 60, 12]
    assert len({k for t in taken for k in t}) == 252
    idle: AheadFound = bundles.Ahead(b, "p", SIGNED, limit=1)
    idle.close()  # never iterated (the listing found little to read): stops, no hang
    assert not idle._thread.is_alive()


def test_a_failure_checking_bundles_ahead_is_raised_to_the_sync() -> None:
    class Broken(MemoryBackend):
        def get(self, key: str) -> bytes:
            if "/bundles/" in key:
                raise OSError("the disk went away")
            return super().get(key)

    b = signed_project(250)
    bundles.write_bundles(b, "p")
    broken = Broken(b.url.removeprefix("memory://"))
    with pytest.raises(OSError, match="went away"):
        Catalog(broken, "p", None, codec=SIGNED).sync()


def test_a_small_first_sync_does_not_look_for_bundles() -> None:
    """Bundles are fetched ahead only when the listing already shows enough unread
    records to read them at all: a small project's first sync lists no ``bundles/``."""
    b = ListingRecorder(f"small-{uuid.uuid4().hex}")
    refs = Refs(b, "p", SIGNED)
    for i in range(20):
        commit(refs, f"m{i}", i)
    bundles.write_bundles(b, "p")
    b.listed.clear()
    assert Catalog(b, "p", None, codec=SIGNED).sync().fetched == 20
    assert not [p for p in b.listed if "bundles" in p], b.listed


def test_a_first_sync_checks_bundles_while_artifacts_are_still_listed() -> None:
    """The check of the bundles starts once the ``artifacts/`` listing has shown enough
    unread records, not after it: the listing below does not give its last key until
    the bundles are listed (or 30 s passed, which fails the test)."""

    class SlowListing(MemoryBackend):
        def __init__(self, name: str) -> None:
            super().__init__(name)
            self.bundles_listed = threading.Event()
            self.waited = False

        def list(self, prefix: str = "") -> Iterator[str]:
            if "/bundles/" in prefix:
                self.bundles_listed.set()
            keys = [*super().list(prefix)]
            if not prefix.endswith("/artifacts/"):
                return iter(keys)
            return self._slow(keys)

        # builtins.list: in this class body, `list` names the method above
        def _slow(self, keys: builtins.list[str]) -> Iterator[str]:
            yield from keys[:-1]
            self.waited = self.bundles_listed.wait(30)
            yield keys[-1]

    b = signed_project(250)
    bundles.write_bundles(b, "p")
    slow = SlowListing(b.url.removeprefix("memory://"))
    assert Catalog(slow, "p", None, codec=SIGNED).sync().fetched == 252
    assert slow.waited
