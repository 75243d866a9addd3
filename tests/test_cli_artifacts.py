"""The artifact commands: log, ls, show, get, diff, alias, verify; errors and exit codes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import artifactstore
from artifactstore.cli import main
from artifactstore.core import encoding
from artifactstore.core.digest import hash_bytes
from artifactstore.model.entries import encode_entry
from artifactstore.model.tree import FileEntry
from artifactstore.objects.envelope import Kind
from artifactstore.records.versions import NewVersion


@pytest.fixture
def url(tmp_path: Path) -> str:
    """An empty public store: the CLI writes only into a store that exists."""
    assert main(["init", str(tmp_path / "store"), "--public", "--quiet"]) == 0
    return str(tmp_path / "store")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else {}, captured.err


def test_log_ls_show_get_diff_verify(url: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x,y\n1,2\n")
    code, logged, _ = run(capsys, "log", "ds", str(data), "--type", "dataset", "--store", url,
                          "--metadata", "source=test", "--alias", "raw")
    assert code == 0
    assert logged["ref"] == "ds:v0"
    assert logged["metadata"] == {"source": "test"}
    assert logged["aliases"] == ["latest", "raw"]
    code, again, _ = run(capsys, "log", "ds", str(data), "--store", url)
    assert (code, again["created"], again["ref"]) == (0, False, "ds:v0")
    (data / "b.csv").write_text("z\n")
    assert run(capsys, "log", "ds", str(data), "--store", url)[0] == 0
    assert run(capsys, "ls", "--store", url)[1] == {"artifacts": ["ds"]}
    versions = run(capsys, "ls", "ds", "--store", url)[1]["versions"]
    assert [v["ref"] for v in versions] == ["ds:v0", "ds:v1"]
    shown = run(capsys, "show", "ds:v1", "--store", url)[1]
    assert [f["path"] for f in shown["files"]] == ["a.csv", "b.csv"]
    changes = run(capsys, "diff", "ds:v0", "ds:v1", "--store", url)[1]["changes"]
    assert changes == [{"path": "b.csv", "change": "added"}]
    out = tmp_path / "out"
    code, got, _ = run(capsys, "get", "ds:raw", "--dir", str(out), "--store", url)
    assert code == 0
    assert got["path"] == str(out)
    assert (out / "a.csv").read_text() == "x,y\n1,2\n"
    assert not (out / "b.csv").exists()
    assert run(capsys, "verify", "ds:v0", "--dir", str(out), "--store", url)[0] == 0
    assert run(capsys, "verify", "ds:latest", "--store", url)[0] == 0


def test_alias_commands(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "m.bin"
    for content in (b"1", b"2"):
        f.write_bytes(content)
        assert run(capsys, "log", "m", str(f), "--type", "model", "--store", url)[0] == 0
    assert run(capsys, "alias", "set", "m:v0", "prod", "--protect", "--store", url)[0] == 0
    code, _, err = run(capsys, "alias", "set", "m:v1", "prod", "--store", url)
    assert code == 10
    assert "force" in err
    assert run(capsys, "alias", "set", "m:v1", "prod", "--force", "--store", url)[0] == 0
    history = run(capsys, "alias", "history", "m", "prod", "--store", url)[1]["history"]
    assert [(e["previous"], e["target"], e["forced"]) for e in history] == [
        (None, 0, False), (0, 1, True)]
    assert run(capsys, "alias", "rm", "m", "prod", "--force", "--store", url)[0] == 0


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["get", "nothing:latest"], 3, "nothing"),
        (["log", "bad name", "."], 2, "bad name"),
        (["log", "ok", "/no/such/path"], 3, "no such"),
        (["log", "ok", "/proc/self/mem"], 2, "cannot read"),  # read fails with EIO
        (["get", "ok:v01"], 2, "leading zeros"),
        (["alias", "set", "x:v0", "v9"], 2, "v9"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    url: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, words: str
) -> None:
    artifactstore.open(url, create=True).close()  # reads of a missing store exit 13 (own test)
    before = sorted(p.name for p in Path(url).rglob("*"))
    got, _, err = run(capsys, *argv, "--store", url)
    assert got == code
    assert err.count("\n") == 1
    assert words in err
    assert sorted(p.name for p in Path(url).rglob("*")) == before


def test_unknown_scheme_names_the_supported_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ls", "--store", "ftp://host/x")
    assert code == 9
    assert "s3" in err


def test_hostile_manifest_path_is_refused_at_download(url: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # A store written by someone else: a tree node naming a file '..'. The writer
    # never produces it; the reader must refuse it rather than write outside --dir.
    with artifactstore.open(url, create=True) as store:
        ref = store.objects.write_bytes(b"pwned")
        entry = FileEntry.from_ref("x", ref)
        record = encode_entry("..", entry, store.objects.put_blob)
        node = store.objects.put_blob(Kind.TREE, encoding.pack({"version": 1,
                                                                 "entries": [record]}))
        store.objects.flush()
        store.refs.commit_version(NewVersion("evil", type="dataset", manifest=node,
                                             digest=node, size=5, files=1))
    out = tmp_path / "deep" / "out"
    code, _, err = run(capsys, "get", "evil", "--dir", str(out), "--store", url)
    assert code == 5
    assert err.count("\n") == 1
    assert not (tmp_path / "deep" / "x").exists()
    assert hash_bytes(b"pwned") == ref.digest


def test_unreachable_backend_is_one_line_and_exit_7(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    done = subprocess.run(
        [sys.executable, "-m", "artifactstore", "ls", "--store", "s3://bucket/prefix"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )
    assert done.returncode == 7, done.stderr
    assert done.stderr.count("\n") == 1
    assert "127.0.0.1" in done.stderr or "reach" in done.stderr


def test_alias_protect_and_unprotect(url: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15, point 4: protection is set and lifted from the CLI, and recorded."""
    f = tmp_path / "m.bin"
    for content in (b"1", b"2"):
        f.write_bytes(content)
        assert run(capsys, "log", "m", str(f), "--type", "model", "--store", url)[0] == 0
    assert run(capsys, "alias", "set", "m:v0", "prod", "--store", url)[0] == 0
    code, event, _ = run(capsys, "alias", "protect", "m:prod", "--store", url)
    assert (code, event["target"], event["protected"]) == (0, 0, True)
    code, _, err = run(capsys, "alias", "set", "m:v1", "prod", "--store", url)
    assert code == 10
    assert "'artifactstore alias unprotect m:prod'" in err
    code, _, err = run(capsys, "alias", "rm", "m", "prod", "--store", url)
    assert code == 10
    code, event, _ = run(capsys, "alias", "unprotect", "m:prod", "--store", url)
    assert (code, event["target"], event["protected"], event["forced"]) == (0, 0, False, True)
    assert run(capsys, "alias", "set", "m:v1", "prod", "--store", url)[0] == 0
    code, event, _ = run(capsys, "alias", "protect", "m:prod", "--store", url)
    assert (code, event["target"], event["protected"]) == (0, 1, True)  # where it points now
    assert run(capsys, "alias", "protect", "m:prod", "--store", url)[1]["seq"] == event["seq"]
    assert run(capsys, "alias", "set", "m:v0", "prod", "--store", url)[0] == 10
    history = run(capsys, "alias", "history", "m", "prod", "--store", url)[1]["history"]
    assert [(e["target"], e["protected"]) for e in history] == [
        (0, False), (0, True), (0, False), (1, False), (1, True)]
    code, _, err = run(capsys, "alias", "unprotect", "m:nosuch", "--store", url)
    assert code == 3
    assert "'artifactstore alias set m:vN nosuch'" in err
    assert run(capsys, "alias", "protect", "m", "--store", url)[0] == 2


