"""upstream / downstream walked in the catalog (lineage/walk.py, issue 20) give exactly
the subgraph the whole graph gives: same nodes, attributes and edges, for every node,
both directions and several depths, over aliases, deleted versions and runs, an output
logged back unchanged, a version whose record vanished and a run that warm-starts."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_calls import cli

import artifactstore
from artifactstore.lineage.formats import export_graph
from artifactstore.lineage.graph import build_graph, neighbourhood
from artifactstore.lineage.walk import has_node, resolve, walk
from artifactstore.runs.queries import this_host


def _same(expected: Any, got: Any) -> None:
    assert dict(expected.nodes(data=True)) == dict(got.nodes(data=True))
    assert sorted(expected.edges(data=True)) == sorted(got.edges(data=True))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("walk")
    url = str(tmp / "store")
    rng = random.Random(20)
    files = tmp / "files"
    files.mkdir()
    n = 0

    def new_file() -> Path:
        nonlocal n
        n += 1
        path = files / f"f{n}.bin"
        path.write_bytes(f"content {n}\n".encode() * 40)
        return path

    with artifactstore.open(url, create=True) as store:
        for name in ("raw-a", "raw-b", "raw-c"):
            for _ in range(2):
                store.log_artifact(new_file(), name=name, type="dataset")
        made: list[str] = ["raw-a:v0", "raw-a:v1", "raw-b:v0", "raw-b:v1", "raw-c:v1"]
        for i in range(8):
            with store.run(name=f"job{i}", job_type="train", capture_code=False) as run:
                for ref in rng.sample(made, k=min(len(made), rng.randint(1, 3))):
                    run.use(ref)
                out = run.log_artifact(new_file(), name=f"model-{i % 3}", type="model",
                                       aliases=["best"] if i % 2 else ())
                made.append(f"{out.name}:v{out.number}")
                if i == 3:  # logs back, unchanged, a version it used: no new version
                    run.use("raw-b:v1")
                    run.log_artifact(files / "f4.bin", name="raw-b", type="dataset")
        store.delete("model-0:v0", reason="bad")
        store.delete("raw-c:v0", reason="old")
        runs = store.runs()
        store.delete_run(runs[2].run_id, reason="leaked")
        store.artifact("model-1:v0")  # exists
        gone = store.objects.backend  # a version record vanishes behind our back
        keys = [k for k in gone.list("projects/default/artifacts/model-2/versions/")]
        gone.delete(sorted(keys)[0])
        store.catalog.sync(full=True)
    return url


def test_every_walk_equals_the_whole_graphs_neighbourhood(project: str) -> None:
    with artifactstore.open(project) as store:
        catalog = store.context.catalog
        catalog.ensure_fresh(True)
        whole = build_graph(catalog, catalog.runs(host=this_host()))
        assert whole.number_of_nodes() > 20
        states = {d.get("state") for _, d in whole.nodes(data=True)}
        assert {"live", "deleted", "missing"} <= states
        for node in whole.nodes:
            assert has_node(catalog, node)
            for up in (True, False):
                for depth in (None, 0, 1, 2):
                    got = walk(catalog, node, upstream=up, depth=depth, host=this_host())
                    _same(neighbourhood(whole, node, upstream=up, depth=depth),
                          got.to_networkx())
                    assert got.to_json() == export_graph(got.to_networkx(), "json")
        assert not has_node(catalog, "model-0:v99")
        assert not has_node(catalog, "run:20000101T000000000000Z-00000000")


def test_refs_resolve_from_the_catalog_as_the_graph_resolves_them(project: str) -> None:
    with artifactstore.open(project) as store:
        catalog = store.context.catalog
        catalog.ensure_fresh(True)
        whole = build_graph(catalog, catalog.runs(host=this_host()))
        for node, data in whole.nodes(data=True):
            if data.get("kind") != "version":
                continue
            expected = None if data["missing"] else node
            assert resolve(catalog, node) == expected
            for alias in data["aliases"]:
                assert resolve(catalog, f"{data['artifact']}:{alias}") == node
        assert resolve(catalog, "model-0:nope") is None
        assert resolve(catalog, "nothing:latest") is None


def test_the_cli_draws_the_apis_upstream_without_importing_networkx(
        project: str, capsys: pytest.CaptureFixture[str]) -> None:
    with artifactstore.open(project) as store:
        expected = store.upstream("model-1:latest")
    code, out, _ = cli(capsys, "lineage", "model-1:latest", "--store", project)
    assert code == 0
    for node in expected.nodes:
        assert node in out
    for extra in ([], ["--json"]):  # the JSON export too (issue 20's warm lineage)
        script = ("import sys; from artifactstore.cli.main import main; "
                  f"code = main(['lineage', 'model-1:latest', '--store', {project!r}, "
                  f"*{extra!r}]); sys.exit(3 if 'networkx' in sys.modules else code)")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "model-1:v" in done.stdout
