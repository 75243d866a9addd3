"""Issue 15 point 1: lineage, impact, where-used, runs and audit over deleted and purged
history (a node keeps its place with its state; only live versions carry aliases)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from cli_calls import cli, cli_json

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.core import encoding
from artifactstore.core.digest import hash_bytes
from artifactstore.maintenance.projects import create_project
from artifactstore.objects.envelope import Kind, seal
from artifactstore.records.lifecycle import lifecycle_prefix
from artifactstore.testing.stores import init_quick_store

B = b"b-rows\n" * 300
UNRELATED = b"an unrelated file\n"


@dataclass(frozen=True)
class Pipeline:
    url: str
    project: str
    run_id: str  # the run that used b:v0 to make c:v0

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        return cli(capsys, *argv, "--store", self.url, "--project", self.project)

    def json(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
        return cli_json(capsys, *argv, "--store", self.url, "--project", self.project)

    def open(self) -> artifactstore.Store:
        return artifactstore.open(self.url, self.project)


@pytest.fixture(params=["public", "private"])
def pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Pipeline:
    """b:v0 and b:v1; a run "prep" used b:v0 to make c:v0; u:v0 is unrelated."""
    url = str(tmp_path / "store")
    init_quick_store(url)  # a short commit window: purge does not wait two minutes
    project = f"p-{request.param}"
    create_project(project, url, visibility=request.param)
    files = tmp_path / "files"
    files.mkdir()
    with artifactstore.open(url, project) as store:
        (files / "b.csv").write_bytes(B)
        store.log_artifact(files / "b.csv", name="b", type="dataset")
        (files / "u.csv").write_bytes(UNRELATED)
        store.log_artifact(files / "u.csv", name="u", type="dataset")
        with store.run(name="prep", job_type="prep", capture_code=False) as run:
            run.use("b:v0")
            (files / "c.csv").write_bytes(b"c-rows\n" * 300)
            run.log_artifact(files / "c.csv", name="c", type="dataset")
        (files / "b.csv").write_bytes(B + b"more\n")
        store.log_artifact(files / "b.csv", name="b", type="dataset")
        store.where_used(hash_bytes(B))  # b:v0's files indexed before the takedown
    return Pipeline(url, project, run.id)


def _take_down(pipeline: Pipeline, how: str) -> str:
    """Purge or delete b:v0, or delete the run; the subject node."""
    with pipeline.open() as store:
        if how == "purge":
            store.purge("b:v0", reason="DMCA 42")
            return "b:v0"
        if how == "delete":
            store.delete("b:v0", reason="bad labels")
            return "b:v0"
        store.delete_run(pipeline.run_id, reason="leaked config")
        return f"run:{pipeline.run_id}"


STATE = {"purge": "purged", "delete": "deleted", "run": "deleted"}
REASON = {"purge": "DMCA 42", "delete": "bad labels", "run": "leaked config"}


@pytest.mark.parametrize("how", ["purge", "delete", "run"])
def test_audits_answer_after_a_takedown(pipeline: Pipeline, how: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    subject = _take_down(pipeline, how)
    state, reason = STATE[how], REASON[how]
    # audit: a finding (exit 0), naming the state, when, who and why; --strict fails on it
    code, report = pipeline.json(capsys, "audit", "c:v0")
    assert code == 0, report
    finding = next(f for f in report["flags"] if f["subject"] == subject)
    code_name = "deleted-run" if how == "run" else f"{state}-ancestor"
    assert (finding["severity"], finding["code"]) == ("warning", code_name)
    assert f"was {state} on " in finding["message"]
    assert reason in finding["message"]
    assert pipeline.cli(capsys, "audit", "c:v0", "--strict")[0] == 1
    code, text, _ = pipeline.cli(capsys, "audit", "c:v0")
    assert code == 0
    shown = re.escape(subject.removeprefix("run:"))  # the tree writes "run <id>"
    assert re.search(rf"{shown}.* {state.upper()} .*{reason}", text), text
    # impact of the taken-down node: what derived from it, and its state with the reason
    code, found = pipeline.json(capsys, "impact", subject)
    assert code == 0
    assert found["derived"] == ["c:v0"]
    assert found["state"]["state"] == state
    assert reason in found["state"]["reason"]  # a purge's adds what it wiped
    code, text, _ = pipeline.cli(capsys, "impact", subject)
    assert code == 0
    assert text.splitlines()[0].startswith(f"{subject} was {state} on ")
    assert reason in text.splitlines()[0]
    # lineage and where-used of an unrelated file
    code, text, _ = pipeline.cli(capsys, "lineage", "c:v0")
    assert code == 0
    assert re.search(rf"{re.escape(subject)}.* {state.upper()}$", text, re.M), text
    code, used = pipeline.json(capsys, "where-used", hash_bytes(UNRELATED).hex)
    assert (code, used["versions"]) == (0, [{"version": "u:v0", "path": "u.csv",
                                             "state": "live"}])
    # runs show the run, with its state
    code, shown = pipeline.json(capsys, "runs", "show", pipeline.run_id)
    assert code == 0
    assert shown["inputs"] == ["b:v0"]
    assert shown["state"] == ("deleted" if how == "run" else "live")
    code, text, _ = pipeline.cli(capsys, "runs", "show", pipeline.run_id)
    assert code == 0
    state_line = next(x for x in text.splitlines() if x.startswith("state "))
    if how == "run":
        assert state_line.endswith(f"by {shown['state_by']}: leaked config")
    else:
        assert state_line.split() == ["state", "live"]


@pytest.mark.parametrize("how", ["purge", "delete", "run"])
def test_no_export_shows_a_taken_down_node_as_live(pipeline: Pipeline, how: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    subject = _take_down(pipeline, how)
    state = STATE[how]
    code, data = pipeline.json(capsys, "lineage", "c:v0")
    assert code == 0
    graph = nx.node_link_graph(data, edges="edges")
    attrs = graph.nodes[subject]
    assert (attrs["state"], attrs["deleted"]) == (state, True)
    assert attrs["state_at"]
    assert attrs["state_by"]
    assert REASON[how] in attrs["state_reason"]
    assert attrs.get("aliases", []) == []  # a taken-down version is nobody's target
    assert graph.nodes["c:v0"]["state"] == "live"
    code, out, _ = pipeline.cli(capsys, "lineage", "c:v0", "--format", "graphml")
    assert code == 0
    assert nx.parse_graphml(out).nodes[subject]["state"] == state
    code, out, _ = pipeline.cli(capsys, "lineage", "c:v0", "--format", "dot")
    assert code == 0
    (line,) = [x for x in out.splitlines() if x.startswith(f'  "{subject}" [')]
    assert f"({state})" in line
    assert "dashed" in line
    (live,) = [x for x in out.splitlines() if x.startswith('  "c:v0" [')]
    assert "dashed" not in live
    code, out, _ = pipeline.cli(capsys, "lineage", "c:v0", "--format", "mermaid")
    assert code == 0
    node_lines = [x for x in out.splitlines() if "#40;" + state + "#41;" in x]
    assert len(node_lines) == 1
    assert node_lines[0].endswith(":::unavailable")


def test_latest_and_aliases_name_live_versions_only(pipeline: Pipeline,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pipeline.open() as store:
        store.set_alias("b:v1", "golden")
        store.delete("b:v1", force=True, reason="superseded")
        graph = store.lineage(sync=True)
        assert graph.nodes["b:v1"]["aliases"] == []
        assert graph.nodes["b:v1"]["state"] == "deleted"
        assert graph.nodes["b:v0"]["aliases"] == ["latest"]
        assert store.lineage_node("b") == "b:v0"
        store.purge("b:v0", reason="DMCA 42")
        graph = store.lineage(sync=True)
        assert not any(data.get("aliases") for _, data in graph.nodes(data=True)
                       if data.get("artifact") == "b")
        # every version of b is gone: "b" names nothing live, b:vN still has its node
        with pytest.raises(artifactstore.core.errors.NotFoundError, match="deleted"):
            store.lineage_node("b")
        assert store.lineage_node("b:v0") == "b:v0"
    code, text, _ = pipeline.cli(capsys, "lineage", "b:v0", "--downstream")
    assert code == 0
    assert text.splitlines()[0] == "b:v0 (dataset) PURGED"


def test_audit_of_a_purged_version_and_where_used_of_its_file(
        pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    _take_down(pipeline, "purge")
    code, report = pipeline.json(capsys, "audit", "b:v0")
    assert code == 0  # its bytes are gone on purpose: not an integrity failure
    assert report["version"]["state"] == "purged"
    assert "DMCA 42" in report["version"]["state_reason"]
    assert [f["code"] for f in report["flags"]] == ["purged-ancestor"]
    assert report["integrity"]["problems"] == []
    code, used = pipeline.json(capsys, "where-used", hash_bytes(B).hex)
    assert code == 0
    assert used["versions"] == [{"version": "b:v0", "path": "b.csv", "state": "purged"}]
    assert used["runs"] == [pipeline.run_id]
    code, text, _ = pipeline.cli(capsys, "where-used", hash_bytes(B).hex)
    assert "b:v0 (purged)" in text


def test_a_version_deleted_before_it_was_indexed_still_answers(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """where-used indexes versions lazily: a deleted one is indexed from its tree, a
    purged one (tree gone) with no files, never an error."""
    files = tmp_path / "late"
    files.mkdir()
    (files / "d.csv").write_bytes(b"deleted later\n")
    (files / "p.csv").write_bytes(b"purged later\n")
    with pipeline.open() as store:
        store.log_artifact(files / "d.csv", name="d", type="dataset")
        store.log_artifact(files / "p.csv", name="p", type="dataset")
        store.delete("d:v0", reason="wrong split")
        store.purge("p:v0", reason="takedown")
    code, used = pipeline.json(capsys, "where-used", hash_bytes(b"deleted later\n").hex)
    assert (code, used["versions"]) == (0, [{"version": "d:v0", "path": "d.csv",
                                             "state": "deleted"}])
    code, used = pipeline.json(capsys, "where-used", hash_bytes(b"purged later\n").hex)
    assert (code, used["versions"]) == (0, [])


def test_a_forged_tombstone_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Someone with write access to the bucket rewrites the reason of a delete event and
    keeps its signature: the audit still shows the state, and flags the forgery (exit 1)."""
    url = str(tmp_path / "store")
    init_quick_store(url)
    create_project("lab", url, visibility="public")
    (tmp_path / "b.csv").write_bytes(B)
    with artifactstore.open(url, "lab") as store:
        store.log_artifact(tmp_path / "b.csv", name="b", type="dataset")
        with store.run(job_type="prep", capture_code=False) as run:
            run.use("b:v0")
            run.log_artifact(tmp_path / "b.csv", name="c", type="dataset")
        event = store.delete("b:v0", reason="bad labels")
    honest = Pipeline(url, "lab", run.id)
    code, report = honest.json(capsys, "audit", "c:v0")
    assert code == 0
    assert not [f for f in report["flags"] if f["code"] == "bad-signature"]
    backend = open_backend(url)
    key = f"{lifecycle_prefix('lab')}{event.seq:010d}"
    wrapper = encoding.unpack(backend.get(key)[8:])
    body = encoding.unpack(wrapper["body"])
    body["reason"] = "routine cleanup"
    wrapper["body"] = encoding.pack(body)
    backend.put(key, seal(Kind.LIFECYCLE, encoding.pack(wrapper)))
    # a fresh cache: this client never read the honest event
    with artifactstore.open(url, "lab", cache_dir=tmp_path / "other-cache") as store:
        flags = {(f.code, f.subject) for f in store.audit("c:v0", sync=True).flags}
    assert ("bad-signature", f"lifecycle#{event.seq}") in flags
    assert ("deleted-ancestor", "b:v0") in flags
