"""Every command a message of the package suggests exists and parses (issue 15, point 4).

Messages tell the user what to do, often as a command in quotes
(``'artifactstore alias unprotect m:prod'``). The suggestions are collected from
the source with ``ast`` (implicitly joined string literals are one constant, an
f-string's fields become a placeholder word), and each is given to the real
argparse parser of the CLI: it must parse as a whole command line, or be the bare
name of a command (``'artifactstore verify'``), which names the command without
arguments.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from artifactstore.cli.main import _parser

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "artifactstore"
#: a command in single quotes or backquotes, as messages and help texts quote them
SUGGESTION = re.compile(r"['`](artifactstore [^'`]+)['`]")
#: what an f-string field becomes: a word every positional argument accepts
FIELD = "x"


def _texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(
                # an f-string's literal parts are str constants
                cast(str, v.value) if isinstance(v, ast.Constant) else FIELD
                for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def suggestions() -> list[tuple[str, str]]:
    """``(where, command)`` of every suggested command in the package's source."""
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, text in _texts(tree):
            where = f"{path.relative_to(PACKAGE_DIR.parent)}:{line}"
            found += [(where, m.group(1)) for m in SUGGESTION.finditer(text)]
    return sorted(set(found))


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
                   ) -> Iterator[tuple[str, ...]]:
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _command_paths(sub, (*path, name))


def problem(command: str) -> str | None:
    """Why ``command`` (``artifactstore ...``) would not run as written, or None."""
    words = shlex.split(command)[1:]
    parser = _parser()
    if words and tuple(words) in set(_command_paths(parser)):
        return None  # the bare name of a command
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            parser.parse_args(words)
    except SystemExit:
        return usage.getvalue().strip().splitlines()[-1]
    return None


SUGGESTED = suggestions()


def test_the_package_suggests_commands() -> None:
    """The collector finds the suggestions (an empty list would pass vacuously)."""
    commands = {c for _, c in SUGGESTED}
    assert len(commands) > 20
    assert "artifactstore alias unprotect x:x" in commands


@pytest.mark.parametrize(("where", "command"), SUGGESTED, ids=[w for w, _ in SUGGESTED])
def test_every_suggested_command_parses(where: str, command: str) -> None:
    assert problem(command) is None, f"{where} suggests {command!r}: {problem(command)}"


@pytest.mark.parametrize("command", [
    "artifactstore alias set m:v0 prod --unprotect --force",  # issue 15: no such option
    "artifactstore alias set m:v0",  # ALIAS is required
    "artifactstore project list",  # the command is "project ls" (issue 19)
    "artifactstore purge m:v0",  # --reason is required
    "artifactstore nosuch",
])
def test_a_command_that_would_not_run_is_caught(command: str) -> None:
    assert problem(command) is not None
