"""What every command module shares: how a command opens its store, speaks, shows
progress, writes ``--output`` files, reads a passphrase, and adds its actions.

Vocabulary: ``args`` is the parsed command line (``main`` sets ``store``,
``project``, ``json``, ``quiet``, ``debug`` on every one); a command is **chatty**
unless ``--json`` or ``--quiet`` is given, and only then does it :func:`say` text
for people or draw a :func:`progress_bar`.

How each command opens its store is decided here, and only here. Reading never
writes (docs/guide.md, "Which commands create a store"):

* commands that read (ls, show, get, diff, verify, lineage, audit, export, runs,
  alias history, project show, ...) open with ``create=False``: a missing store
  exits 13 and nothing is made, not even a folder;
* commands that add to a project (log, import) open lazily
  (``create=None``): a missing project is created by their first write, and so is
  the per-user default store (private) when no store is named; a store named by
  ``--store``, ``$ARTIFACTSTORE_URL`` or a config file must exist (exit 13 otherwise:
  a mistyped path must not start a new store; ``artifactstore init`` makes one);
* commands that change what exists (alias set/rm, delete, restore, gc, purge,
  retention) open with ``create=False``: there is nothing to change in a store that is not there.

``init`` creates explicitly; ``project create`` and ``sync`` (its destination) are
the other creators, through their own library calls.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import artifactstore
from artifactstore.backends import redact_url
from artifactstore.cli.progress import Progress
from artifactstore.core.errors import (
    ArtifactStoreError,
    InvalidInputError,
    NotFoundError,
    StoreNotFoundError,
)
from artifactstore.repository.discovery import DEFAULT_SOURCE, discover

__all__ = [
    "MiB",
    "add_action",
    "chatty",
    "open_existing",
    "open_output",
    "open_to_add",
    "passphrase_from_stdin",
    "progress_bar",
    "say",
]

MiB = 1 << 20


def chatty(args: argparse.Namespace) -> bool:
    """Whether the command speaks to people: neither ``--json`` nor ``--quiet``."""
    return not args.json and not args.quiet


def port_number(text: str) -> int:
    """``--port``'s type: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"use 0 (any free port) to 65535, not {text!r}")
    return value


def table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of text as aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def say(args: argparse.Namespace, text: str) -> None:
    """Print ``text`` on stdout for people (nothing with ``--json`` or ``--quiet``)."""
    if chatty(args):
        print(text)


def progress_bar(args: argparse.Namespace, label: str, total: int | None = None, *,
        enabled: bool = True) -> Progress:
    """A progress bar on stderr, drawn when ``enabled`` and the command is chatty."""
    return Progress(label, total, enabled=enabled and chatty(args))


def open_existing(args: argparse.Namespace) -> artifactstore.Store:
    """The project of ``--store``/``--project`` for a command that reads or changes it."""
    return artifactstore.open(args.store, args.project, create=False)


def open_to_add(args: argparse.Namespace) -> artifactstore.Store:
    """The project for a command that adds to it: created by the first write if missing
    (and the store too when it is the per-user default one)."""
    store = artifactstore.open(args.store, args.project)
    if not store.exists and discover(args.store).source != DEFAULT_SOURCE:
        store.close()
        # Why: 'log --store /typo' must fail like 'ls --store /typo', not start a store.
        raise StoreNotFoundError.at(redact_url(store.url))
    return store


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[TextIO]:
    """stdout, or a temporary file renamed to ``path`` only when the block succeeds."""
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    if target.is_dir():
        raise InvalidInputError(f"--output {path} is a folder: name a file")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        stream = temp.open("w", encoding="utf-8", newline="")
    except FileNotFoundError:
        raise NotFoundError(f"cannot write {path}: folder {target.parent} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with stream:
            yield stream
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, ArtifactStoreError):
            raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def passphrase_from_stdin(otherwise: str) -> str:
    """The first line of stdin; ``otherwise`` ends the error when it is empty."""
    passphrase = sys.stdin.readline().rstrip("\r\n")
    if not passphrase:
        raise InvalidInputError(f"no passphrase on stdin: pipe one non-empty line, or {otherwise}")
    return passphrase


def add_action(actions: Any, common: argparse.ArgumentParser, name: str,
               handler: Callable[[argparse.Namespace], Any], help_text: str,
               **options: Any) -> argparse.ArgumentParser:
    """Add the action ``name`` (as in ``alias set``) to ``actions``, the subparsers of a
    command: it takes the global options of ``common`` and runs ``handler``."""
    parser: argparse.ArgumentParser = actions.add_parser(name, parents=[common], help=help_text,
                                                         **options)
    parser.set_defaults(handler=handler)
    return parser
