"""Every CLI command fed the bad inputs a careless user gives it (issue 14, point 5).

The commands are enumerated from the argparse parser, so a new command fails
:func:`test_every_command_has_cases` until it is given a valid call here, and then
gets the store cases (missing store, a store that is a file, an empty store, a
project that does not exist) automatically. Each call must end with an exit code
of the documented set (``artifactstore.core.errors``), one line on stderr (the argparse
usage for parse errors), no traceback and no "internal error" (the CLI's last
resort for an exception the library failed to map), and the store unchanged.
Most calls run in-process for speed; :func:`test_bad_inputs_in_real_processes`
replays a few as real processes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cli_calls import cli

from artifactstore.cli import main
from artifactstore.cli.main import _parser
from artifactstore.repository.download import TEMP_MARK

#: documented exit codes of failures (errors.py; 13: a missing store, StoreNotFoundError;
#: 14/15: a team server's NotSignedInError/NotAuthorizedError)
FAILURE_CODES = frozenset(range(1, 16))
ARGPARSE_CODE = 2
Command = tuple[str, ...]

#: a valid call of every command, on the template store: ``{store}`` is its URL,
#: ``{data}`` a folder of files, ``{out}`` a path that does not exist yet
VALID: dict[Command, tuple[str, ...]] = {
    ("init",): ("{out}",),
    ("info",): (),
    ("verify",): (),
    ("repair", "index"): (),
    ("log",): ("ds", "{data}"),
    ("get",): ("ds:v0", "--dir", "{out}"),
    ("ls",): ("ds",),
    ("show",): ("ds:v1",),
    ("diff",): ("ds:v0", "ds:v1"),
    ("alias", "set"): ("ds:v0", "best"),
    ("alias", "rm"): ("ds", "raw"),
    ("alias", "history"): ("ds", "raw"),
    ("alias", "protect"): ("ds:raw",),
    ("alias", "unprotect"): ("ds:raw",),
    ("cache", "info"): (),
    ("cache", "clean"): (),
    ("runs", "ls"): (),
    ("runs", "show"): ("0123abcd",),
    ("runs", "export"): ("--output", "{out}"),
    ("runs", "media"): ("0123abcd", "--out", "{out}"),
    ("runs", "purge"): ("0123abcd", "--reason", "test", "--no-wait"),
    ("runs", "plot"): ("0123abcd", "--metric", "loss", "--out", "{out}.png"),
    ("runs", "diff-code"): ("0123abcd", "4567cdef"),
    ("lineage",): ("ds:v1",),
    ("impact",): ("ds:v0",),
    ("where-used",): ("0" * 64,),
    ("audit",): ("ds:v1",),
    ("identity", "create"): ("--no-passphrase",),
    ("identity", "show"): (),
    ("identity", "check"): (),
    ("identity", "declare"): ("--name", "Ada Lovelace", "--email", "ada@example.org"),
    ("project", "ls"): (),
    ("project", "create"): ("p2", "--visibility", "public"),
    ("project", "show"): (),
    ("project", "trust"): (),
    ("project", "members", "add"): ("asid1garbage",),
    ("project", "members", "rm"): ("0" * 32,),
    ("project", "rekey"): (),
    ("delete",): ("ds:v0",),
    ("restore",): ("ds:v0",),
    ("gc",): ("--dry-run",),
    ("purge",): ("ds:v0", "--reason", "test", "--no-wait"),
    ("retention",): ("30d",),
    ("sync",): ("{store}", "{out}"),
    ("export",): ("ds:v1", "{out}"),
    ("import",): ("{data}",),
    # {mlruns}: an MLflow file store with one experiment and no run (the importers'
    # own tests use the real tools)
    ("import-from",): ("mlflow", "{mlruns}"),
    ("publish",): ("ds:v1", "--to", "{store}", "--to-project", "pub", "--with-lineage"),
    ("demo",): ("--dataset-mib", "1", "--model-mib", "1", "--store", "{out}"),
    # --check: open the store and bind the address, then exit instead of serving
    ("ui",): ("--check", "--port", "0"),
    # the team server's commands (tests/test_server_signin.py runs them for real)
    ("login",): ("http://127.0.0.1:9", "--no-browser"),
    ("logout",): ("http://127.0.0.1:9",),
    ("whoami",): ("http://127.0.0.1:9",),
    ("token", "create"): ("http://127.0.0.1:9", "--name", "ci"),
    ("token", "list"): ("http://127.0.0.1:9",),
    ("token", "revoke"): ("http://127.0.0.1:9", "0123456789abcdef"),
    # a team server's audit log (tests/test_server_audit.py runs it against a server)
    ("server-audit",): ("http://127.0.0.1:1", "--since", "2h"),
    # an open server ({serverconf}: everyone is a reader), checked, not served
    ("serve",): ("--check", "--port", "0", "--config", "{serverconf}"),
}

#: commands that do not open the store named by --store (their own cases cover them)
NO_STORE = frozenset({("init",), ("cache", "info"), ("cache", "clean"), ("identity", "create"),
                      ("identity", "show"), ("identity", "check"), ("identity", "declare"),
                      ("sync",), ("demo",),
                      ("login",), ("logout",), ("whoami",), ("token", "create"),
                      ("token", "list"), ("token", "revoke"),
                      ("server-audit",)})
#: commands that only read the store: nothing they do may change it
READS = frozenset({("info",), ("verify",), ("get",), ("ls",), ("show",), ("diff",),
                   ("alias", "history"), ("runs", "ls"), ("runs", "show"), ("runs", "export"),
                   ("runs", "media"),
                   ("runs", "plot"), ("runs", "diff-code"),
                   ("lineage",), ("impact",), ("where-used",), ("audit",), ("project", "show"),
                   ("project", "ls"),
                   ("export",), ("ui",), ("serve",)})

BAD_REFS = ("nope", "ds:v99", "ds:", ":v1", "ds:nosuchalias", "ds:v-1", "../x", "", "ds:v0:x",
            "a" * 300, "ds:v99999999999999999999")
#: NAME:ALIAS arguments that name no alias that is set
BAD_ALIASES = [("ds",), ("ds:nosuch",), ("nope:raw",), ("ds:",), (":raw",), ("",),
               ("ds:latest",), ("ds:v3",), ("ds:raw:x",), ("bad/name:raw",)]

#: the bad inputs of each command (a pytest.param where a marker is needed)
BAD: dict[Command, list[Any]] = {
    ("init",): [("{file}",), ("{file}/sub",), ("{dangling}",), ("{fifo}",), ("nosuch://x",)],
    ("info",): [],
    ("verify",): [("nope",), ("ds:v0", "--dir", "{missing}"), ("ds:v0", "--dir", "{file}"),
                  ("ds:v0", "--read-data"), ("--read-data-subset", "abc"),
                  ("--read-data-subset", "200%"), ("--read-data-subset", "0"),
                  ("--read-data-subset", "-1/2"), ("--seed", "x")],
    ("repair", "index"): [],
    ("log",): [("ds", "{missing}"), ("ds", "{dangling}"), ("ds", "{fifo}"), ("", "{data}"),
               ("bad/name", "{data}"),
               ("..", "{data}"), ("ds:v3", "{data}"), ("ds", "{data}", "--metadata", "novalue"),
               ("ds", "{data}", "--alias", "v7"), ("ds", "{data}", "--alias", ""),
               ("ds", "{data}", "--alias", "bad alias"), ("ds", "{data}", "--type", "")],
    ("get",): [*[(r,) for r in BAD_REFS], ("ds:v0", "--dir", "{file}"),
               ("ds:v0", "--dir", "{file}/sub"), ("ds:v0", "--dir", "{dangling}"),
               ("ds:v0", "--dir", "{fifo}"),
               ("ds:v0", "--dir", "{store}"), ("ds:v0", "--dir", "{store}/sub")],
    ("ls",): [("nope",), ("",), ("bad/name",), ("a" * 300,)],
    ("show",): [(r,) for r in BAD_REFS],
    ("diff",): [("ds:v0", "nope"), ("nope", "ds:v0"), ("ds:v0", "ds:v99")],
    ("alias", "set"): [("ds:v99", "best"), ("nope", "best"), ("ds:v0", ""), ("ds:v0", "v3"),
                       ("ds:v0", "bad alias"), ("ds:v0", "a/b"), ("ds:v0", "latest")],
    ("alias", "rm"): [("ds", "nosuch"), ("nope", "raw"), ("ds", ""), ("ds", "latest")],
    ("alias", "history"): [("ds", "nosuch"), ("nope", "raw"), ("", "")],
    ("alias", "protect"): [*BAD_ALIASES],
    ("alias", "unprotect"): [*BAD_ALIASES],
    ("cache", "info"): [],
    ("cache", "clean"): [("--keep", "abc"), ("--keep", "-1"), ("--keep", ""),
                         ("--unused-for", "30d"), ("--metadata", "--unused-for", "soon")],
    ("runs", "ls"): [("--since", "yesterday"), ("--until", "2020-13-45"), ("--status", "bogus")],
    ("runs", "show"): [("nope",), ("",)],
    ("runs", "export"): [("--output", "{data}"), ("--output", "{missing}/x.jsonl"),
                         ("--output", "{file}/x.jsonl"), ("--since", "nope"),
                         ("--format", "xml")],
    ("runs", "media"): [("nope",), ("",), ("0123abcd", "--step", "x"),
                        ("0123abcd", "--step", "-1"), ("0123abcd", "--out", "{file}")],
    ("runs", "purge"): [("nope", "--reason", "x"), ("", "--reason", "x"), ("0123abcd",),
                        ("0123abcd", "--reason", "")],
    ("runs", "plot"): [("nope", "--metric", "loss", "--out", "{out}.png"),
                       ("0123abcd", "--metric", "loss", "--out", "{out}.jpg"),
                       ("0123abcd", "--out", "{out}.png"), ("--metric", "loss", "--out", "x.png"),
                       ("0123abcd", "--metric", "loss", "--out", "{missing}/x.png"),
                       ("0123abcd", "--metric", "loss", "--x", "epoch", "--out", "{out}.png")],
    ("runs", "diff-code"): [("nope", "0123abcd"), ("", ""), ("0123abcd",),
                            ("0123abcd", "4567cdef", "--repo", "{missing}")],
    ("lineage",): [("nope",), ("run:nope",), ("ds:v0", "--depth", "x"),
                   ("ds:v0", "--depth", "-1"), ("ds:v0", "--output", "{data}"),
                   ("ds:v0", "--output", "{file}/x"), ("ds:v0", "--format", "png"),
                   (), ("--depth", "1", "--format", "json"), ("ds:v0", "--html", "{data}"),
                   ("ds:v0", "--html", "{missing}/x.html"),
                   ("ds:v0", "--html", "{out}", "--format", "dot"),
                   ("--html", "{out}", "--downstream")],
    ("impact",): [("nope",), ("run:",), ("ds:v99",)],
    ("where-used",): [("zz",), ("",), ("0" * 63,), ("g" * 64,)],
    ("audit",): [("nope",), ("ds:v0", "--sample", "2"), ("ds:v0", "--sample", "abc"),
                 ("ds:v0", "--sample", "0%"), ("ds:v0", "--sample", "nan"),
                 ("ds:v0", "--output", "{data}"), ("ds:v0", "--output", "{missing}/r.txt"),
                 ("ds:v0", "--html", "{missing}/r.html"), ("nope", "--html", "{out}"),
                 ("ds:v0", "--html", "{out}", "--output", "{out}.txt")],
    ("identity", "create"): [("--passphrase-stdin",)],
    ("identity", "show"): [],
    ("identity", "check"): [],
    ("identity", "declare"): [("--email", "no at sign"), ("--email", "a@b@c"),
                              ("--name", ""), ("--name", " padded"), ("--forget", "--name", "x")],
    ("project", "create"): [("",), ("a/b",), ("p3", "--member", "garbage"),
                            ("p3", "--member", "asid1zzzz"), ("p3", "--visibility", "secret"),
                            ("p3", "--passphrase-stdin")],
    ("project", "ls"): [("extra",), ("--store", "{file}")],
    ("project", "show"): [("a/b",), ("",)],
    ("project", "trust"): [("a/b",), ("",), ("nope",)],
    ("project", "members", "add"): [("garbage",), ("",), ("asid1",)],
    ("project", "members", "rm"): [("garbage",), ("",), ("0" * 31,)],
    ("project", "rekey"): [("nope",), ("a/b",)],
    ("delete",): [("ds:v99",), ("nope:v0",), ("",), (), ("ds", "--artifact", "--run"),
                  ("nope", "--run"), ("ds:v0", "--whole-project")],
    ("restore",): [("ds:v1",), ("nope:v0",), (), ("nope", "--run"), ("nope", "--artifact")],
    ("gc",): [("--grace", "abc"), ("--grace", "-1h"), ("--grace", "1x"), ("--grace", ""),
              ("--repack-threshold", "abc"), ("--repack-threshold", "nan"),
              ("--repack-threshold", "-1"), ("--repack-threshold", "2")],
    ("purge",): [("ds:v99", "--reason", "x", "--no-wait"), ("nope", "--reason", "x"),
                 ("ds:v0", "--reason", "x", "--path", "nosuch", "--no-wait"),
                 ("ds:v0", "--reason", "x", "--path", "../x", "--no-wait"), ("ds:v0",)],
    ("retention",): [("abc",), ("-5d",), ("",), ("1x",), ("30d", "--artifact", "bad/name")],
    ("sync",): [("{missing}", "{out}"), ("{file}", "{out}"), ("{store}", "{file}"),
                ("{store}", "{store}"), ("{store}", "{out}", "--to-project", "q"),
                ("{store}", "{out}", "--concurrency", "0"),
                ("{store}", "{out}", "--concurrency", "-3"),
                ("{store}", "{out}", "--concurrency", "x"), ("nosuch://x", "{out}")],
    ("export",): [("nope", "{out}"), ("ds:v0", "{file}"), ("ds:v0", "{data}"),
                  ("ds:v0", "{file}/sub"), ("ds:v0", "{missing}/sub/x.tar"),
                  ("ds:v0", "{data}/a.txt/x.tar"), ("ds:v0", "{store}/inside"),
                  ("ds:v0", "{fifo}")],
    ("ui",): [("--check", "--port", "x"), ("--check", "--port", "-1"),
              ("--check", "--port", "65536"), ("--check", "--host", "nosuch.invalid"),
              ("--check", "--host", ""), ("--check", "--host", "999.1.1.1"),
              ("--check", "--host", "192.0.2.1")],  # TEST-NET-1: not this machine's
    ("serve",): [("--check", "--port", "x"), ("--check", "--port", "70000"),
                 ("--check", "--workers", "0"), ("--check", "--workers", "many"),
                 ("--check", "--store", "{store}", "--config", "{serverconf}", "--tls-cert",
                  "{file}"),
                 ("--check", "--store", "{store}", "--config", "{serverconf}", "--tls-cert",
                  "{file}", "--tls-key", "{missing}"),
                 ("--check", "--store", "{store}", "--config", "{missing}"),
                 ("--check", "--store", "{store}", "--config", "{file}"),
                 ("--check", "--store", "{store}", "--config", "{data}"),
                 ("--check", "--store", "{store}"),  # no roles and no sign-in
                 ("--check", "--store", "{empty}", "--config", "{serverconf}"),
                 ("--check", "--store", "{store}", "--config", "{serverconf}", "--host",
                  "nosuch.invalid")],
    ("import",): [("{missing}",), ("{file}",), ("{dangling}",), ("{empty}",),
                  ("{data}", "--name", "bad/name"), ("{missing}.tar",)],
    ("import-from",): [("dvc", "{missing}"), ("dvc", "{file}"), ("dvc", "{empty}"),
                       ("dvc", "{dangling}"), ("dvc", "{fifo}"), ("mlflow", "{data}"),
                       ("mlflow", "{missing}"), ("hf", "{empty}"), ("svn", "{data}"), (),
                       ("dvc",), ("dvc", "{mlruns}", "--name", "novalue"),
                       ("mlflow", "{mlruns}", "--name", "a=b"),
                       ("mlflow", "{mlruns}", "--experiment", "nope"),
                       ("mlflow", "{mlruns}", "--artifact", "bad/name"),
                       ("wandb", "{empty}"), ("wandb", "{file}"), ("wandb", "{data}"),
                       ("wandb", "{mlruns}", "--artifact", "x"),
                       ("dvc", "{mlruns}", "--experiment", "x"),
                       ("hf", "{mlruns}", "--git-history")],
    ("publish",): [("nope", "--to", "{store}", "--to-project", "pub"),
                   ("ds:v99", "--to", "{store}", "--to-project", "pub"), ("ds:v0",),
                   ("ds:v0", "--to", "{missing}"), ("ds:v0", "--to", "{file}"),
                   ("ds:v0", "--to", "{store}"), ("ds:v0", "--to", "nosuch://x"),
                   ("ds:v0", "--to", "{store}", "--to-project", "a/b"),
                   ("nope", "--to", "{store}", "--to-project", "pub", "--with-ancestors"),
                   ("ds:v0", "--to", "{store}", "--to-project", "")],
    ("login",): [(), ("http://example.com",), ("ftp://example.com",), ("not a url",),
                 ("https://example.com", "--timeout", "0"),
                 ("https://example.com", "--timeout", "x")],
    ("logout",): [(), ("nosuch://x",), ("http://example.com",)],
    ("whoami",): [(), ("http://127.0.0.1:9",), ("http://example.com",)],  # 9: nobody there
    ("token", "create"): [("http://127.0.0.1:9", "--name", "ci"),  # not signed in: 14
                          ("http://127.0.0.1:9",), ("http://127.0.0.1:9", "--name", "x",
                                                    "--role", "owner"),
                          ("http://127.0.0.1:9", "--name", "x", "--days", "0"),
                          ("http://127.0.0.1:9", "--name", "x", "--days", "x")],
    ("token", "list"): [("http://127.0.0.1:9",), ("http://example.com",), ()],
    ("token", "revoke"): [("http://127.0.0.1:9", "0123456789abcdef"),
                          ("http://127.0.0.1:9",)],
    ("server-audit",): [("nosuch://x",), ("",), ("https://",), ("http://example.com",),
                         ("{store}",), ("http://127.0.0.1:1",),
                         ("http://127.0.0.1:1", "--since", "yesterday"),
                         ("http://127.0.0.1:1", "--until", ""),
                         ("http://127.0.0.1:1", "--limit", "0")],
    ("demo",): [("--store", "{file}"), ("--dataset-mib", "-1", "--store", "{out}"),
                ("--model-mib", "0", "--store", "{out}"), ("--dataset-mib", "x")],
}


def _parsers(parser: argparse.ArgumentParser, path: Command = ()
             ) -> Iterator[tuple[Command, argparse.ArgumentParser]]:
    """Every (sub)parser: the command's words and the parser."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _leaves(parser: argparse.ArgumentParser) -> Iterator[Command]:
    for path, sub in _parsers(parser):
        if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
            yield path


