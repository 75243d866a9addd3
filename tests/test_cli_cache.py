"""The cache commands: info and clean, as JSON and as text, parsed by their own register()."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from artifactstore.cli import cache as cache_cli
from artifactstore.core.digest import hash_bytes
from artifactstore.local.filecache import FileCache


def _parser() -> argparse.ArgumentParser:
    """The shape cli.main builds: global options in ``common``, one subparser per command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true")
    common.add_argument("--quiet", "-q", action="store_true")
    parser = argparse.ArgumentParser(prog="artifactstore", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text)
        if handler is not None:
            p.set_defaults(handler=handler)
        return p

    cache_cli.register(add, common)
    return parser


def run(*argv: str) -> Any:
    args = _parser().parse_args(list(argv))
    return args.handler(args)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FileCache:
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_MAX_BYTES", "1M")
    files = FileCache()
    for i in range(3):
        data = bytes([i]) * 1000
        (tmp_path / f"s{i}").write_bytes(data)
        files.insert(tmp_path / f"s{i}", hash_bytes(data))
    return files


def test_info_json(cache: FileCache, capsys: pytest.CaptureFixture[str]) -> None:
    result = run("cache", "info", "--json")
    assert capsys.readouterr().out == ""
    metadata = result.pop("metadata")
    assert result == {"root": str(cache.root), "entries": 3, "bytes": 3000,
                      "max_bytes": 1 << 20}
    assert set(metadata) == {"refs", "index", "catalog", "stat", "known"}
    json.dumps(result)


def test_clean_keep_zero_json(cache: FileCache, capsys: pytest.CaptureFixture[str]) -> None:
    result = run("cache", "clean", "--keep", "0", "--json")
    assert capsys.readouterr().out == ""
    assert result["entries"] == 0
    assert result["bytes"] == 0
    assert result["removed_entries"] == 3
    assert result["removed_bytes"] == 3000
    assert cache.info().entries == 0


def test_clean_keep_and_text_output(cache: FileCache, capsys: pytest.CaptureFixture[str]) -> None:
    result = run("cache", "clean", "--keep", "2K")
    assert result["bytes"] <= 2048
    assert result["removed_entries"] == 1
    out = capsys.readouterr().out
    assert "removed 1 files" in out
    assert "2 files" in out
    run("cache", "info")
    assert capsys.readouterr().out.splitlines()[0] == f"{cache.root}: 2 files, 2.0 KiB of 1.0 MiB"
    run("cache", "clean", "--quiet")
    assert capsys.readouterr().out == ""
    assert cache.info().entries == 0


def test_handlers_accept_a_namespace(cache: FileCache) -> None:
    args = argparse.Namespace(json=True, quiet=False, keep=None)
    assert cache_cli.cache_info(args)["entries"] == 3
    assert cache_cli.cache_clean(args)["removed_entries"] == 3


def test_bad_keep_is_a_usage_error(cache: FileCache) -> None:
    with pytest.raises(SystemExit) as exc:
        run("cache", "clean", "--keep", "lots")
    assert exc.value.code == 2
