"""Issue 4 acceptance: runs and lineage across real processes, git repos and kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import blake3
import networkx as nx
import pytest
from git_repos import committed_repo, git, isolate_git

import artifactstore
from artifactstore.core.errors import InvalidInputError
from artifactstore.lineage.formats import export_graph, from_graphml

PIPELINE = {
    "prepare": """
        run = artifactstore.init_run(job_type="prepare", config={"split": 0.8})
        raw = artifactstore.use("raw:latest")
        raw.download("raw_copy")
        Path("dataset").mkdir(exist_ok=True)
        Path("dataset/train.csv").write_text(Path("raw_copy/data.csv").read_text().upper())
        run.log_artifact("dataset", name="dataset", type="dataset")
        run.finish()
    """,
    "train": """
        with artifactstore.open().run(job_type="train", config={"lr": 0.01}) as run:
            data = run.use("dataset:latest")
            Path("model.bin").write_bytes(b"weights:" + data.get_path("train.csv").read_bytes())
            for step in range(3):
                run.log({"loss": 1.0 / (step + 1)})
            run.log_artifact("model.bin", name="model", type="model", aliases=["candidate"])
    """,
    "evaluate": """
        run = artifactstore.init_run(job_type="evaluate")
        model = artifactstore.use("model:candidate")
        Path("report.json").write_text('{"accuracy": 0.9}')
        run.log_artifact("report.json", name="report", type="report")
    """,  # no finish(): the interpreter's exit finishes the run
}


def run_script(workdir: Path, body: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = workdir / "stage.py"
    script.write_text("import artifactstore\nfrom pathlib import Path\n" + textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], cwd=workdir, env=env,
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture
def store_env(tmp_path: Path) -> tuple[str, dict[str, str]]:
    url = str(tmp_path / "store")
    env = {**os.environ, "ARTIFACTSTORE_URL": url,
           "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache")}
    return url, env


def test_three_stage_pipeline_in_separate_processes(tmp_path: Path,
                                                     store_env: tuple[str, dict[str, str]]) -> None:
    url, env = store_env
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "data.csv").write_text("a,b\n1,2\n")
    with artifactstore.open(url, cache_dir=tmp_path / "c0") as store:
        store.log_artifact(tmp_path / "raw", name="raw", type="raw-data")
    for stage, body in PIPELINE.items():
        workdir = tmp_path / stage
        workdir.mkdir()
        done = run_script(workdir, body, env)
        assert done.returncode == 0, f"{stage}: {done.stderr}"

    with artifactstore.open(url, cache_dir=tmp_path / "c1") as store:
        runs = {r.job_type: r for r in store.runs()}
        assert {k: r.status for k, r in runs.items()} == dict.fromkeys(PIPELINE, "finished")
        rid = {k: f"run:{r.run_id}" for k, r in runs.items()}
        graph = store.lineage()
        assert set(graph.nodes) == {"raw:v0", "dataset:v0", "model:v0", "report:v0",
                                    *rid.values()}
        assert set(graph.edges) == {
            ("raw:v0", rid["prepare"]), (rid["prepare"], "dataset:v0"),
            ("dataset:v0", rid["train"]), (rid["train"], "model:v0"),
            ("model:v0", rid["evaluate"]), (rid["evaluate"], "report:v0"),
        }
        assert "raw:v0" in store.upstream("report:latest")
        assert "report:v0" in store.downstream("raw:v0")
        assert set(store.upstream("model:v0", depth=1)) == {"model:v0", rid["train"],
                                                             "dataset:v0"}
        assert runs["train"].config == {"lr": 0.01}
        assert runs["train"].summary == {"loss": pytest.approx(1 / 3)}
        assert [row.values["loss"] for row in store.run_history(runs["train"].run_id)] == \
            pytest.approx([1.0, 0.5, 1 / 3])
        assert store.artifact("model:v0").record.run == runs["train"].run_id


def test_run_killed_after_use_keeps_its_input_and_is_crashed(
        tmp_path: Path, store_env: tuple[str, dict[str, str]]) -> None:
    url, env = store_env
    with artifactstore.open(url, cache_dir=tmp_path / "c0") as store:
        (tmp_path / "d.txt").write_text("data")
        store.log_artifact(tmp_path / "d.txt", name="data", type="dataset")
    marker = tmp_path / "used"
    script = tmp_path / "victim.py"
    script.write_text(textwrap.dedent(f"""
        import time, artifactstore
        from pathlib import Path
        run = artifactstore.init_run(job_type="train")
        artifactstore.use("data:v0")
        Path({str(marker)!r}).write_text(run.id)
        time.sleep(120)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)  # polling a condition with a deadline
        assert marker.exists(), "the run never reached use()"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run_id = marker.read_text()
    with artifactstore.open(url, cache_dir=tmp_path / "c1") as store:
        run = store.get_run(run_id)
        assert run.status == "crashed"
        assert run.inputs == ("data:v0",)
        assert ("data:v0", f"run:{run_id}") in store.lineage().edges
        report = store.audit("data:v0")
        assert report.ok  # the crashed run is downstream of data, not its provenance


