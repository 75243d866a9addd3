"""The journal head (design §12.8, "Head"): writers replace one small object after each
journal entry, and a warm catalog sync that finds the token it saved lists nothing.

All on moto's S3 server (the requests are counted by the server) except the config
checks, which read the golden stores from disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from record_calls import commit, digest

import artifactstore
from artifactstore.backends import Backend, open_backend, open_backend_stack
from artifactstore.core.errors import FormatError
from artifactstore.local.catalog import Catalog
from artifactstore.objects import config as config_mod
from artifactstore.objects.config import JOURNAL_HEAD_FEATURE, StoreConfig
from artifactstore.objects.layout import CONFIG_KEY
from artifactstore.records import journal
from artifactstore.records.lifecycle import LifecycleLog
from artifactstore.records.refs import Refs
from artifactstore.records.runs import RunLog, RunStart, new_run_id
from artifactstore.testing import BackendSpec, MotoS3Server

DATA = Path(__file__).parent / "data"
HEAD = journal.head_key("p")


def s3(spec: BackendSpec) -> Backend:
    return open_backend_stack(spec.url, create=True, **spec.options)


def requests(server: MotoS3Server) -> list[str]:
    """The server's requests since the last reset, as ``METHOD what`` (no bucket, no ids)."""
    found = []
    for line in server.requests:
        method, _, path = line.partition(" ")
        if "journal-head" in path:
            found.append(f"{method} head")
        elif "journal" in path:
            found.append(f"{method} journal")
        else:
            found.append(f"{method} other")
    return found


def synced(spec: BackendSpec, *, journal_head: bool = True) -> tuple[Backend, Refs, Catalog]:
    """A store with one version, and a catalog that made its first (full) sync."""
    b = s3(spec)
    refs = Refs(b, "p")
    commit(refs, "m", 1)
    catalog = Catalog(b, "p", None, journal_head=journal_head)
    assert catalog.sync().full
    return b, refs, catalog


@pytest.mark.s3
def test_each_journaled_write_replaces_the_head_after_its_entry(
        s3_spec: BackendSpec, s3_server: MotoS3Server) -> None:
    b = s3(s3_spec)
    refs = Refs(b, "p")
    log = RunLog(b, "p")
    run_id = new_run_id()
    writes: list[Callable[[], object]] = [
        lambda: commit(refs, "m", 1),
        lambda: refs.set_alias("m", "prod", 0),
        lambda: log.write_start(RunStart(
            project="p", run_id=run_id, name="r", job_type="train", tags=(), config={},
            started_at=datetime.now(UTC).isoformat(), by="me", env={}, code=None,
            heartbeat=30.0)),
        lambda: log.append_event(run_id, 0, {"type": "use", "artifact": "m", "number": 0,
                                             "digest": digest(1).raw, "ref": "m:v0"}),
        lambda: LifecycleLog(b, "p").append("delete", by="me", artifact="m", numbers=[0]),
    ]
    heads = []
    for write in writes:
        s3_server.reset_count()
        write()
        puts = [r for r in requests(s3_server) if r.startswith("PUT")]
        assert puts[-2:] == ["PUT journal", "PUT head"], s3_server.requests  # entry first
        assert puts.count("PUT head") == 1
        heads.append(journal.read_head(b, "p"))
    assert all(h is not None and len(h) == 16 for h in heads)
    assert len(set(heads)) == len(writes)  # a fresh token each time


@pytest.mark.s3
def test_a_warm_sync_with_the_saved_token_lists_nothing(
        s3_spec: BackendSpec, s3_server: MotoS3Server) -> None:
    _, refs, catalog = synced(s3_spec)
    s3_server.reset_count()
    stats = catalog.sync()
    assert (stats.full, stats.listed, stats.fetched) == (False, 0, 0)
    assert requests(s3_server) == ["GET head"]
    commit(refs, "new", 2)  # this process's write: the head moved, the window is listed
    s3_server.reset_count()
    assert catalog.sync().fetched == 1
    assert requests(s3_server) == ["GET head", "GET journal", "GET other"]  # LIST is a GET
    s3_server.reset_count()
    assert catalog.sync().fetched == 0
    assert requests(s3_server) == ["GET head"]
    assert set(catalog.artifact_numbers()) == {"m", "new"}


