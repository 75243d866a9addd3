"""The export and import commands: output, --json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_calls import cli, cli_json

import artifactstore
from artifactstore.model.exports import MANIFEST_NAME


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """raw:v0 and a run "prepare" (raw:v0 -> dataset:v0); dataset:v0 is production."""
    monkeypatch.chdir(tmp_path)  # outside any git work tree: runs record no commit
    url = str(tmp_path / "a")
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("A,B\n1,2\n")
    with artifactstore.open(url) as store:
        store.log_artifact(tmp_path / "raw.csv", name="raw", type="raw-data")
        with store.run(job_type="prepare", config={"split": 0.8}) as run:
            run.use("raw:v0")
            run.log_artifact(tmp_path / "data", name="dataset", type="dataset",
                             metadata={"rows": 1}, description="cleaned",
                             aliases=["production"])
    return url


def _new_store(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    """An empty public store at ``path``: import writes only into a store that exists."""
    assert cli(capsys, "init", str(path), "--public", "--quiet")[0] == 0
    return str(path)


def test_export_and_import_json(url: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    b = _new_store(capsys, tmp_path / "b")
    for target, kind in (("e", "dir"), ("e.tar", "tar"), ("e.tar.gz", "tar.gz")):
        code, out = cli_json(capsys, "export", "dataset:production", str(tmp_path / target),
                             "--store", url)
        assert code == 0
        assert out["ref"] == "dataset:v0"
        assert (out["kind"], out["files"], out["bytes"], out["references"]) == (kind, 1, 8, 0)
        assert out["manifest"] == MANIFEST_NAME
        assert out["inputs"] == ["raw:v0"]
        assert out["run_id"] is not None
    code, out = cli_json(capsys, "import", str(tmp_path / "e.tar"), "--store", b, "--aliases")
    assert code == 0
    assert (out["ref"], out["source_ref"], out["created"], out["same_digest"]) == \
        ("dataset:v0", "dataset:v0", True, True)
    assert out["aliases"] == ["production"]
    assert out["original_run_id"] is not None
    assert out["run_id"] != out["original_run_id"]
    assert out["inputs"] == [{"ref": "raw:v0", "digest": out["inputs"][0]["digest"],
                              "linked": None, "matched_by": None, "missing": True,
                              "recorded": True}]
    code, runs = cli_json(capsys, "runs", "ls", "--store", b)
    assert code == 0
    assert [(r["job_type"], r["config"], r["inputs"], r["outputs"]) for r in runs] == \
        [("prepare", {"split": 0.8}, ["raw:v0"], ["dataset:v0"])]
    assert f"imported_from={out['original_run_id']}" in runs[0]["tags"]
    code, again = cli_json(capsys, "import", str(tmp_path / "e"), "--store", b,
                           "--name", "copy")
    assert (code, again["ref"], again["created"]) == (0, "copy:v0", True)


def test_human_output(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "export", "dataset", str(tmp_path / "e"), "--store", url)
    assert (code, err) == (0, "")
    assert out.startswith(f"exported dataset:v0 to {tmp_path / 'e'}: 1 files, 8 bytes")
    b = _new_store(capsys, tmp_path / "b")
    code, out, err = cli(capsys, "import", str(tmp_path / "e"), "--store", b)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("imported dataset:v0 as dataset:v0 (8 bytes, digest ")
    assert lines[1].startswith("run ")
    assert " stands for run " in lines[1]
    assert lines[2] == "  input raw:v0 missing in this store"
    code, out, _ = cli(capsys, "import", str(tmp_path / "e"), "--store", b, "--quiet")
    assert (code, out) == (0, "")


def test_export_of_a_missing_ref_exits_3(url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    for ref in ("nothing", "dataset:v7", "dataset:staging"):
        code, out, err = cli(capsys, "export", ref, str(tmp_path / "e"), "--store", url)
        assert code == 3, ref
        assert out == ""
        assert err.startswith("artifactstore: error: ")
    assert not (tmp_path / "e").exists()
    code, out = cli_json(capsys, "export", "nothing", str(tmp_path / "e"), "--store", url)
    assert (code, out["error"], out["exit_code"]) == (3, "NotFoundError", 3)


def test_export_to_a_non_empty_folder_exits_4_unless_forced(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "notes.txt").write_text("mine")
    code, _, err = cli(capsys, "export", "dataset", str(tmp_path / "e"), "--store", url)
    assert code == 4
    assert "--force" in err
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["notes.txt"]
    code, out = cli_json(capsys, "export", "dataset", str(tmp_path / "e"), "--store", url,
                         "--force")
    assert (code, out["kind"]) == (0, "dir")
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == [MANIFEST_NAME, "files",
                                                                  "notes.txt"]


def tamper(folder: Path, how: str) -> None:
    manifest_path = folder / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text("utf-8"))
    if how == "byte":
        path = folder / "files" / "train.csv"
        path.write_bytes(b"a" + path.read_bytes()[1:])
    elif how == "digest":
        manifest["files"][0]["blake3"] = "0" * 64
    elif how == "traversal":
        manifest["files"][0]["path"] = "../../etc/passwd"
    elif how == "absolute":
        manifest["files"][0]["path"] = "/etc/passwd"
    manifest_path.write_text(json.dumps(manifest), "utf-8")


@pytest.mark.parametrize(("how", "exit_code", "error"), [
    ("byte", 5, "IntegrityError"), ("digest", 5, "IntegrityError"),
    ("traversal", 2, "InvalidInputError"), ("absolute", 2, "InvalidInputError"),
])
def test_tampered_export_is_refused_and_nothing_is_logged(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str,
        exit_code: int, error: str) -> None:
    assert cli(capsys, "export", "dataset", str(tmp_path / "e"), "--store", url)[0] == 0
    tamper(tmp_path / "e", how)
    b = _new_store(capsys, tmp_path / "b")
    code, out = cli_json(capsys, "import", str(tmp_path / "e"), "--store", b)
    assert (code, out["error"], out["exit_code"]) == (exit_code, error, exit_code)
    # refused before the project was created: the store holds its config alone
    assert [p.name for p in Path(b).rglob("*")] == ["config"]


def test_import_of_a_missing_source_exits_3(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "import", str(tmp_path / "nothing.tar"),
                       "--store", _new_store(capsys, tmp_path / "b"))
    assert code == 3
    assert "does not exist" in err


def test_the_commands_name_the_manifest_as_the_format_does() -> None:
    from artifactstore.cli import transfer
    from artifactstore.model import exports

    assert transfer.MANIFEST_NAME == exports.MANIFEST_NAME
