"""bench/server_load.py at a tiny scale: its parameters, its data, its statistics, and
above all its checks (each must catch what it is there for); then the whole scenario
once, two servers and two clients for 3 s (nothing is timed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import server_load  # noqa: E402

TINY = server_load.Params(seconds=3, clients=2, servers=2, artifacts=2, max_files=2,
                          min_kib=1, max_kib=64)


def test_parameters_and_their_defaults() -> None:
    args = server_load.parse_args([])
    assert (args.seconds, args.clients, args.servers) == (60, 16, 2)
    assert args.out == ROOT / "bench" / "results"
    args = server_load.parse_args(["--seconds", "3", "--clients", "2", "--servers", "0"])
    assert (args.seconds, args.clients, args.servers) == (3, 2, 0)
    for bad in (["--clients", "0"], ["--seconds", "0"], ["--servers", "-1"],
                ["--min-kib", "8", "--max-kib", "4"], ["--max-files", "0"]):
        with pytest.raises(SystemExit):
            server_load.parse_args(bad)


def test_versions_are_regenerated_from_their_metadata(tmp_path: Path) -> None:
    seed = server_load.client_seed(TINY, 1, 7)
    assert seed != server_load.client_seed(TINY, 0, 7)
    assert seed != server_load.client_seed(TINY, 1, 8)
    files = server_load.version_plan(TINY, seed)
    assert files == server_load.version_plan(TINY, seed)
    assert 1 <= len(files) <= TINY.max_files
    assert all(1024 <= size <= 64 * 1024 for size in files.values())
    size = server_load.write_version(tmp_path, seed, files)
    assert size == sum(p.stat().st_size for p in tmp_path.iterdir())
    meta = {"seed": seed, "files": files}
    assert server_load.compare(tmp_path, meta) is None
    # each way a read can go wrong is reported
    assert server_load.compare(tmp_path, {"seed": seed + 1, "files": files}) is not None
    first = next(iter(files))
    data = bytearray((tmp_path / first).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / first).write_bytes(bytes(data))
    assert server_load.compare(tmp_path, meta) == f"{first}: bytes differ"
    (tmp_path / first).unlink()
    assert "instead of" in (server_load.compare(tmp_path, meta) or "")
    assert "no load metadata" in (server_load.compare(tmp_path, {"x": 1}) or "")


def _log(client: int, artifact: str, number: int, seed: int, *, ok: bool = True,
         created: bool = True) -> dict[str, Any]:
    return {"client": client, "op": "log", "server": client % 2, "ok": ok, "seconds": 0.1,
            "artifact": artifact, "number": number, "seed": seed, "created": created,
            "bytes": 10}


def test_the_version_checks_catch_each_failure() -> None:
    setup = {"a": 100, "b": 200}
    ops = [_log(0, "a", 1, 11), _log(1, "a", 2, 12), _log(1, "b", 1, 21)]
    stored: dict[str, dict[int, int | None]] = {"a": {0: 100, 1: 11, 2: 12},
                                                "b": {0: 200, 1: 21}}
    assert server_load.check_versions(ops, stored, setup) == []
    # a failed operation of any kind
    failed = {"client": 1, "op": "get", "server": 0, "ok": False, "seconds": 0.2,
              "error": "NotAuthorizedError: no"}
    assert server_load.check_versions([*ops, failed], stored, setup) == [
        "client 1: get failed: NotAuthorizedError: no"]
    # two logs that returned the same number
    twice = [*ops, _log(0, "b", 1, 22)]
    assert server_load.check_versions(twice, stored, setup) == [
        "b:v1 returned twice (seeds 21 and 22)"]
    # a version a log returned that the store does not have (lost)
    Stored = dict[str, dict[int, int | None]]
    lost: Stored = {**stored, "b": {0: 200}}
    assert server_load.check_versions(ops, lost, setup) == [
        "b:v1 was returned by a log but is not in the store"]
    # a version in the store that no log returned (extra)
    extra: Stored = {**stored, "a": {**stored["a"], 3: 13}}
    assert server_load.check_versions(ops, extra, setup) == [
        "a:v3 is in the store but no log returned it"]
    # the number holds another log's data
    swapped: Stored = {**stored, "a": {0: 100, 1: 12, 2: 11}}
    assert len(server_load.check_versions(ops, swapped, setup)) == 2
    # new content that made no version
    assert "made no version" in server_load.check_versions(
        [*ops, _log(0, "a", 2, 13, created=False)], stored, setup)[0]


def test_statistics_per_operation() -> None:
    assert server_load.percentile([], 0.5) is None
    assert server_load.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert server_load.percentile([1.0, 2.0], 0.99) == pytest.approx(1.99)
    ops = [_log(0, "a", i, i) for i in range(4)]
    ops.append({"client": 0, "op": "get", "server": 1, "ok": False, "seconds": 9.0,
                "error": "x"})
    stats = server_load.op_stats(ops, wall=2.0)
    assert stats["log"]["count"] == 4
    assert stats["log"]["per_s"] == 2.0
    assert stats["log"]["p50_s"] == pytest.approx(0.1)
    assert stats["log"]["by_server"] == {"0": 4}
    assert (stats["get"]["count"], stats["get"]["errors"], stats["get"]["p99_s"]) == (1, 1,
                                                                                      None)
    table = server_load.report_table(stats).splitlines()
    assert table[2] == "| log | 4 | 0 | 2.00 | 0.00 | 100 | 100 | 100 |"
    assert table[3] == "| get | 1 | 1 | 0.00 | 0.00 | n/a | n/a | n/a |"


@pytest.mark.slow
@pytest.mark.s3
def test_tiny_run_through_two_servers(tmp_path: Path) -> None:
    said: list[str] = []
    result = server_load.run(TINY, say=said.append, keep=tmp_path / "work")
    assert result["problems"] == []
    ops = result["ops"]
    for op in server_load.OPS:
        assert ops[op]["count"] > 0
        assert ops[op]["errors"] == 0
        assert set(ops[op]["by_server"]) == {"0", "1"}  # both servers were used
    versions = result["versions"]
    assert versions["stored"] == versions["logged"] + versions["setup"]
    for served in result["server_requests"]:
        assert served["requests"] > 0
        assert not any(status.startswith("5") for status in served["by_status"])
    assert result["verify"]["exit"] == 0
    over = result["overhead"]
    for op in ("log", "get", "list", "log warm", "get warm", "list warm"):
        assert over["direct"][op]["s3_requests"] > 0
        assert over["server"][op]["server_requests"] > 0
    for mode in ("direct", "server"):
        assert over[mode]["get"]["byte_exact"]
        assert over[mode]["get warm"]["byte_exact"]
    assert server_load.overhead_table(over).count("| `artifactstore ") == 6
    # the clients knew only the servers: no S3 endpoint or keys in their environment
    assert result["client_env_s3"] == []


@pytest.mark.slow
@pytest.mark.s3
def test_refused_writes_are_errors(tmp_path: Path) -> None:
    """Servers where everyone is a reader: every log is refused, and the run says so."""
    readers = server_load.Params(seconds=1, clients=1, servers=1, artifacts=1, max_files=1,
                                 min_kib=1, max_kib=4, role="reader")
    result = server_load.run(readers, say=lambda _: None, keep=tmp_path / "work")
    assert result["ops"]["log"]["errors"] == result["ops"]["log"]["count"] > 0
    assert result["ops"]["get"]["errors"] == 0  # reading is allowed
    assert result["problems"]
    assert all("log failed: NotAuthorizedError" in p for p in result["problems"])
    assert result["versions"]["stored"] == result["versions"]["setup"] == 1
    assert result["overhead"] == {"direct": {}, "server": {}}
