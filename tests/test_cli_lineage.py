"""The lineage commands: lineage, impact, where-used, audit (reports and exit codes)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import networkx as nx
import pytest
from cli_calls import cli, cli_json
from git_repos import committed_repo, isolate_git

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.core.digest import hash_bytes
from artifactstore.model.tree import FileEntry, iter_entries
from artifactstore.objects.layout import pack_key

RAW = b"a,b\n1,2\n"




@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """raw:v0 (no run); a finished run "prep" (raw -> clean:v0) and a failed run
    "train" (clean -> model:v0), both from a clean git commit."""
    isolate_git(monkeypatch)
    repo = committed_repo(tmp_path / "code", {"train.py": "print('train')\n"})
    monkeypatch.chdir(repo)  # the runs record this commit, with a clean tree
    url = str(tmp_path / "store")
    files = tmp_path / "files"
    files.mkdir()
    with artifactstore.open(url) as store:
        (files / "raw.csv").write_bytes(RAW)
        store.log_artifact(files / "raw.csv", name="raw", type="dataset")
        with store.run(name="prep", job_type="prep") as run:
            run.use("raw:latest")
            (files / "clean.csv").write_text("a\n1\n")
            run.log_artifact(files / "clean.csv", name="clean", type="dataset")
        with pytest.raises(RuntimeError, match="boom"):
            _train(store, files)
    return url


def _train(store: artifactstore.Store, files: Path) -> None:
    with store.run(job_type="train") as run:
        run.use("clean:latest")
        (files / "m.bin").write_bytes(b"weights")
        run.log_artifact(files / "m.bin", name="model", type="model")
        raise RuntimeError("boom")


def run_id(url: str, job_type: str) -> str:
    with artifactstore.open(url) as store:
        return store.runs(job_type=job_type, sync=True)[0].run_id


def test_lineage_text_is_an_indented_tree(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    prep, train = run_id(url, "prep"), run_id(url, "train")
    code, out, err = cli(capsys, "lineage", "model", "--store", url)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "model:v0 (model) latest",
        f"  <- run:{train} train [failed]",
        "    <- clean:v0 (dataset) latest",
        f"      <- run:{prep} prep prep [finished]",
        "        <- raw:v0 (dataset) latest",
    ]
    code, out, _ = cli(capsys, "lineage", "raw:v0", "--downstream", "--depth", "1",
                       "--store", url)
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()[1:]] == [f"run:{prep}", "clean:v0"]
    code, out, _ = cli(capsys, "lineage", f"run:{train[:-4]}", "--upstream", "--store", url)
    assert code == 0
    assert out.splitlines()[0] == f"run:{train} train [failed]"
    assert out.splitlines()[-1].endswith("raw:v0 (dataset) latest")


@pytest.mark.parametrize("direction", ["--upstream", "--downstream"])
def test_graphml_and_json_hold_the_library_graph(url: str, direction: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ref = "model:latest" if direction == "--upstream" else "raw:v0"
    with artifactstore.open(url) as store:
        query = store.upstream if direction == "--upstream" else store.downstream
        expected = query(ref, sync=True)
    assert expected.number_of_nodes() == 5
    code, out, _ = cli(capsys, "lineage", ref, direction, "--format", "graphml", "--store", url)
    assert code == 0
    graph = nx.parse_graphml(out)
    assert set(graph.nodes) == set(expected.nodes)
    assert set(graph.edges) == set(expected.edges)
    code, data = cli_json(capsys, "lineage", ref, direction, "--store", url)
    assert code == 0
    graph = nx.node_link_graph(data, edges="edges")
    assert set(graph.nodes) == set(expected.nodes)
    assert set(graph.edges) == set(expected.edges)


def test_dot_output_renders_with_graphviz(url: str, capsys: pytest.CaptureFixture[str],
                                         graphviz_dot: str) -> None:
    dot = graphviz_dot
    code, out, _ = cli(capsys, "lineage", "model", "--format", "dot", "--store", url)
    assert code == 0
    done = subprocess.run([dot, "-Tsvg"], input=out, capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout
    assert "clean:v0" in done.stdout


def test_lineage_to_a_file(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "lineage.mmd"
    code, summary = cli_json(capsys, "lineage", "model", "--format", "mermaid", "-o",
                             str(target), "--store", url)
    assert code == 0
    assert summary == {"ref": "model:v0", "direction": "upstream", "format": "mermaid",
                       "output": str(target), "nodes": 5, "edges": 4}
    assert target.read_text().startswith("flowchart LR\n")


def test_impact_and_where_used(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, found = cli_json(capsys, "impact", "raw", "--store", url)
    assert (code, found) == (0, {
        "ref": "raw:v0", "derived": ["clean:v0", "model:v0"],
        "state": {"state": "live", "at": None, "by": None, "reason": None},
        "derived_states": {"clean:v0": "live", "model:v0": "live"}})
    code, out, _ = cli(capsys, "impact", "model:v0", "--store", url)
    assert (code, out) == (0, "nothing is derived from model:v0\n")
    digest = hash_bytes(RAW).hex
    code, used = cli_json(capsys, "where-used", digest, "--store", url)
    assert code == 0
    assert used == {"digest": digest,
                    "versions": [{"version": "raw:v0", "path": "raw.csv", "state": "live"}],
                    "runs": [run_id(url, "prep")]}
    code, out, _ = cli(capsys, "where-used", hash_bytes(b"elsewhere").hex, "--store", url)
    assert code == 0
    assert out.startswith("no version holds a file")


def _tamper_first_chunk(url: str, ref: str) -> None:
    with artifactstore.open(url) as store:
        version = store.artifact(ref)
        entry = next(e for e in iter_entries(version.record.digest, store.objects.read_blob)
                     if isinstance(e, FileEntry))
        where = store.objects.locate(entry.chunks[0].id)
        key = pack_key(store.objects.domain, where.pack)
    backend = open_backend(url)
    data = bytearray(backend.get(key))
    data[where.offset + where.length // 2] ^= 0xFF
    backend.put(key, bytes(data))


def test_audit_exit_codes(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A version with no run, and one from a finished run at a clean commit: no finding.
    for ref in ("raw:v0", "clean"):
        code, report = cli_json(capsys, "audit", ref, "--store", url)
        assert (code, report["ok"], report["flags"]) == (0, True, []), ref
    # A failed run in the provenance: a finding, exit 1.
    code, report = cli_json(capsys, "audit", "model", "--store", url)
    assert code == 1
    assert [(f["severity"], f["code"]) for f in report["flags"]] == [("error", "run-failed")]
    code, out, err = cli(capsys, "audit", "model", "--format", "markdown", "--store", url)
    assert (code, err) == (1, "")
    assert out.startswith("# Audit of model:v0: 1 finding(s)")
    # A damaged chunk: exit 5, whether every chunk is read or a 100% sample.
    _tamper_first_chunk(url, "raw:v0")
    for sample in ([], ["--sample", "100%"], ["--sample", "1"]):
        code, report = cli_json(capsys, "audit", "raw:v0", *sample, "--store", url)
        assert code == 5, sample
        assert [f["code"] for f in report["flags"]] == ["corrupt-blob"]
    code, out, _ = cli(capsys, "audit", "raw:v0", "--store", url)
    assert code == 5
    assert "ERROR corrupt-blob" in out
    assert cli(capsys, "audit", "clean:v0", "--store", url)[0] == 0  # other versions unharmed


def test_audit_warnings_fail_only_with_strict(url: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with artifactstore.open(url) as store, store.run(job_type="export",
                                                     capture_code=False) as run:
        run.use("clean:v0")
        (tmp_path / "e.bin").write_bytes(b"exported")
        run.log_artifact(tmp_path / "e.bin", name="exported", type="model")
    code, report = cli_json(capsys, "audit", "exported", "--store", url)
    assert code == 0
    assert [(f["severity"], f["code"]) for f in report["flags"]] == [
        ("warning", "no-code-state")]
    assert cli(capsys, "audit", "exported", "--strict", "--store", url)[0] == 1


def test_audit_report_to_a_file(url: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "audit.md"
    code, summary = cli_json(capsys, "audit", "model:v0", "--format", "markdown", "-o",
                             str(target), "--store", url)
    assert code == 1
    assert (summary["ok"], summary["exit_code"], summary["output"]) == (False, 1, str(target))
    assert target.read_text().startswith("# Audit of model:v0")


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["lineage", "nothing"], 3, "nothing"),
        (["lineage", "bad name!"], 2, "bad name"),
        (["lineage", "run:20991231T"], 3, "not found"),
        (["lineage", "model", "--depth", "-1"], 2, "--depth"),
        (["lineage", "model", "--depth", "two"], 2, "--depth"),
        (["lineage", "model", "--json", "--format", "dot"], 2, "--json"),
        (["impact", "model:v7"], 3, "v7"),
        (["where-used", "abc"], 2, "64 hex"),
        (["audit", "model", "--sample", "0"], 2, "--sample"),
        (["audit", "model", "--sample", "150%"], 2, "--sample"),
        (["audit", "model", "--sample", "nan"], 2, "--sample"),
        (["audit", "model", "--sample", "ten"], 2, "--sample"),
        (["audit", "model", "-o", "no/such/folder/audit.txt"], 3, "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], code: int, words: str,
) -> None:  # fmt: skip
    before = sorted(Path.cwd().iterdir())
    got, out, err = cli(capsys, *argv, "--store", url)
    assert got == code
    assert json.loads(out)["exit_code"] == code if "--json" in argv else out == ""
    assert err.count("\n") == 1
    assert words in err
    assert "Traceback" not in err
    assert sorted(Path.cwd().iterdir()) == before
