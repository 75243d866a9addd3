"""The team server's audit log (server/audit.py) and ``artifactstore server-audit``.

The trail writes into a real store (a local folder; two trails in threads stand for two
server instances); the HTTP endpoint and the CLI are exercised against a real
uvicorn server in tests/test_server_roles.py, where every write goes through the object
protocol and lands here with its user.
"""

from __future__ import annotations

import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_calls import cli

from artifactstore.backends import open_backend
from artifactstore.backends.base import Backend
from artifactstore.cli.serveraudit import parse_when
from artifactstore.core.errors import InvalidInputError
from artifactstore.server.audit import AUDIT_PREFIX, StoreAuditTrail, kind_of, read_audit
from artifactstore.server.gate import Action
from artifactstore.server.principal import ANONYMOUS, Principal, Role, TokenScope
from artifactstore.testing.stores import init_quick_store

BOB = Principal("company#bob", email="bob@example.com", token_id="t1",
                scope=TokenScope(None, Role.WRITER))


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(str(tmp_path / "store"))
    yield opened
    opened.close()


def _clock(start: float = 1_765_000_000.0, step: float = 1.0) -> object:
    now = [start - step]

    def tick() -> float:
        now[0] += step
        return now[0]
    return tick


def test_each_write_is_one_entry_with_its_user(backend: Backend) -> None:
    trail = StoreAuditTrail(backend, instance="test-1", clock=_clock())  # type: ignore[arg-type]
    trail.record(BOB, Action.READ, "projects/vis/project", 200)  # reads are not recorded
    trail.record(BOB, Action.LIST, "projects/", 200)
    trail.record(BOB, Action.CREATE, "projects/vis/members/0000000002", 201)
    trail.record(BOB, Action.PUT, "objects/plain/index/" + "a" * 64, 204)
    trail.record(ANONYMOUS, Action.DELETE, "projects/vis/lifecycle/0000000001", 401)
    names = list(backend.list(AUDIT_PREFIX))
    assert len(names) == 3
    first = json.loads(backend.get(names[0]))
    assert first == {"at": 1_765_000_000.0, "user": "bob@example.com (token t1)",
                     "subject": "company#bob", "token": "t1", "action": "create",
                     "key": "projects/vis/members/0000000002", "kind": "membership",
                     "status": 201, "instance": "test-1"}
    entries = read_audit(backend)
    assert [(e.action, e.kind, e.status, e.user) for e in entries] == [
        ("create", "membership", 201, "bob@example.com (token t1)"),
        ("put", "objects", 204, "bob@example.com (token t1)"),
        ("delete", "lifecycle", 401, "anonymous")]
    assert all(e.name and AUDIT_PREFIX + e.name in names for e in entries)


def test_entries_hold_no_secret_and_no_body(backend: Backend) -> None:
    secretive = Principal("company#x", email="x@example.com", name="X",
                          token_id="t9", scope=TokenScope(frozenset({"vis"}), Role.ADMIN))
    StoreAuditTrail(backend).record(secretive, Action.CREATE, "projects/vis/project", 201)
    raw = backend.get(next(iter(backend.list(AUDIT_PREFIX))))
    assert set(json.loads(raw)) == {"at", "user", "subject", "token", "action", "key", "kind",
                                    "status", "instance"}
    assert b"ast1_" not in raw
    assert b"Bearer" not in raw


@pytest.mark.parametrize(("key", "kind"), [
    ("projects/p/members/0000000001", "membership"), ("projects/p/keys/0000000001/info", "keys"),
    ("projects/p/keys/0000000001/slots/" + "a" * 32, "keys"), ("projects/p/project", "project"),
    ("projects/p/lifecycle/0000000000", "lifecycle"),
    ("projects/p/artifacts/ds/versions/0000000000", "records"),
    ("objects/plain/packs/aa/" + "a" * 64, "objects"), ("gc/lock", "gc"), ("config", "config"),
    ("locks/x", "other")])
def test_kinds(key: str, kind: str) -> None:
    assert kind_of(key) == kind