COMMANDS = sorted(_leaves(_parser()))
STORE_COMMANDS = [c for c in COMMANDS if c not in NO_STORE]


def test_every_command_has_cases() -> None:
    """A new command must be given a valid call (and its bad inputs) here."""
    assert set(COMMANDS) == set(VALID)
    assert set(COMMANDS) == set(BAD)
    assert set(COMMANDS) >= NO_STORE
    assert set(COMMANDS) >= READS


def test_every_argument_has_help_and_every_command_json() -> None:
    """House rule: help text on every argument, --json on every command."""
    missing = []
    for path, parser in _parsers(_parser()):
        for action in parser._actions:
            if not action.help and not isinstance(action, argparse._SubParsersAction):
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
        if path in COMMANDS:
            assert "--json" in parser._option_string_actions, path
    assert missing == []


def test_every_default_is_named_in_its_help() -> None:
    """An argument with a default (not off, not empty, not 'absent') says it in --help."""
    silent = []
    skipped = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    for path, parser in _parsers(_parser()):
        for action in parser._actions:
            if isinstance(action, skipped) or action.default in (None, False, [],
                                                                 argparse.SUPPRESS):
                continue
            if "default" not in (action.help or "").lower():
                silent.append(f"{' '.join(path)} {'/'.join(action.option_strings)}")
    assert silent == []


