"""The runs commands: runs ls, runs show, runs export (JSON Lines and CSV)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from artifactstore.records.runs import SEGMENT_ROWS
from cli_calls import cli, cli_json

import artifactstore

PREP_ROWS = SEGMENT_ROWS + 2  # the history spans two metrics segments




@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """raw:v0; a finished run "prep" (raw -> clean:v0); a failed "train" run (clean -> model)."""
    monkeypatch.chdir(tmp_path)  # outside any git work tree: runs record no commit
    url = str(tmp_path / "store")
    files = tmp_path / "files"
    files.mkdir()
    with artifactstore.open(url) as store:
        (files / "raw.csv").write_text("a,b\n1,2\n")
        store.log_artifact(files / "raw.csv", name="raw", type="dataset")
        with store.run(name="prep", job_type="prep", tags=["nightly"],
                       config={"lr": 0.1, "opt": {"name": "adam", "betas": [0.9, 0.99]}}) as run:
            run.use("raw:latest")
            (files / "clean.csv").write_text("a\n1\n")
            run.log_artifact(files / "clean.csv", name="clean", type="dataset")
            for step in range(PREP_ROWS):
                run.log({"loss": 1 / (step + 1)})
        with pytest.raises(RuntimeError, match="boom"):
            _train(store, files)
    return url


def _train(store: artifactstore.Store, files: Path) -> None:
    with store.run(job_type="train", config={"epochs": 2}) as run:
        run.use("clean:latest")
        (files / "m.bin").write_bytes(b"weights")
        run.log_artifact(files / "m.bin", name="model", type="model")
        run.log({"acc": 0.5, "note": 'a,"b"\nc'})
        raise RuntimeError("boom")


def run_ids(capsys: pytest.CaptureFixture[str], url: str) -> dict[str, str]:
    code, runs = cli_json(capsys, "runs", "ls", "--store", url)
    assert code == 0
    return {r["job_type"]: r["run_id"] for r in runs}


def test_ls_lists_and_filters(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, runs = cli_json(capsys, "runs", "ls", "--store", url)
    assert code == 0
    assert [(r["name"], r["job_type"], r["status"]) for r in runs] == [
        ("prep", "prep", "finished"), (None, "train", "failed")]
    assert runs[0]["inputs"] == ["raw:v0"]
    assert runs[0]["outputs"] == ["clean:v0"]
    assert runs[1]["error"] == "RuntimeError: boom"
    for flags, expected in [
        (["--status", "failed"], ["train"]),
        (["--job-type", "prep"], ["prep"]),
        (["--tag", "nightly"], ["prep"]),
        (["--since", "2000-01-01"], ["prep", "train"]),
        (["--since", "2999-01-01T00:00"], []),
        (["--until", "2000-01-01T00:00+02:00"], []),
    ]:
        code, found = cli_json(capsys, "runs", "ls", *flags, "--store", url)
        assert (code, [r["job_type"] for r in found]) == (0, expected), flags
    code, out, err = cli(capsys, "runs", "ls", "--store", url)
    assert (code, err) == (0, "")
    header, prep, train = out.splitlines()
    assert header.split() == ["ID", "NAME", "JOB", "TYPE", "STATUS", "STARTED", "(UTC)",
                              "DURATION",
                              "INPUTS", "->", "OUTPUTS"]
    assert prep.startswith(runs[0]["run_id"])
    assert prep.endswith("raw:v0 -> clean:v0")
    assert "failed" in train


def test_ls_of_a_store_without_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "empty")
    artifactstore.open(url, create=True).close()
    assert cli_json(capsys, "runs", "ls", "--store", url) == (0, [])
    code, out, _ = cli(capsys, "runs", "ls", "--store", url)
    assert code == 0
    assert out.startswith("no runs yet")


def test_show_by_unique_prefix(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = run_ids(capsys, url)
    prefix = ids["prep"][:-4]
    code, shown = cli_json(capsys, "runs", "show", prefix, "--store", url)
    assert code == 0
    assert shown["run_id"] == ids["prep"]
    assert shown["config"] == {"lr": 0.1, "opt": {"name": "adam", "betas": [0.9, 0.99]}}
    assert shown["summary"] == {"loss": 1 / PREP_ROWS}
    assert shown["env"]["python"]
    assert shown["code"] == {"commit": None, "branch": None, "remote": None, "dirty": None}
    code, out, _ = cli(capsys, "runs", "show", ids["train"][:-4], "--store", url)
    assert code == 0
    lines = out.splitlines()
    assert f"run_id          {ids['train']}" in lines
    assert "error           RuntimeError: boom" in lines
    assert "  epochs = 2" in lines
    assert "outputs         model:v0" in lines


def test_export_csv_has_one_row_per_run(url: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "runs", "export", "--format", "csv", "--store", url)
    assert (code, err) == (0, "")
    reader = csv.DictReader(io.StringIO(out))
    rows = list(reader)
    assert len(rows) == 2
    assert reader.fieldnames is not None
    assert reader.fieldnames[:3] == ["run_id", "name", "job_type"]
    assert {"config.lr", "config.opt.name", "config.opt.betas", "config.epochs",
            "summary.loss", "summary.acc", "summary.note"} <= set(reader.fieldnames)
    prep, train = rows
    assert (prep["name"], prep["status"], prep["tags"]) == ("prep", "finished", "nightly")
    assert (prep["config.lr"], prep["config.opt.name"]) == ("0.1", "adam")
    assert prep["config.epochs"] == ""
    assert json.loads(prep["config.opt.betas"]) == [0.9, 0.99]
    assert (prep["inputs"], prep["outputs"], prep["error"]) == ("raw:v0", "clean:v0", "")
    assert (train["name"], train["status"], train["error"]) == ("", "failed", "RuntimeError: boom")
    assert train["summary.note"] == 'a,"b"\nc'  # quoting round-trips
    # To a file: the same rows, and a summary for scripts.
    target = tmp_path / "runs.csv"
    code, summary = cli_json(capsys, "runs", "export", "--format", "csv", "-o", str(target),
                             "--status", "finished", "--store", url)
    assert code == 0
    assert summary == {"output": str(target), "format": "csv", "history": False, "runs": 1,
                       "rows": 1}
    with target.open(newline="") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["prep"]


def test_export_csv_history_has_one_row_per_step(url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ids = run_ids(capsys, url)
    code, out, _ = cli(capsys, "runs", "export", "--format", "csv", "--history", "--store", url)
    assert code == 0
    reader = csv.DictReader(io.StringIO(out))
    rows = list(reader)
    assert reader.fieldnames == ["run_id", "step", "at", "metrics.loss", "metrics.acc",
                                 "metrics.note"]
    assert len(rows) == PREP_ROWS + 1
    prep = [r for r in rows if r["run_id"] == ids["prep"]]
    assert [int(r["step"]) for r in prep] == list(range(PREP_ROWS))
    assert float(prep[-1]["metrics.loss"]) == 1 / PREP_ROWS
    assert rows[-1]["run_id"] == ids["train"]
    assert (rows[-1]["metrics.acc"], rows[-1]["metrics.loss"]) == ("0.5", "")


def test_export_jsonl_with_and_without_history(url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "runs", "export", "--store", url)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["job_type"] for r in records] == ["prep", "train"]
    assert all("history" not in r for r in records)
    assert records[0]["config"]["opt"]["name"] == "adam"
    code, out, _ = cli(capsys, "runs", "export", "--history", "--store", url)
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 2
    prep, train = (r["history"] for r in records)
    assert [row["step"] for row in prep] == list(range(PREP_ROWS))
    assert prep[1]["values"] == {"loss": 0.5}
    assert [row["values"] for row in train] == [{"acc": 0.5, "note": 'a,"b"\nc'}]
    code, out, _ = cli(capsys, "runs", "export", "--history", "--status", "crashed",
                       "--store", url)
    assert (code, out) == (0, "")


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["runs", "ls", "--since", "yesterday"], 2, "since"),
        (["runs", "ls", "--status", "done"], 2, "unknown status"),
        (["runs", "show", "20991231T"], 3, "not found"),
        (["runs", "show", "2"], 2, "matches 2 runs"),
        (["runs", "export", "--until", "soon", "-o", "out.csv"], 2, "until"),
        (["runs", "export", "-o", "no/such/folder/out.csv"], 3, "does not exist"),
        (["runs", "export", "-o", "."], 2, "folder"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], code: int, words: str,
) -> None:  # fmt: skip
    before = sorted(tmp_path.iterdir())
    got, out, err = cli(capsys, *argv, "--store", url)
    assert got == code
    assert out == ""
    assert err.count("\n") == 1
    assert words in err
    assert "Traceback" not in err
    assert sorted(tmp_path.iterdir()) == before  # no output file, not even a partial one