def test_ls_speaks_to_people_in_tables_with_human_sizes(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 19: ``ls`` has headers and human sizes; ``--json`` stays as it was."""
    from cli_calls import cli

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\0" * (3 << 20))
    assert cli(capsys, "log", "model", str(weights), "--type", "model", "--alias", "best",
               "--store", url)[0] == 0
    (tmp_path / "d.csv").write_text("x\n1\n")
    assert cli(capsys, "log", "data", str(tmp_path / "d.csv"), "--store", url)[0] == 0

    code, out, _ = cli(capsys, "ls", "--store", url)
    assert code == 0
    header, *rows = [[c.strip() for c in line.split("  ") if c.strip()]
                     for line in out.splitlines()]
    assert header == ["NAME", "TYPE", "VERSIONS", "LATEST", "SIZE", "UPDATED (UTC)"]
    assert [row[:5] for row in rows] == [["data", "dataset", "1", "v0", "4 B"],
                                         ["model", "model", "1", "v0", "3.0 MiB"]]

    code, out, _ = cli(capsys, "ls", "model", "--store", url)
    header, row = [[c.strip() for c in line.split("  ") if c.strip()]
                   for line in out.splitlines()]
    assert header == ["VERSION", "TYPE", "SIZE", "CREATED (UTC)", "ALIASES"]
    assert (row[0], row[2], row[-1]) == ("model:v0", "3.0 MiB", "latest, best")

    assert run(capsys, "ls", "--store", url)[1] == {"artifacts": ["data", "model"]}