# -- the world each call runs in ---------------------------------------------------


@dataclass
class World:
    tmp: Path
    store: Path
    values: dict[str, str]

    def argv(self, command: Command, args: tuple[str, ...]) -> list[str]:
        return [*command, *(a.format(**self.values) for a in args)]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A public store with ds:v0 (alias raw) and ds:v1, and the identity that logged
    them (if logging makes one), built once and copied for each call."""
    root = tmp_path_factory.mktemp("bad-inputs")
    data = root / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTIFACTSTORE_CONFIG_DIR", str(root / "config"))
        mp.setenv("ARTIFACTSTORE_CACHE_DIR", str(root / "cache"))
        store = str(root / "store")
        calls = [["init", store, "--public"], ["log", "ds", str(data), "--alias", "raw"],
                 ["log", "ds", str(data / "a.txt")], ["init", str(root / "empty-store"),
                                                      "--public"]]
        for argv in calls:
            code = main([*argv, "-q", *(["--store", store] if argv[0] == "log" else [])])
            assert code == 0, argv
        # a private store, and the identity (passphrase "secret") of its only member
        mp.setenv("ARTIFACTSTORE_CONFIG_DIR", str(root / "config-private"))
        mp.setenv("ARTIFACTSTORE_PASSPHRASE", "secret")
        mp.setattr(sys, "stdin", io.StringIO("secret\n"))
        private = str(root / "private-store")
        for argv in (["identity", "create", "--passphrase-stdin"], ["init", private],
                     ["log", "ds", str(data), "--store", private]):
            assert main([*argv, "-q"]) == 0, argv
    return root


@pytest.fixture
def world(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for name in ("store", "empty-store", "data", "config", "private-store", "config-private"):
        if (template / name).exists():
            shutil.copytree(template / name, tmp_path / name, symlinks=True)
    (tmp_path / "config").mkdir(exist_ok=True)
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "cache"))
    # The per-user default store of this test only: a bad input must not create it
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("ARTIFACTSTORE_URL", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # --passphrase-stdin reads nothing
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    os.mkfifo(tmp_path / "fifo")  # a reader would block on it: only where none reads
    (tmp_path / "mlruns" / "0").mkdir(parents=True)
    (tmp_path / "mlruns" / "0" / "meta.yaml").write_text("experiment_id: '0'\nname: Default\n")
    (tmp_path / "server.toml").write_text('[roles]\neveryone = "reader"\n')  # serve
    monkeypatch.setenv("ARTIFACTSTORE_SERVER_SECRET", "s" * 32)
    values = {"store": str(tmp_path / "store"), "data": str(tmp_path / "data"),
              "out": str(tmp_path / "out"), "file": str(tmp_path / "file"),
              "missing": str(tmp_path / "missing"), "dangling": str(tmp_path / "dangling"),
              "empty": str(tmp_path / "empty"), "fifo": str(tmp_path / "fifo"),
              "serverconf": str(tmp_path / "server.toml"),
              "mlruns": str(tmp_path / "mlruns")}
    return World(tmp_path, tmp_path / "store", values)


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``, with a hash of each file's bytes."""
    if not root.exists():
        return {}
    result = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        result[rel] = (hashlib.sha256(path.read_bytes()).hexdigest()
                       if path.is_file() and not path.is_symlink() else "dir")
    return result


