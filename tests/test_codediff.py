"""Code saving and ``runs diff-code`` (artifactstore/runs/codediff.py) against a real git
repository, with runs started by a real training script in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_calls import cli, cli_json
from git_repos import committed_repo, git, isolate_git

import artifactstore

TRAIN = """\
import os, sys
import artifactstore

lr = {lr}
with artifactstore.open(os.environ["STORE"]) as store:
    with store.run(job_type="train", save_code=sys.argv[1] == "save") as run:
        run.log({{"loss": lr}})
        print(run.id)
"""


def _train(repo: Path, store: str, *, save: bool) -> str:
    done = subprocess.run([sys.executable, "train.py", "save" if save else "plain"], cwd=repo,
                          env={**os.environ, "STORE": store}, capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate_git(monkeypatch)
    return committed_repo(tmp_path / "code", {"train.py": TRAIN.format(lr=0.1),
                                              "util.py": "SEED = 1\n"})


def test_defaults_record_the_sha_branch_and_dirty_flag_only(repo: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    (repo / "util.py").write_text("SEED = 2\n")  # dirty
    plain = _train(repo, store, save=False)
    saved = _train(repo, store, save=True)
    with artifactstore.open(store) as s:
        run = s.get_run(plain)
        assert run.code == {"commit": git(repo, "rev-parse", "HEAD"), "branch": "main",
                            "remote": None, "dirty": True}
        assert run.outputs == ()  # no patch, no file: nothing beyond the git state
        (code_ref,) = s.get_run(saved).outputs
        version = s.artifact(code_ref)
        assert version.type == "code"
        assert sorted(e.path for e in version.files()) == ["diff.patch", "entry/train.py"]
        with version.open("diff.patch") as f:
            assert b"+SEED = 2" in f.read()


def test_diff_code_shows_commits_diff_and_saved_changes(
        repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = str(tmp_path / "store")
    first = git(repo, "rev-parse", "HEAD")
    run_a = _train(repo, store, save=True)
    (repo / "train.py").write_text(TRAIN.format(lr=0.05))
    git(repo, "commit", "-qam", "lower the learning rate")
    second = git(repo, "rev-parse", "HEAD")
    (repo / "util.py").write_text("SEED = 7\n")  # uncommitted, saved in B's patch
    run_b = _train(repo, store, save=True)

    monkeypatch.chdir(repo)
    code, found = cli_json(capsys, "runs", "diff-code", run_a, run_b[:-4], "--store", store)
    assert code == 0
    assert (found["run_a"], found["run_b"]) == (run_a, run_b)
    assert (found["code_a"]["commit"], found["code_b"]["commit"]) == (first, second)
    assert (found["code_a"]["dirty"], found["code_b"]["dirty"]) == (False, True)
    assert found["commits"] == [f"{second} lower the learning rate"]
    assert "-lr = 0.1\n+lr = 0.05\n" in found["git_diff"]
    assert "+SEED = 7" in found["patch_diff"]  # B's uncommitted change
    assert "-lr = 0.1\n+lr = 0.05\n" in found["entry_diff"]
    assert found["changed"] is True
    assert found["notes"] == []

    code, out, _ = cli(capsys, "runs", "diff-code", run_a, run_b, "--store", store)
    assert code == 0
    assert f"1 commit(s) from A to B:\n  {second} lower the learning rate" in out
    assert "== git diff A B" in out
    assert "+lr = 0.05" in out

    # Outside the repository: the commits are named, git diff is not there to ask.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, found = cli_json(capsys, "runs", "diff-code", run_a, run_b, "--store", store)
    assert code == 0
    assert found["commits"] is None
    assert found["git_diff"] is None
    assert any("does not hold both commits" in n for n in found["notes"])
    assert "+SEED = 7" in found["patch_diff"]  # the saved code still compares
    code, found = cli_json(capsys, "runs", "diff-code", run_a, run_b, "--repo", str(repo),
                           "--store", store)
    assert found["commits"] == [f"{second} lower the learning rate"]


def test_diff_code_without_saved_code(repo: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    run_a = _train(repo, store, save=False)
    run_b = _train(repo, store, save=False)
    with artifactstore.open(store) as s:
        found = s.diff_code(run_a, run_b, repo=repo)
    assert found.same_commit
    assert not found.changed
    assert (found.patch_diff, found.entry_diff) == (None, None)
    assert sum("saved no code" in n for n in found.notes) == 2
    assert found.to_text().endswith("no change\n")
    code, _, err = cli(capsys, "runs", "diff-code", run_a, "nope", "--store", store)
    assert code == 3
    assert "nope" in err