@pytest.mark.s3
def test_a_record_written_by_another_process_shows_at_the_next_warm_sync(
        s3_spec: BackendSpec, s3_server: MotoS3Server) -> None:
    _, _, catalog = synced(s3_spec)
    assert catalog.sync().listed == 0
    script = (
        "import json, sys\n"
        "from artifactstore.backends import open_backend_stack\n"
        "from artifactstore.core.digest import Digest\n"
        "from artifactstore.records.refs import NewVersion, Refs\n"
        "b = open_backend_stack(sys.argv[1], **json.loads(sys.argv[2]))\n"
        "d = Digest(bytes(31) + b'\\x07')\n"
        "Refs(b, 'p').commit_version(NewVersion('other', type='model', manifest=d,"
        " digest=d, size=1, files=1))\n"
    )
    subprocess.run([sys.executable, "-c", script, s3_spec.url, json.dumps(s3_spec.options)],
                   check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    stats = catalog.sync()
    assert (stats.full, stats.fetched) == (False, 1)
    assert set(catalog.artifact_numbers()) == {"m", "other"}


@pytest.mark.s3
def test_a_stale_head_only_delays_a_record_until_the_full_listing(
        s3_spec: BackendSpec, s3_server: MotoS3Server) -> None:
    b, refs, catalog = synced(s3_spec)
    kept = journal.read_head(b, "p")
    assert kept is not None
    commit(refs, "withheld", 2)
    b.put(HEAD, kept)  # the storage admin puts the old token back
    assert catalog.sync().fetched == 0  # believed: nothing new
    assert "withheld" not in catalog.artifact_numbers()
    catalog.full_age = 0.0  # an hour later: the full listing
    stats = catalog.sync()
    assert (stats.full, stats.fetched) == (True, 1)
    assert "withheld" in catalog.artifact_numbers()


@pytest.mark.s3
def test_a_churned_or_missing_head_lists_the_window(
        s3_spec: BackendSpec, s3_server: MotoS3Server) -> None:
    b, _, catalog = synced(s3_spec)
    for _ in range(2):
        b.put(HEAD, os.urandom(16))  # churned: a new token, nothing journaled
        s3_server.reset_count()
        assert catalog.sync().fetched == 0
        assert requests(s3_server) == ["GET head", "GET journal"]
    b.delete(HEAD)
    commit(Refs(b, "p"), "late", 2)
    b.delete(HEAD)  # missing (deleted, or never written by the writer)
    s3_server.reset_count()
    assert catalog.sync().fetched == 1
    assert requests(s3_server)[:2] == ["GET head", "GET journal"]
    s3_server.reset_count()
    catalog.sync()
    assert requests(s3_server) == ["GET head", "GET journal"]  # still missing: listed
    assert "late" in catalog.artifact_numbers()


@pytest.mark.s3
def test_a_catalog_of_a_store_without_the_feature_never_reads_the_head(
        s3_spec: BackendSpec, s3_server: MotoS3Server) -> None:
    _, _, catalog = synced(s3_spec, journal_head=False)
    s3_server.reset_count()
    assert catalog.sync().fetched == 0
    assert requests(s3_server) == ["GET journal"]


@pytest.mark.s3
def test_a_warm_ls_is_config_and_head_on_a_new_store_and_lists_on_an_old_one(
        s3_spec: BackendSpec, s3_server: MotoS3Server, tmp_path: Path) -> None:
    old = s3_spec.url + "/old"
    b = open_backend_stack(old, create=True, **s3_spec.options)
    # a store made before the head: its config names no such feature
    made = StoreConfig.new()
    b.put_if_absent(CONFIG_KEY, replace(made, mandatory_features=tuple(
        f for f in made.mandatory_features if f != JOURNAL_HEAD_FEATURE)).to_bytes())
    (tmp_path / "f.txt").write_text("x")
    for url, new in ((s3_spec.url + "/new", True), (old, False)):
        cache = tmp_path / f"cache-{new}"
        with artifactstore.open(url, "p", create=True, cache_dir=cache,
                                **s3_spec.options) as store:
            assert store.objects.config.journal_head is new
            store.log_artifact(tmp_path / "f.txt", "data")
            assert store.artifacts() == ["data"]
        for _ in range(2):
            s3_server.reset_count()
            with artifactstore.open(url, "p", cache_dir=cache, **s3_spec.options) as store:
                assert store.artifacts() == ["data"]
            seen = requests(s3_server)
            assert seen == (["GET other", "GET head"] if new else ["GET other", "GET journal"])


def test_golden_stores_name_no_head_and_keep_reading() -> None:
    for name in ("golden-v1", "golden-v1-bigchunks", "golden-v1-deltas"):
        config = config_mod.load(open_backend(str(DATA / name)))
        assert not config.journal_head, name  # made before the head: readers list
    assert StoreConfig.new().journal_head
    assert StoreConfig.new(big_chunks=None).journal_head


def test_a_client_without_the_feature_refuses_a_new_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = open_backend(str(tmp_path / "s"))
    b.put_if_absent(CONFIG_KEY, StoreConfig.new().to_bytes())
    assert config_mod.load(b).journal_head
    # a client older than the head: it would write records without moving it
    monkeypatch.setattr(config_mod, "KNOWN_FEATURES",
                        config_mod.KNOWN_FEATURES - {JOURNAL_HEAD_FEATURE})
    with pytest.raises(FormatError, match=JOURNAL_HEAD_FEATURE):
        config_mod.load(b)


def test_a_writer_through_the_team_server_moves_the_head(tmp_path: Path) -> None:
    """The server lets a project's writers overwrite the head (server/keyrules.py): were
    it refused, ``note`` would swallow the refusal and readers would see a stale head."""
    from artifactstore.testing.teamserver import open_settings, serving_team

    (tmp_path / "backing").mkdir()
    with serving_team(open_settings(str(tmp_path / "backing"), role="writer")) as url:
        b = open_backend(f"artifactstore+{url}/")
        try:
            refs = Refs(b, "p")
            commit(refs, "m", 1)
            first = journal.read_head(b, "p")
            commit(refs, "n", 2)
            second = journal.read_head(b, "p")
        finally:
            b.close()
    assert first is not None
    assert second not in (None, first)
    assert (tmp_path / "backing" / HEAD).read_bytes() == second