def _check_failure(code: int, out: str, err: str) -> None:
    """One documented failure: an exit code of the set, one line, no traceback."""
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    assert code in FAILURE_CODES, (code, err)
    lines = err.strip().splitlines()
    if lines and lines[0].startswith("usage:"):  # argparse: usage, then one error line
        assert code == ARGPARSE_CODE
        assert lines[-1].startswith("artifactstore")
        assert ": error: " in lines[-1]
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith("artifactstore: error: "), err


def _check_outcome(code: int, out: str, err: str) -> None:
    """A call that may succeed (exit 0) or fail as documented, never with a traceback."""
    if code == 0:
        assert "Traceback" not in out + err
    else:
        _check_failure(code, out, err)


def _temp_files(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.startswith(TEMP_MARK)
            or p.name.endswith(".tmp")]


def _call(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        return cli(capsys, *argv)
    except SystemExit as exc:  # argparse refused the arguments
        captured = capsys.readouterr()
        return int(exc.code or 0), captured.out, captured.err


# -- the bad inputs of each command -------------------------------------------------------


def _bad_params() -> Iterator[Any]:
    for command in COMMANDS:
        for case in BAD[command]:
            args, marks = (case.values[0], case.marks) if hasattr(case, "marks") else (case, ())
            yield pytest.param(command, args, marks=marks,
                               id=" ".join(command) + " " + " ".join(args))


@pytest.mark.parametrize(("command", "args"), list(_bad_params()))
def test_bad_input(command: Command, args: tuple[str, ...], world: World,
                   capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(world.store)
    code, out, err = _call(capsys, world.argv(command, args))
    _check_failure(code, out, err)
    assert _snapshot(world.store) == before
    assert _temp_files(world.tmp) == []
    assert not (world.tmp / "out").exists()
    assert not (world.tmp / "xdg-data").exists()  # a failed command created no default store


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_store_is_a_file(command: Command, world: World,
                         capsys: pytest.CaptureFixture[str]) -> None:
    world.values["store"] = world.values["file"]
    code, out, err = _call(capsys, [*world.argv(command, VALID[command]),
                                    "--store", world.values["file"]])
    _check_failure(code, out, err)
    assert (world.tmp / "file").read_text() == "not a folder\n"


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("option", [("--store", "nosuch://x"), ("--store", "file://host/x"),
                                    ("--project", "bad/name"), ("--project", "")],
                         ids=" ".join)
def test_bad_store_url_or_project_name(command: Command, option: tuple[str, str], world: World,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(world.store)
    code, out, err = _call(capsys, [*world.argv(command, VALID[command]),
                                    "--store", str(world.store), *option])
    _check_failure(code, out, err)
    assert _snapshot(world.store) == before


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("who", ["no identity", "wrong passphrase"])
def test_private_store_without_the_key(command: Command, who: str, world: World,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    private = world.tmp / "private-store"
    if who == "wrong passphrase":
        monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(world.tmp / "config-private"))
        monkeypatch.setenv("ARTIFACTSTORE_PASSPHRASE", "wrong")
    before = _snapshot(private)
    code, out, err = _call(capsys, [*world.argv(command, VALID[command]),
                                    "--store", str(private)])
    _check_outcome(code, out, err)
    if command in READS or code != 0:
        assert _snapshot(private) == before


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_empty_store(command: Command, world: World,
                     capsys: pytest.CaptureFixture[str]) -> None:
    empty = world.tmp / "empty-store"
    before = _snapshot(empty)
    code, out, err = _call(capsys, [*world.argv(command, VALID[command]),
                                    "--store", str(empty)])
    _check_outcome(code, out, err)
    if command in READS:
        assert _snapshot(empty) == before


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_project_that_does_not_exist(command: Command, world: World,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(world.store)
    code, out, err = _call(capsys, [*world.argv(command, VALID[command]),
                                    "--store", str(world.store), "--project", "nope"])
    _check_outcome(code, out, err)
    if command in READS:
        assert _snapshot(world.store) == before


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_missing_store_is_one_line(command: Command, world: World,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _call(capsys, [*world.argv(command, VALID[command]),
                                    "--store", world.values["missing"]])
    _check_outcome(code, out, err)


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_missing_store_creates_nothing(command: Command, world: World,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _call(capsys, [*world.argv(command, VALID[command]),
                                    "--store", world.values["missing"]])
    _check_failure(code, out, err)
    assert not Path(world.values["missing"]).exists()


# -- a few as real processes ----------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ("get", "ds:v0", "--dir", "{file}", "--store", "{store}"),
    ("ls", "--store", "{file}"),
    ("log", "ds", "{dangling}", "--store", "{store}"),
    ("get", "ds:v0", "--dir", "{fifo}", "--store", "{store}"),
    ("export", "ds:v0", "{file}/x.tar", "--store", "{store}"),
    ("gc", "--grace", "soon", "--store", "{store}"),
], ids=lambda a: " ".join(a[:2]))
def test_bad_inputs_in_real_processes(argv: tuple[str, ...], world: World) -> None:
    before = _snapshot(world.store)
    done = subprocess.run(
        [sys.executable, "-m", "artifactstore", *(a.format(**world.values) for a in argv)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        cwd=world.tmp, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    _check_failure(done.returncode, done.stdout, done.stderr)
    assert _snapshot(world.store) == before


def test_the_last_resort_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """What the tests above prove unreachable still prints one line, exit 1 (and the
    traceback with --debug). The fault is injected at the CLI boundary: no library
    error is left unmapped to trigger it with."""
    from artifactstore.cli import commands

    def broken(args: argparse.Namespace) -> None:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(commands, "info", broken)
    code, out, err = _call(capsys, ["info"])
    assert code == 1
    assert out == ""
    assert err == ("artifactstore: internal error: RuntimeError: a bug over two lines (run "
                   "with --debug for the traceback; please report it)\n")
    code, out, _ = _call(capsys, ["info", "--json"])
    assert (code, json.loads(out)["error"]) == (1, "InternalError")
    with pytest.raises(RuntimeError, match="a bug"):
        main(["info", "--debug"])
