"""The command line: output for people and scripts, errors as one line and an exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from artifactstore.core import encoding

from artifactstore.backends import open_backend
from artifactstore.cli import main
from artifactstore.objects.config import StoreConfig
from artifactstore.objects.envelope import Kind, seal
from artifactstore.objects.layout import CONFIG_KEY, pack_prefix


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ARTIFACTSTORE_URL", raising=False)


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_init_info_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    code, created = _json(capsys, "init", url)
    assert code == 0
    assert created["format"] == 1
    code, info = _json(capsys, "info", "--store", url)
    assert code == 0
    assert info["store_id"] == created["store_id"]
    assert info["chunker"] == {"algorithm": "fastcdc2020", "min_size": 16384,
                               "avg_size": 65536, "max_size": 262144, "normalization": 1,
                               "seed": 0}
    code, verified = _json(capsys, "verify", "--store", url)
    assert code == 0
    assert verified["ok"] is True


def test_default_store_comes_from_the_environment(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ARTIFACTSTORE_URL", str(tmp_path / "env-store"))
    code, created = _json(capsys, "init")
    assert code == 0
    assert created["url"] == str(tmp_path / "env-store")
    assert (tmp_path / "env-store" / "config").exists()


def test_missing_store_is_a_one_line_error(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["info", "--store", str(tmp_path / "nothing-here")])
    err = capsys.readouterr().err
    assert code == 13  # StoreNotFoundError: distinct from a missing artifact (3)
    assert err.count("\n") == 1
    assert "artifactstore init" in err
    assert not (tmp_path / "nothing-here").exists()


def test_unknown_scheme_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["info", "--store", "ftp://example/x"])
    assert code == 9
    assert "ftp" in capsys.readouterr().err


def test_unknown_format_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "future")
    backend = open_backend(url)
    body = encoding.unpack(StoreConfig.new().to_bytes()[8:])
    body["format"] = 99
    backend.put(CONFIG_KEY, seal(Kind.CONFIG, encoding.pack(body)))
    code = main(["info", "--store", url])
    assert code == 6
    assert "upgrade artifactstore" in capsys.readouterr().err


def test_verify_reports_a_damaged_pack(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "s")
    assert main(["demo", "--store", url, "--dataset-mib", "1", "--model-mib", "1",
                 "--quiet"]) == 0
    backend = open_backend(url)
    key = next(iter(backend.list(pack_prefix("plain"))))
    raw = bytearray(backend.get(key))
    raw[100] ^= 0xFF
    backend.put(key, bytes(raw))
    capsys.readouterr()
    code, report = _json(capsys, "verify", "--store", url, "--read-data")
    assert code == 5
    assert report["error"] == "IntegrityError"
    assert key in str(report["message"])


def test_demo_runs_as_a_console_script(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "d"),
           "XDG_CACHE_HOME": str(tmp_path / "c")}
    script = Path(sys.executable).parent / "artifactstore"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "artifactstore"]
    done = subprocess.run(
        [*command, "demo", "--dataset-mib", "2", "--model-mib", "4"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "log model v1, fine-tuned" in done.stdout
    assert "verified" in done.stdout
    assert done.stderr == ""  # not a TTY: no progress bars


def test_the_cli_starts_without_importing_networkx() -> None:
    # networkx takes ~0.2 s to import; only lineage commands need it.
    import subprocess
    import sys

    code = "import sys, artifactstore.cli.main; sys.exit('networkx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
