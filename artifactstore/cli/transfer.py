"""Commands that move a version between stores: export, import (as plain files) and
publish (into a public project).

The format (``artifactstore-export.json`` next to ``files/``) is in
docs/export-format.md; the work is in :mod:`artifactstore.transfer.exporting` and
:mod:`artifactstore.transfer.importing`.
"""

from __future__ import annotations

import argparse
from typing import Any

from artifactstore.cli._common import open_existing, open_to_add, progress_bar, say

# The export modules are imported by the commands that use them: every other command
# would pay ~20 ms of start-up for them (see test_the_cli_starts_without_importing_networkx).
MANIFEST_NAME = "artifactstore-export.json"  # model.exports.MANIFEST_NAME (a test checks)


def export(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.transfer.exporting import export_kind

    with open_existing(args) as store:
        version = store.artifact(args.ref)
        with progress_bar(args, f"export {version.ref}", version.size) as bar:
            manifest = store.export(version.ref, args.target, force=args.force,
                                    progress=bar.advance)
    run = manifest.run
    result = {
        "ref": manifest.ref, "target": args.target, "kind": export_kind(args.target),
        "manifest": MANIFEST_NAME, "digest": manifest.digest, "files": len(manifest.files),
        "bytes": manifest.file_bytes, "references": len(manifest.references),
        "run_id": manifest.run_id, "inputs": [] if run is None else [i.ref for i in run.inputs],
    }  # fmt: skip
    made = "" if manifest.run_id is None else f", made by run {manifest.run_id}"
    say(args, f"exported {manifest.ref} to {args.target}: {len(manifest.files)} files, "
              f"{manifest.file_bytes} bytes, {len(manifest.references)} references{made}")
    return result


def import_version(args: argparse.Namespace) -> dict[str, Any]:
    with open_to_add(args) as store, progress_bar(args, f"import {args.source}") as bar:
        report = store.import_export(args.source, args.name, aliases=args.aliases,
                                     references=not args.skip_references,
                                     progress=bar.advance)
        result = report.as_dict()
    version = report.version
    if report.created:
        say(args, f"imported {report.source_ref} as {version.ref} ({version.size} bytes, "
                  f"digest {version.digest[:16]})")
    else:
        say(args, f"unchanged: {report.source_ref} has the same content as {version.ref}; "
                  "no new version")
    if report.run_id is not None:
        say(args, f"run {report.run_id} stands for run {report.original_run_id}")
    for i in report.inputs:
        how = f"-> {i.linked} (same {i.matched_by})" if i.linked else "missing in this store"
        say(args, f"  input {i.ref} {how}")
    for path in report.skipped_references:
        say(args, f"  reference {path} left out (--skip-references)")
    return result


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add these commands; ``add(name, handler, help)`` returns a subparser and
    ``common`` holds the global options every subcommand accepts."""
    p = add("export", export,
            f"write a version's files and a portable manifest ({MANIFEST_NAME}) to a "
            "folder or a tar file")
    p.add_argument("ref", metavar="REF", help="the version, NAME[:vN|:ALIAS]")
    p.add_argument("target", metavar="DIR|FILE.tar",
                   help="a new or empty folder, or a file ending in .tar, .tar.gz or .tgz")
    p.add_argument("--force", action="store_true",
                   help="replace the export in a non-empty folder, or an existing file")
    p = add("import", import_version,
            "log an export (folder or tar file) as a new version, with a run standing "
            "for the run that made it")
    p.add_argument("source", metavar="DIR|FILE.tar",
                   help="an export folder, or a tar file written by 'artifactstore export'")
    p.add_argument("--name", help="import as this artifact (default: the exported name)")
    p.add_argument("--aliases", action="store_true",
                   help="also set the aliases the export lists")
    p.add_argument("--skip-references", action="store_true",
                   help="leave reference entries out instead of checking their sources")
    register_publish(add)


def publish(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        version = store.artifact(args.ref)
        with progress_bar(args, f"publish {version.ref}", version.size) as bar:
            report = store.publish(args.ref, args.to, args.to_project,
                                   with_lineage=args.with_lineage,
                                   with_ancestors=args.with_ancestors, progress=bar.advance)
    made = "new project, " if report.created_project else ""
    say(args, f"published {report.source} as {report.ref} in public project "
              f"{report.project} of {report.destination} ({made}digest {report.digest[:16]})")
    if report.run_id is not None:
        say(args, f"run {report.run_id} stands for run {report.original_run_id}")
    for i in report.inputs:
        how = f"-> {i.linked} (same {i.matched_by})" if i.linked else "recorded as not published"
        say(args, f"  input {i.ref} {how}")
    return report.as_dict()


def register_publish(add: Any) -> None:
    """Add the ``publish`` command."""
    p = add("publish", publish,
            "copy ONE version into a public project of an existing store (re-logged in "
            "plaintext, signed by you); nothing else of this project goes there")
    p.add_argument("ref", metavar="REF", help="the version to publish, NAME[:vN|:ALIAS]")
    p.add_argument("--to", required=True, metavar="URL",
                   help="the store to publish into (it must exist: 'artifactstore init')")
    p.add_argument("--to-project", metavar="Q", default=None,
                   help="the public project there (default: this project's name; created "
                        "public if missing, refused if it is private)")
    p.add_argument("--with-lineage", action="store_true",
                   help="also publish the run that made it: its config, metrics, code state "
                        "and the names and digests of its inputs")
    p.add_argument("--with-ancestors", action="store_true",
                   help="also publish, first, every version upstream of it (the inputs of "
                        "its run, theirs, ...) with their runs; implies --with-lineage")
