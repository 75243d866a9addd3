"""Run records (design §12): ids, round trips, refusal of damaged or misplaced records, status."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given

from artifactstore.backends import open_backend
from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import (
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.objects.envelope import Kind, seal
from artifactstore.records.runs import (
    MetricsRow,
    RunEdge,
    RunEnd,
    RunLog,
    RunStart,
    check_encodable,
    check_tags,
    derive_status,
    event_key,
    new_run_id,
    parse_run_key,
    runs_prefix,
    start_key,
    validate_run_id,
)
from artifactstore.records.versions import now
from artifactstore.testing import BackendSpec, strategies

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def make_start(run_id: str, *, heartbeat: float = 30.0, host: str = "elsewhere",
               pid: int = 1, started: datetime = T0) -> RunStart:
    return RunStart(project="p", run_id=run_id, name="n", job_type="train", tags=("a", "b"),
                    config={"lr": 0.1, "layers": [1, 2], "nested": {"x": b"\x00"}},
                    started_at=started.isoformat(), by="u@h",
                    env={"host": host, "pid": pid, "argv": ["x"]},
                    code={"commit": "ab" * 20, "branch": "main", "remote": None, "dirty": False},
                    heartbeat=heartbeat)


@pytest.fixture
def log(memory_spec: BackendSpec) -> RunLog:
    return RunLog(open_backend(memory_spec.url), "p")  # a store of the test's own


@given(strategies.utc_times(), strategies.utc_times())
def test_run_ids_sort_by_start_time(a: datetime, b: datetime) -> None:
    ida, idb = new_run_id(a), new_run_id(b)
    assert validate_run_id(ida) == ida
    if a < b:
        assert ida < idb


@pytest.mark.parametrize("bad", ["", "x", "20261126T120000000000Z-ABCDEF12", "../etc",
                                 "20261126T120000000000Z-1234567", 7])
def test_bad_run_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="invalid run id"):
        validate_run_id(bad)  # type: ignore[arg-type]


def test_start_record_round_trips(log: RunLog) -> None:
    start = make_start(new_run_id())
    log.write_start(start)
    back = log.read_start(start.run_id)
    assert back.config == {"lr": 0.1, "layers": [1, 2], "nested": {"x": b"\x00"}}
    assert (back.name, back.job_type, back.tags, back.code, back.heartbeat) == (
        start.name, start.job_type, start.tags, start.code, start.heartbeat)
    assert log.run_ids() == [start.run_id]
    with pytest.raises(ConflictError, match="already exists"):
        log.write_start(start)


def test_events_and_metrics_round_trip(log: RunLog) -> None:
    run_id = new_run_id()
    log.write_start(make_start(run_id))
    digest = Digest(bytes(range(32)))
    log.append_event(run_id, 0, {"type": "use", "artifact": "data", "number": 3,
                                 "digest": digest.raw, "ref": "data:prod"})
    log.append_event(run_id, 1, {"type": "output", "artifact": "model", "number": 0,
                                 "digest": digest.raw, "created": True, "role": None})
    log.append_event(run_id, 2, {"type": "end", "status": "failed", "error": "E: x",
                                 "summary": {"loss": 0.5}, "ended_at": now()})
    with pytest.raises(ConflictError, match="one process"):
        log.append_event(run_id, 2, {"type": "end"})
    use, out, end = (log.read_event(run_id, s) for s in log.seqs(run_id, "events"))
    assert isinstance(use, RunEdge)
    assert use.version_ref == "data:v3"
    assert use.ref == "data:prod"
    assert isinstance(out, RunEdge)
    assert out.created is True
    assert out.direction == "output"
    assert isinstance(end, RunEnd)
    assert end.status == "failed"
    assert end.summary == {"loss": 0.5}
    log.append_metrics(run_id, 0, [MetricsRow(0, now(), {"loss": 1.0}),
                                   MetricsRow(5, now(), {"acc": True})])
    assert [(r.step, dict(r.values)) for r in log.read_metrics(run_id, 0)] == [
        (0, {"loss": 1.0}), (5, {"acc": True})]


def test_a_record_copied_under_another_run_is_refused(log: RunLog) -> None:
    a, b = new_run_id(), new_run_id()
    log.write_start(make_start(a))
    backend = log._backend
    backend.put(start_key("p", b), backend.get(start_key("p", a)))
    with pytest.raises(IntegrityError, match="misplaced"):
        log.read_start(b)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("type", "delete", "unknown event type"),
    ("artifact", "../x", "invalid artifact"),
    ("number", -1, "number"),
    ("digest", b"short", "digest"),
])
def test_malformed_events_are_refused(log: RunLog, field: str, value: object,
                                      message: str) -> None:
    run_id = new_run_id()
    body = {"project": "p", "run": run_id, "seq": 0, "at": now(), "type": "use",
            "artifact": "data", "number": 1, "digest": bytes(32), "ref": None, field: value}
    log._backend.put(event_key("p", run_id, 0),
                     seal(Kind.RUN_EVENT, encoding.pack(body)))
    with pytest.raises(IntegrityError, match=message):
        log.read_event(run_id, 0)


def test_an_event_with_the_wrong_kind_is_refused(log: RunLog) -> None:
    run_id = new_run_id()
    log._backend.put(event_key("p", run_id, 0),
                     seal(Kind.VERSION, encoding.pack({})))
    with pytest.raises(IntegrityError, match="expected RUN_EVENT"):
        log.read_event(run_id, 0)


def test_missing_run_names_the_command(log: RunLog) -> None:
    with pytest.raises(NotFoundError, match="runs ls"):
        log.read_start(new_run_id())


def test_run_keys_parse_and_foreign_keys_are_ignored() -> None:
    prefix = runs_prefix("p")
    run_id = new_run_id()
    assert parse_run_key(prefix, f"{prefix}{run_id}/start") == (run_id, "start", None)
    assert parse_run_key(prefix, f"{prefix}{run_id}/events/0000000003") == (run_id, "events", 3)
    assert parse_run_key(prefix, f"{prefix}{run_id}/events/3.sig") is None
    assert parse_run_key(prefix, f"{prefix}not-a-run/start") is None


def test_status_is_derived_from_end_heartbeat_and_process() -> None:
    start = make_start(new_run_id(), heartbeat=10.0)
    end = RunEnd(start.run_id, 0, now(), "finished", None, types.MappingProxyType({}), now())
    assert derive_status(start, end, None, now_=T0 + timedelta(days=9)) == "finished"
    assert derive_status(start, None, None, now_=T0 + timedelta(seconds=59)) == "running"
    assert derive_status(start, None, None, now_=T0 + timedelta(seconds=61)) == "crashed"
    beat = (T0 + timedelta(hours=1)).isoformat()
    assert derive_status(start, None, beat, now_=T0 + timedelta(hours=1, seconds=30)) == \
        "running"
    # On the run's host, a vanished process is crashed at once; elsewhere it is not known.
    gone = make_start(new_run_id(), host="here", pid=2**22 + 12345)
    assert derive_status(gone, None, None, now_=T0, host="here") == "crashed"
    assert derive_status(gone, None, None, now_=T0, host="other") == "running"


def test_user_values_are_checked() -> None:
    assert check_encodable("config", {"a": (1, 2)}) == {"a": [1, 2]}
    with pytest.raises(InvalidInputError, match="config cannot be stored"):
        check_encodable("config", {"f": object()})
    with pytest.raises(InvalidInputError, match="keys must be str"):
        check_encodable("config", {1: 2})  # type: ignore[dict-item]
    assert check_tags(["b", "a", "b"]) == ("a", "b")
    with pytest.raises(InvalidInputError, match="invalid tag"):
        check_tags(["ok", "bad\n"])