def test_reading_a_time_window_and_pages(backend: Backend) -> None:
    trail = StoreAuditTrail(backend, clock=_clock(1_765_000_000.0, 10.0))  # type: ignore[arg-type]
    for i in range(30):
        trail.record(BOB, Action.CREATE, f"projects/p/artifacts/ds/versions/{i:010d}", 201)
    window = read_audit(backend, since=1_765_000_050.0, until=1_765_000_100.0)
    assert [e.key[-2:] for e in window] == ["05", "06", "07", "08", "09"]
    page = read_audit(backend, limit=7)
    rest = read_audit(backend, after=page[-1].name)
    assert len(page) == 7
    assert len(rest) == 23
    assert [e.name for e in page + rest] == sorted(e.name for e in page + rest)
    assert read_audit(backend, since=1_765_001_000.0) == []


def test_damaged_or_planted_entries_are_skipped(backend: Backend) -> None:
    StoreAuditTrail(backend).record(BOB, Action.DELETE, "projects/p/project", 204)
    backend.put(f"{AUDIT_PREFIX}000000000000001-planted", b"not json")
    backend.put(f"{AUDIT_PREFIX}000000000000002-planted", b'{"at": "x"}')
    assert [e.action for e in read_audit(backend)] == ["delete"]


def test_two_instances_append_side_by_side(backend: Backend) -> None:
    """Two server instances (threads) over one store: every entry is kept, none replaced."""
    trails = [StoreAuditTrail(backend, instance=f"i{n}") for n in range(2)]
    barrier = threading.Barrier(4)

    def write(trail: StoreAuditTrail, worker: int) -> None:
        barrier.wait()
        for i in range(50):
            trail.record(BOB, Action.CREATE, f"projects/p/runs/w{worker}/{i}", 201)

    threads = [threading.Thread(target=write, args=(trails[n % 2], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    entries = read_audit(backend)
    assert len(entries) == 200
    assert len({e.key for e in entries}) == 200
    assert {e.instance for e in entries} == {"i0", "i1"}


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-01", 1_796_083_200.0), ("2026-12-01T09:30Z", 1_796_117_400.0),
    ("2026-12-01T10:30:00+01:00", 1_796_117_400.0), ("2h", 1_765_000_000.0 - 7200),
    ("7d", 1_765_000_000.0 - 7 * 86400)])
def test_when(text: str, expected: float) -> None:
    assert parse_when(text, now=1_765_000_000.0) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "30", "-2h", "2026-13-01"])
def test_bad_when(text: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a time"):
        parse_when(text)


def test_the_library_never_copies_judges_or_removes_the_servers_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """design §1: ``server/`` is the server's, not the format's: sync, gc, verify,
    export and repair list projects/ and objects/ only."""
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache"))
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    init_quick_store(src)
    assert cli(capsys, "log", "ds", str(data), "--store", src)[0] == 0
    (data / "a.txt").write_text("beta\n")
    assert cli(capsys, "log", "ds", str(data), "--store", src)[0] == 0
    assert cli(capsys, "delete", "ds:v0", "--store", src)[0] == 0
    backend = open_backend(src)
    StoreAuditTrail(backend).record(BOB, Action.CREATE, "projects/default/project", 201)
    backend.put("server/tokens/0123456789abcdef", b'{"subject": "company#bob"}')
    backend.put("server/revoked/0123456789abcdef", b"{}")
    server_keys = sorted(k for k in backend.list("") if k.startswith("server/"))
    assert len(server_keys) == 3
    before = {k: backend.get(k) for k in server_keys}
    for argv in (["sync", src, dst], ["verify", "--read-data", "--store", src],
                 ["gc", "--grace", "0", "--store", src], ["repair", "index", "--store", src],
                 ["export", "ds:v1", str(tmp_path / "out.tar"), "--store", src]):
        code, out, err = cli(capsys, *argv, "--json")
        assert code == 0, (argv, err)
        assert "server/" not in out
    assert {k: backend.get(k) for k in backend.list("server/")} == before
    copy = open_backend(dst)
    assert list(copy.list("server/")) == []
    copy.close()
    backend.close()
    with tarfile.open(tmp_path / "out.tar") as tar:
        assert not [n for n in tar.getnames() if "server" in n]
