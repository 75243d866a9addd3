"""bench/files_scale.py (``python -m bench files``) at a tiny scale: its generator and
checks, and one run end to end; nothing is timed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import files_scale  # noqa: E402

pytestmark = pytest.mark.slow


def test_tree_is_deterministic_and_shaped(tmp_path: Path) -> None:
    total = files_scale.generate_tree(tmp_path / "a", 60, 7, seed=3)
    files_scale.generate_tree(tmp_path / "b", 60, 7, seed=3)
    paths = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.bin"))
    assert len(paths) == 60
    assert len({p.parent for p in paths}) == 7
    sizes = [(tmp_path / "a" / p).stat().st_size for p in paths]
    assert total == sum(sizes)
    assert min(sizes) >= 1024
    assert max(sizes) <= 8192
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes()
               for p in paths)
    assert files_scale.check_restore(tmp_path / "a", tmp_path / "b", 60, 7, 1) == ""
    changed = files_scale.change_folder(tmp_path / "b", 60, 7, seed=3)
    assert len(changed) == 10
    assert {c.split("/")[0] for c in changed} == {"d0000"}
    assert files_scale.check_restore(tmp_path / "a", tmp_path / "b", 60, 7, 1) != ""


def test_huge_file_is_sparse_and_checked_by_streaming(tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    files_scale.write_big(path, 3, seed=5)
    assert path.stat().st_size == 3 << 20
    assert files_scale.file_digest(path) == files_scale.big_digest(3, seed=5)
    assert files_scale.big_digest(3, seed=5) != files_scale.big_digest(3, seed=6)
    if hasattr(os.stat_result, "st_blocks"):
        assert path.stat().st_blocks * 512 < 2 << 20  # the holes take no disk


def test_end_to_end_at_a_tiny_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    code = files_scale.main(["--files", "40", "--folders", "8", "--big-gib", "0.005",
                             "--out", str(tmp_path / "work"), "--json", str(out),
                             "--verify", "all"])
    assert code == 0
    steps = [m["step"] for m in json.loads(out.read_text())["measures"]]
    assert steps == ["cp -r", "init", "log", "re-log unchanged", "log after a change",
                     "ls NAME", "show REF FOLDER", "diff V1 V3 FOLDER", "get (restore v1)",
                     "big: init", "big: log", "big: show", "big: get"]
    assert "| get (restore v1) |" in capsys.readouterr().out
    assert not (tmp_path / "work").exists()


def test_ab_logs_a_copy_of_a_source_it_does_not_change(tmp_path: Path) -> None:
    source = tmp_path / "shared"
    files_scale.generate_tree(source, 40, 8, seed=20)
    before = {p: p.read_bytes() for p in source.rglob("*.bin")}
    out = tmp_path / "out.json"
    code = files_scale.main(["--files", "40", "--folders", "8", "--ab", "none", "--rounds",
                             "1", "--source", str(source), "--out", str(tmp_path / "work"),
                             "--json", str(out)])
    assert code == 0
    steps = [m["step"] for m in json.loads(out.read_text())["measures"]]
    assert steps == ["cp -r", "init [after 1]", "log [after 1]",
                     "re-log unchanged [after 1]", "log after 11 changes [after 1]"]
    assert {p: p.read_bytes() for p in source.rglob("*.bin")} == before


def test_a_shared_source_is_only_read(tmp_path: Path) -> None:
    src = tmp_path / "shared"
    files_scale.generate_tree(src, 30, 5, seed=4)
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    out = tmp_path / "out.json"
    code = files_scale.main(["--source", str(src), "--folders", "5", "--out",
                             str(tmp_path / "work"), "--json", str(out), "--verify", "all"])
    assert code == 0
    steps = [m["step"] for m in json.loads(out.read_text())["measures"]]
    assert steps == ["init", "log", "re-log unchanged", "ls NAME", "show REF FOLDER",
                     "get (restore v1)", "cp -r"]
    assert {p: p.stat().st_mtime_ns for p in src.rglob("*")} == before
    assert not (tmp_path / "work").exists()  # everything it made is gone
