"""The ``sync`` command: copy what one store lacks from another (a backup).

``artifactstore sync SRC_URL DST_URL`` copies every project and key domain;
``--project P`` one project; ``--to-project Q`` re-logs P's versions into project
Q of DST under Q's keys (:mod:`artifactstore.transfer.relog`). Versions the source purged
are wiped at DST in the same run and reported. Exit 10 when the stores diverged
(conflicts are listed; everything else was copied); a purge DST could not carry out
is listed as NOT WIPED and exits with its error's code (never 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from artifactstore.cli._common import MiB, progress_bar, say
from artifactstore.core.errors import ConflictError, InvalidInputError
from artifactstore.core.sizes import human_size


def run_sync(args: argparse.Namespace) -> int:
    """Sync SRC into DST; prints the report (JSON with --json) and returns the exit code."""
    if args.to_project is not None:
        return _relog(args)
    from artifactstore.transfer.sync import sync

    with progress_bar(args, "sync") as bar:
        report = sync(args.src, args.dst, args.project, progress=bar.advance,
                      on_wait=bar.wait, concurrency=args.concurrency, check=False)
    result = report.as_dict()
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    what = f"project {args.project}" if args.project else "every project"
    say(args, f"synced {what}: {report.source} -> {report.destination}")
    for kind in ("packs", "index", "records"):
        t = result[kind]
        say(args, f"  {kind:8} {t['copied']:6} copied ({t['bytes'] / MiB:.1f} MiB), "
                  f"{t['present']} already there")
    for version in report.incomplete:
        say(args, f"  incomplete at the source (blobs missing): {version}")
    for t in report.takedowns:
        if t.wiped:
            say(args, f"  purged at the source, wiped here: {t.project}/"
                      f"{', '.join(t.versions)}: {t.blobs_wiped} blobs, "
                      f"{human_size(t.bytes_wiped)}, {t.packs_rewritten} packs rewritten; "
                      f"proof: {t.indexes_checked} index objects and {t.packs_checked} packs "
                      "read, none holds a wiped blob")
    code = _finish(report.conflicts and [f"{c.key}: {c.reason} ({c.skipped} not copied)"
                                         for c in report.conflicts])
    for t in report.not_wiped:
        # Why: a takedown that stopped short must never look done (issue 15).
        print(f"artifactstore: NOT WIPED at {report.destination}: {t.project}/"
              f"{', '.join(t.versions)}: {t.error}", file=sys.stderr)
    if report.failure is not None:
        print(f"artifactstore: error: {report.failure}", file=sys.stderr)
    return report.exit_code or code


def _relog(args: argparse.Namespace) -> int:
    from artifactstore.transfer.relog import relog

    if args.project is None:
        raise InvalidInputError("--to-project needs --project: the project to re-log from")
    with progress_bar(args, "sync") as bar:
        report = relog(args.src, args.dst, args.project, args.to_project,
                       progress=bar.advance)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    say(args, f"re-logged project {args.project} of {args.src} into project "
              f"{args.to_project} of {args.dst}")
    for old, new in report.logged:
        say(args, f"  {old} -> {new}")
    say(args, f"  {len(report.logged)} version(s) logged, {len(report.present)} already there, "
              f"{len(report.aliases)} alias move(s)")
    return _finish(report.conflicts)


def _finish(conflicts: list[str] | Any) -> int:
    if not conflicts:
        return 0
    for line in conflicts:
        print(f"artifactstore: conflict: {line}", file=sys.stderr)
    print(f"artifactstore: error: {len(conflicts)} conflict(s): the stores diverged; nothing "
          "was overwritten, everything else was copied", file=sys.stderr)
    return ConflictError.exit_code


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``sync`` command; ``add(name, handler, help)`` returns a subparser."""
    p = add("sync", run_sync,
            "copy everything DST lacks from SRC: versions, aliases, runs, projects, blobs "
            "(a backup; idempotent and resumable); --project P for one project")
    p.add_argument("src", metavar="SRC_URL", help="the store to copy from (never written)")
    p.add_argument("dst", metavar="DST_URL", help="the store to copy into (created if empty)")
    p.add_argument("--to-project", metavar="Q", default=None,
                   help="re-log the versions of --project P into project Q of DST, "
                        "encrypted under Q's keys (new version numbers; aliases follow)")
    p.add_argument("--concurrency", type=int, default=8, metavar="N",
                   help="objects copied at once (default 8)")
