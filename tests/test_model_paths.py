"""Paths inside artifacts: validation and joining under a download folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from artifactstore.core.errors import InvalidInputError

from artifactstore.model.paths import (
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    join_under,
    name_problem,
    validate_path,
)

GOOD = [
    "a",
    "a.txt",
    "data/train/0001.parquet",
    "données/日本.txt",
    "emoji/🙂.png",
    ".hidden/.env",
    "...",  # a name of three dots is a name, not a parent reference
    "a..b/c..",
    "with space/and-dash_underscore",
    "x" * MAX_NAME_BYTES,
    "/".join(["d" * 200] * 20),  # 4019 bytes
    "é" * (MAX_NAME_BYTES // 2),
]

BAD = [
    ("", "empty"),
    ("/etc/passwd", "absolute"),
    ("/", "absolute"),
    ("../../etc/passwd", "'..'"),
    ("..", "'..'"),
    ("a/../b", "'..'"),
    ("a/..", "'..'"),
    (".", "'.'"),
    ("./a", "'.'"),
    ("a/./b", "'.'"),
    ("a//b", "empty segments"),
    ("a/", "empty segments"),
    ("a\\b", "backslash"),
    ("..\\..\\windows", "backslash"),
    ("a\x00b", "NUL"),
    ("a/\x00", "NUL"),
    ("x" * (MAX_NAME_BYTES + 1), "256 bytes"),
    ("é" * 128, "256 bytes"),
    ("/".join(["d" * 250] * 17), "over the 4096-byte limit"),
    ("bad\udcffname", "UTF-8"),
]


@pytest.mark.parametrize("path", GOOD)
def test_valid_paths_are_returned_unchanged(path: str) -> None:
    assert validate_path(path) is path


@pytest.mark.parametrize(("path", "rule"), BAD)
def test_invalid_paths_are_refused_naming_path_and_rule(path: str, rule: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_path(path)
    message = str(info.value)
    assert rule in message
    assert "\n" not in message
    if path:
        assert repr(path)[:40] in message


def test_non_str_path_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="str, not bytes"):
        validate_path(b"a/b")  # type: ignore[arg-type]


def test_limits_are_utf8_bytes() -> None:
    assert len("/".join(["d" * 200] * 20).encode()) <= MAX_PATH_BYTES
    assert name_problem("日" * 85) is None  # 255 bytes
    assert name_problem("日" * 86) is not None  # 258 bytes


@pytest.mark.parametrize("name", ["a", "données", "..."])
def test_name_problem_accepts_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "\x00"])
def test_name_problem_refuses_non_names(name: str) -> None:
    assert name_problem(name) is not None


def test_join_under_joins_inside_root(tmp_path: Path) -> None:
    assert join_under(tmp_path, "a/b/c.txt") == tmp_path / "a" / "b" / "c.txt"
    (tmp_path / "inner").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "inner")  # a link that stays inside is fine
    assert join_under(tmp_path, "link/x") == tmp_path / "link" / "x"


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a//b"])
def test_join_under_validates_the_path(tmp_path: Path, path: str) -> None:
    with pytest.raises(InvalidInputError):
        join_under(tmp_path, path)


def test_join_under_refuses_a_symlinked_directory_leading_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "download", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "data").symlink_to(outside)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        join_under(root, "data/passwd")
    (root / "deep").mkdir()
    (root / "deep" / "up").symlink_to(outside)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        join_under(root, "deep/up/more/file")


def test_join_under_refuses_a_file_symlink_leading_out(tmp_path: Path) -> None:
    root = tmp_path / "download"
    root.mkdir()
    (root / "passwd").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InvalidInputError, match="symbolic link"):
        join_under(root, "passwd")


def test_join_under_accepts_a_root_reached_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    target = join_under(tmp_path / "alias", "a/b")
    assert os.fspath(target) == os.fspath(tmp_path / "alias" / "a" / "b")
