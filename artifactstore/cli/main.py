"""Argument parsing, output and the one error handler of the CLI."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, Final, NoReturn

from artifactstore.core.about import __version__
from artifactstore.core.errors import ArtifactStoreError
from artifactstore.model.names import validate_project_name

__all__ = ["main", "run"]

Handler = Callable[[argparse.Namespace], Any]

#: the modules of artifactstore.cli that add commands, in the order --help lists them
_MODULES: Final = ("maintenance", "artifacts", "cache", "runs", "lineage", "identity",
                   "project", "lifecycle", "sync", "transfer", "importfrom", "ui", "login",
                   "serveraudit", "server")
#: which module adds each command ("main": this one). A command line names one, and
#: only that module is imported: each imports what its commands need, so ``ls`` does
#: not pay for the server, the web UI or the collector (tests/test_cli_startup.py
#: checks this table against the modules).
COMMANDS: Final = {
    "init": "main", "info": "main", "demo": "main",
    "verify": "maintenance", "repair": "maintenance",
    **dict.fromkeys(("log", "get", "ls", "show", "diff", "alias"), "artifacts"),
    "cache": "cache", "runs": "runs",
    **dict.fromkeys(("lineage", "impact", "where-used", "audit"), "lineage"),
    "identity": "identity", "project": "project",
    **dict.fromkeys(("delete", "restore", "gc", "purge", "retention"), "lifecycle"),
    "sync": "sync", **dict.fromkeys(("export", "import", "publish"), "transfer"),
    "import-from": "importfrom", "ui": "ui",
    **dict.fromkeys(("login", "logout", "whoami", "token"), "login"),
    "server-audit": "serveraudit", "serve": "server",
}


def _init(args: argparse.Namespace) -> Any:
    from artifactstore.cli import commands

    return commands.init(args)


def _info(args: argparse.Namespace) -> Any:
    from artifactstore.cli import commands

    return commands.info(args)


def _demo(args: argparse.Namespace) -> Any:
    from artifactstore.cli import commands

    return commands.demo(args)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of the module that adds ``command``."""
    wanted = COMMANDS.get(command) if command is not None else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="URL", default=argparse.SUPPRESS,
                        help="store URL (default: $ARTIFACTSTORE_URL, else the per-user store)")
    common.add_argument("--project", metavar="P", default=argparse.SUPPRESS,
                        help="project inside the store (default: 'default')")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one JSON document for scripts")
    common.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars or chatter")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks")
    parser = argparse.ArgumentParser(
        prog="artifactstore", parents=[common],
        description="Content-addressed versioning of ML datasets and models.")
    parser.add_argument("--version", action="version", version=f"artifactstore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler | None, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        if handler is not None:
            p.set_defaults(handler=handler)
        return p

    if wanted in (None, "main"):
        p = add("init", _init, "create a store (or show the existing one)")
        p.add_argument("url", nargs="?",
                       help="where to create it (default: --store or the default)")
        p.add_argument("--public", action="store_true",
                       help="new projects are public (readable by anyone with the bucket) "
                            "instead of private and encrypted")
        add("info", _info, "show a store's format, chunking and size")
    for module in _MODULES:
        if wanted in (None, module):
            import_module(f"artifactstore.cli.{module}").register(add, common)
    if wanted in (None, "main"):
        p = add("demo", _demo, "store a dataset and a model, edit and re-store, verify")
        p.add_argument("--dataset-mib", type=_mib, default=32, metavar="N",
                       help="size of the synthetic part of the dataset in MiB (default 32)")
        p.add_argument("--model-mib", type=_mib, default=64, metavar="N",
                       help="size of the model's embeddings in MiB (default 64)")
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, or None when help is asked before it or none is found
    (then the whole parser answers, with its usage or its error)."""
    tokens = iter(argv)
    for token in tokens:
        if token in ("-h", "--help") or token == "--":
            return None
        if token.startswith("--") and "=" not in token and len(token) > 2 and (
                "--store".startswith(token) or "--project".startswith(token)):
            next(tokens, None)  # the option's value (argparse takes a prefix: --sto URL)
        elif not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def _mib(text: str) -> int:
    """A whole number of MiB >= 1 (else argparse's usage error)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"use a whole number of MiB >= 1, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_command(argv)).parse_args(argv)
    for flag in ("store", "project", "json", "quiet", "debug"):
        if not hasattr(args, flag):
            setattr(args, flag, None if flag in ("store", "project") else False)
    try:
        if args.project is not None:
            # "" would silently mean the default project (the API's None) and write there
            validate_project_name(args.project)
        result = args.handler(args)
    except ArtifactStoreError as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        return _fail(args, type(exc).__name__, f"error: {message}", exc.exit_code)
    except BrokenPipeError:
        # The reader went away (`artifactstore ls | head`): stop quietly, like Unix tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("artifactstore: interrupted; nothing partial was committed", file=sys.stderr)
        return 130
    except Exception as exc:
        # A bug: the library maps every failure it knows (OSError included) to an
        # ArtifactStoreError at its source. Still one line, never a traceback.
        if args.debug:
            raise
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        return _fail(args, "InternalError", f"internal error: {detail[:300]} (run with "
                     "--debug for the traceback; please report it)",
                     ArtifactStoreError.exit_code)
    if isinstance(result, int):  # the command printed its own output; this is its exit code
        return result
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


def run() -> NoReturn:
    """The ``artifactstore`` program (``python -m artifactstore``): :func:`main` on the
    process's arguments, then the process exits with its code.

    Before exiting, every object left is moved out of the cyclic collector's reach
    (``gc.freeze``): the interpreter's final collections would otherwise walk every
    object of the ~300 modules a command imports, ~10 ms of a ``get``'s serial time
    (a whole table restore is ~0.4 s). Nothing depends on them: every store, file and
    database a command opens is closed by its ``with`` before :func:`main` returns,
    standard output and error are flushed at exit as always, and reference counting
    still frees what it frees. Only the program does this; :func:`main` called in a
    longer-lived process (tests, scripts) leaves the collector as it is.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def _fail(args: argparse.Namespace, name: str, line: str, code: int) -> int:
    """Say ``line`` on stderr (and as JSON on stdout with --json); return ``code``."""
    if args.json:
        message = line.partition(": ")[2]
        print(json.dumps({"error": name, "message": message, "exit_code": code}))
    print(f"artifactstore: {line}", file=sys.stderr)
    return code


if __name__ == "__main__":
    run()
