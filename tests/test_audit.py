"""Audits: provenance tree, alias history, integrity (full and sampled) and every flag."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from git_repos import committed_repo, git, isolate_git

import artifactstore
from artifactstore import Store
from artifactstore.core.errors import IntegrityError, InvalidInputError
from artifactstore.core.synthetic import random_bytes
from artifactstore.objects.layout import pack_prefix
from artifactstore.records.versions import version_key


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean git repository as the working directory, so runs record a clean tree."""
    isolate_git(monkeypatch)
    repo = committed_repo(tmp_path / "repo", {".gitignore": "work/\n", "train.py": "print(1)\n"})
    (repo / "work").mkdir()
    monkeypatch.chdir(repo)
    return repo


@pytest.fixture
def store(tmp_path: Path, repo: Path) -> Iterator[Store]:
    opened = artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "cache")
    yield opened
    opened.close()


def pipeline(store: Store, work: Path) -> tuple[str, str]:
    (work / "raw.csv").write_bytes(random_bytes(300_000, seed=1))
    store.log_artifact(work / "raw.csv", name="raw", type="dataset")
    with store.run(job_type="prepare", config={"split": 0.8}) as prep:
        prep.use("raw:v0")
        (work / "clean.csv").write_bytes(random_bytes(200_000, seed=2))
        prep.log_artifact(work / "clean.csv", name="clean", type="dataset")
    with store.run(job_type="train", config={"lr": 0.1}) as train:
        train.use("clean:latest")
        train.log({"loss": 0.25})
        (work / "model.bin").write_bytes(random_bytes(500_000, seed=3))
        train.log_artifact(work / "model.bin", name="model", type="model",
                           aliases=["production"])
    return prep.id, train.id


def test_a_clean_version_audits_ok_in_every_format(store: Store, repo: Path) -> None:
    prep, train = pipeline(store, repo / "work")
    report = store.audit("model:production")
    assert report.ok, report.flags
    assert report.ref == "model:v0"
    tree = report.provenance()
    (run,) = tree["from"]
    assert run["run_id"] == train
    assert run["status"] == "finished"
    assert run["code"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert run["code"]["dirty"] is False
    assert run["config"] == {"lr": 0.1}
    assert run["summary"] == {"loss": 0.25}
    (clean,) = run["from"]
    assert clean["node"] == "clean:v0"
    assert len(clean["digest"]) == 64
    assert clean["from"][0]["run_id"] == prep
    assert clean["from"][0]["from"][0]["node"] == "raw:v0"
    assert report.integrity.chunks == report.integrity.chunks_read > 0
    assert report.integrity.problems == ()
    as_json = json.loads(report.to_json())
    assert as_json["ok"] is True
    assert as_json["provenance"]["node"] == "model:v0"
    text = report.to_text()
    assert text.startswith("Audit of model:v0: OK")
    assert train in text
    assert prep in text
    assert report.to_markdown().startswith("# Audit of model:v0: OK")


def test_alias_history_says_who_moved_it_when(store: Store, repo: Path) -> None:
    pipeline(store, repo / "work")
    (repo / "work" / "model.bin").write_bytes(b"v1")
    store.log_artifact(repo / "work" / "model.bin", name="model", type="model")
    store.set_alias("model:v1", "production")
    store.set_alias("model:v0", "production")
    report = store.audit("model:v0")
    events = report.alias_history["production"]
    assert [(e.previous, e.target) for e in events] == [(None, 0), (0, 1), (1, 0)]
    assert all("@" in e.by for e in events)
    assert "production #1: v0 -> v1" in report.to_text()


def test_failed_dirty_and_crashed_runs_are_flagged(store: Store, repo: Path,
                                                   tmp_path: Path) -> None:
    pipeline(store, repo / "work")
    (repo / "train.py").write_text("print(2)\n")  # uncommitted change
    run = store.run(job_type="finetune")
    run.use("model:v0")
    run.log_artifact(repo / "train.py", name="tuned", type="model")
    run.finish(error=RuntimeError("diverged"))
    codes = {(f.code, f.subject) for f in store.audit("tuned:v0").flags}
    assert codes == {("run-failed", f"run:{run.id}"), ("dirty-tree", f"run:{run.id}")}
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, artifactstore
        store = artifactstore.open({str(tmp_path / "store")!r}, cache_dir={str(tmp_path)!r})
        run = store.run(job_type="export", capture_code=False)
        run.use("tuned:v0")
        run.log_artifact({str(repo / "train.py")!r}, name="exported", type="model")
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    subprocess.run([sys.executable, str(script)], check=False)
    flags = {f.code for f in store.audit("exported:v0", sync=True).flags}
    assert {"run-crashed", "no-code-state", "run-failed", "dirty-tree"} <= flags


def test_a_deleted_ancestor_is_flagged(store: Store, repo: Path, tmp_path: Path) -> None:
    pipeline(store, repo / "work")
    store.sync()
    (tmp_path / "store" / version_key("default", "raw", 0)).unlink()
    # This client saw raw:v0: it refuses, as every command does (local/watermarks.py) ...
    with pytest.raises(IntegrityError, match=r"withheld or deleted: this client saw raw:v0"):
        store.audit("model:v0", sync=True)
    # ... and a client that never saw it flags the missing ancestor.
    with artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "fresh") as fresh:
        report = fresh.audit("model:v0", sync=True)
    assert [(f.code, f.subject) for f in report.flags] == [("missing-ancestor", "raw:v0")]
    assert "raw:v0" in report.to_text()
    assert "MISSING" in report.to_text()


def test_tampered_and_missing_chunks_are_named(store: Store, repo: Path,
                                               tmp_path: Path) -> None:
    pipeline(store, repo / "work")
    store.close()
    packs = [p for p in (tmp_path / "store" / pack_prefix("plain")).rglob("*") if p.is_file()]
    biggest = max(packs, key=lambda p: p.stat().st_size)
    raw = bytearray(biggest.read_bytes())
    raw[50] ^= 0xFF
    biggest.write_bytes(bytes(raw))
    with artifactstore.open(tmp_path / "store", cache_dir=tmp_path / "cache") as reopened:
        reports = [reopened.audit(ref) for ref in ("raw:v0", "clean:v0", "model:v0")]
        damaged = [r for r in reports if not r.ok]
        assert len(damaged) == 1
        (flag,) = damaged[0].flags
        assert flag.code == "corrupt-blob"
        assert flag.message.endswith((".csv", ".bin"))
        biggest.unlink()
        again = reopened.audit(damaged[0].ref)
        assert {f.code for f in again.flags} == {"missing-blob"}


def test_sampled_integrity_is_deterministic(store: Store, repo: Path) -> None:
    work = repo / "work"
    (work / "big.bin").write_bytes(random_bytes(8 << 20, seed=5))
    store.log_artifact(work / "big.bin", name="big", type="model")
    full = store.audit("big:v0").integrity
    half = store.audit("big:v0", sample=0.5).integrity
    assert full.chunks_read == full.chunks > 20
    assert 0 < half.chunks_read < full.chunks
    assert store.audit("big:v0", sample=0.5).integrity.chunks_read == half.chunks_read
    for bad in (0, 1.5, -0.1, True):
        with pytest.raises(InvalidInputError, match="sample"):
            store.audit("big:v0", sample=bad)
