"""gc prunes change-journal entries older than a day (design §12.8, issue 20), and that
never hides a record: listings find it, and no reader's window reaches that far back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import artifactstore
from artifactstore.local.catalog import FULL_AGE
from artifactstore.records import journal
from artifactstore.testing.stores import init_quick_store


def test_no_readers_window_reaches_the_pruned_entries() -> None:
    assert timedelta(seconds=FULL_AGE) + journal.GRACE < journal.PRUNE_AFTER


def test_gc_prunes_old_entries_only_and_the_records_stay_visible(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    init_quick_store(url)
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    with artifactstore.open(url, cache_dir=tmp_path / "writer") as store:
        store.log_artifact(tmp_path / "a.txt", name="old", type="dataset")
        store.log_artifact(tmp_path / "b.txt", name="new", type="dataset")
        backend = store.objects.backend
        prefix = journal.journal_prefix("default")
        entries = sorted(backend.list(prefix))
        (old_entry,) = [e for e in entries if "~artifacts~old~" in e]
        record = journal.record_of("default", old_entry)
        assert record is not None
        backend.delete(old_entry)  # as if written two days ago
        two_days = datetime.now(UTC) - timedelta(days=2)
        backend.put_if_absent(journal.entry_key("default", record, at=two_days), b"")
        assert store.gc(grace=0, dry_run=True).journal_pruned == 1
        assert len(list(backend.list(prefix))) == len(entries)  # a dry run deletes nothing
        assert store.gc(grace=0).journal_pruned == 1
        left = sorted(backend.list(prefix))
        assert left == [e for e in entries if e != old_entry]
        assert store.gc(grace=0).journal_pruned == 0
    with artifactstore.open(url, cache_dir=tmp_path / "fresh") as reader:
        assert {"old", "new"} <= set(reader.artifacts())  # a full listing finds both
        reader.artifact("old:v0").verify()