def test_failed_runs_keep_the_message(tmp_path: Path,
                                      store_env: tuple[str, dict[str, str]]) -> None:
    url, env = store_env
    with artifactstore.open(url, cache_dir=tmp_path / "c0") as store:
        with pytest.raises(ZeroDivisionError), store.run(job_type="train") as run:
            1 / 0  # noqa: B018
        assert store.get_run(run.id).status == "failed"
        assert store.get_run(run.id).error == "ZeroDivisionError: division by zero"
    done = run_script(tmp_path, """
        run = artifactstore.init_run(name="script run")
        raise RuntimeError("out of memory on step 7")
    """, env)
    assert done.returncode == 1
    assert "RuntimeError" in done.stderr
    with artifactstore.open(url, cache_dir=tmp_path / "c1") as store:
        (failed,) = store.runs(status="failed", sync=True)[1:]
        assert failed.name == "script run"
        assert failed.error == "RuntimeError: out of memory on step 7"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_git(monkeypatch)
    repo = committed_repo(tmp_path / "repo", {"train.py": "print('train')\n",
                                              "lib/util.py": "X = 1\n"})
    monkeypatch.chdir(repo)
    return repo


def test_code_state_from_a_real_git_repository(tmp_path: Path, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    with artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "c") as store:
        with store.run(job_type="train") as clean:
            pass
        (repo / "lib" / "util.py").write_text("X = 2\n")
        (repo / "lib" / "new.py").write_text("Y = 3\n")
        (repo / "train.py").unlink()
        with store.run(job_type="train", save_code=True) as dirty:
            pass
        info = {r.run_id: r for r in store.runs()}
        assert info[clean.id].code == {"commit": head, "branch": "main", "remote": None,
                                       "dirty": False}
        assert info[dirty.id].git_dirty is True
        assert info[dirty.id].git_commit == head
        (code_ref,) = [o for o in info[dirty.id].outputs if o.startswith("code-")]
        patch = tmp_path / "diff.patch"
        with store.artifact(code_ref).open("diff.patch") as f:
            patch.write_bytes(f.read())
        assert ("run:" + dirty.id, code_ref) in store.lineage().edges

    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(repo), str(checkout)], check=True)
    git(checkout, "checkout", "-q", head)
    git(checkout, "apply", str(patch))
    files = {p.relative_to(checkout).as_posix(): p.read_bytes()
             for p in checkout.rglob("*") if p.is_file() and ".git" not in p.parts}
    original = {p.relative_to(repo).as_posix(): p.read_bytes()
                for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert files == original


def test_runs_outside_git_have_empty_code_fields(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    with artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "c") as store:
        with store.run(save_code=True) as run:
            pass
        info = store.get_run(run.id)
        assert info.git_commit is None
        assert info.git_dirty is None
        assert info.outputs == ()  # nothing to save outside a repository


def test_impact_and_where_used(tmp_path: Path) -> None:
    with artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "c") as store:
        src = tmp_path / "data"
        src.mkdir()
        (src / "images").mkdir()
        (src / "images" / "cat.png").write_bytes(b"cat pixels")
        store.log_artifact(src, name="dataset", type="dataset")
        (src / "images" / "cat.png").rename(src / "cat-moved.png")
        store.log_artifact(src, name="dataset", type="dataset")
        for generation in range(2):
            for i in range(2):
                with store.run(job_type="train") as run:
                    parent = "dataset:v0" if generation == 0 else f"model-g0-{i}:latest"
                    run.use(parent)
                    model = tmp_path / f"m{generation}{i}"
                    model.write_bytes(f"model {generation} {i}".encode())
                    run.log_artifact(model, name=f"model-g{generation}-{i}", type="model")
        assert store.impact("dataset:v0") == ["model-g0-0:v0", "model-g0-1:v0",
                                              "model-g1-0:v0", "model-g1-1:v0"]
        assert store.impact("dataset:v1") == []
        use = store.where_used(blake3.blake3(b"cat pixels").hexdigest())
        assert use.versions == (("dataset:v0", "images/cat.png"),
                                ("dataset:v1", "cat-moved.png"))
        assert len(use.runs) == 2  # the two first-generation runs used dataset:v0
        assert store.where_used("00" * 32).versions == ()
        with pytest.raises(InvalidInputError):
            store.where_used("not a digest")


def test_exports_load_back_and_render(tmp_path: Path, graphviz_dot: str) -> None:
    with artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "c") as store:
        (tmp_path / "a").write_text("a")
        store.log_artifact(tmp_path / "a", name="raw", type="raw")
        with store.run(name='odd "name" <x>', job_type="prepare") as run:
            run.use("raw:v0")
            run.log_artifact(tmp_path / "a", name="clean", type="dataset")
        graph = store.upstream("clean:latest")
    loaded = from_graphml(export_graph(graph, "graphml"))
    assert set(loaded.nodes) == set(graph.nodes)
    assert set(loaded.edges) == set(graph.edges)
    via_networkx = nx.parse_graphml(export_graph(graph, "graphml"))
    assert set(via_networkx.edges) == set(graph.edges)
    done = subprocess.run([graphviz_dot, "-Tsvg"], input=export_graph(graph, "dot"), text=True,
                          capture_output=True, check=False)
    assert done.returncode == 0
    assert done.stderr == ""
    assert "<svg" in done.stdout


def test_second_process_sees_a_new_run_after_its_next_sync(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    with artifactstore.open(url, cache_dir=tmp_path / "c1", create=True) as writer, \
            artifactstore.open(url, cache_dir=tmp_path / "c2") as reader:
        assert reader.runs(sync=True) == []
        with writer.run(job_type="train") as run:
            pass
        assert reader.runs(sync=False) == []  # the catalog answers without listing
        reader.sync()
        assert [r.run_id for r in reader.runs(sync=False)] == [run.id]
