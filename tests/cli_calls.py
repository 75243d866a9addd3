"""Call the CLI in-process and capture what it printed (shared by the CLI tests)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from artifactstore.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``artifactstore *argv``."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """``(exit code, parsed stdout)`` of ``artifactstore *argv --json``."""
    code, out, _ = cli(capsys, *argv, "--json")
    return code, json.loads(out)
