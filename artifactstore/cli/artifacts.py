"""Commands over artifacts: log, get, ls, show, diff, alias (set, rm, protect, unprotect,
history)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artifactstore.cli._common import (
    add_action,
    chatty,
    open_existing,
    open_to_add,
    progress_bar,
    say,
    table,
)
from artifactstore.core.errors import InvalidInputError
from artifactstore.core.sizes import human_size

if TYPE_CHECKING:  # imported by the commands that use them (cli/main.py, start-up)
    from artifactstore.model.tree import Folder, Listed
    from artifactstore.records.refs import AliasEvent
    from artifactstore.repository.version import ArtifactVersion


def _describe(version: ArtifactVersion, aliases: list[str] | None = None) -> dict[str, Any]:
    """The facts of ``version``; ``aliases`` when the caller has them (they cost three
    listings, so ``get`` leaves them out: ``show`` gives them)."""
    found = {
        "ref": version.ref, "name": version.name, "version": version.version,
        "type": version.type, "digest": version.digest, "size": version.size,
        "created_at": version.created_at, "created_by": version.created_by,
        "description": version.description, "metadata": dict(version.metadata),
    }
    return found if aliases is None else {**found, "aliases": aliases}


def _logged_aliases(version: ArtifactVersion, asked: list[str]) -> list[str]:
    """The aliases of the version a ``log`` returned. A version it made is the newest and
    has exactly ``latest`` and the aliases asked (as of its commit), known without a
    request; an unchanged one may hold older aliases too, so they are listed."""
    if not version.created:
        return version.aliases
    return ["latest", *sorted(set(asked) - {"latest"})]


def _metadata(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--metadata {pair!r}: use KEY=VALUE")
        result[key] = value
    return result


def log(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.repository.artifact import Artifact

    artifact = Artifact(args.name, args.type, args.description, _metadata(args.metadata))
    # The store is opened before the check: its stat cache's folder rows spare the
    # check an ``access`` per file of an unchanged folder (a re-log of a million files).
    with open_to_add(args) as store:
        for path in args.paths:
            p = Path(path)
            if p.is_dir() and len(args.paths) == 1:  # streamed: bounded memory (ingest)
                artifact.stream_dir(p, follow_outside_links=args.follow_links,
                                    skip_unreadable=args.skip_unreadable,
                                    known=store.context.stat_cache.folder_signature)
            elif p.is_dir():
                artifact.add_dir(p, name=p.name,
                                 follow_outside_links=args.follow_links,
                                 skip_unreadable=args.skip_unreadable)
            else:
                artifact.add_file(p)
        skipped = [{"path": str(s.path), "reason": s.reason} for s in artifact.skipped]
        for s in skipped:  # stderr even with --json: what was left out must not go unseen
            if not args.quiet:
                print(f"artifactstore: skipped {s['path']}: {s['reason']}", file=sys.stderr)
        # the total stats every file (~6% of re-logging 100,000): only for a bar drawn
        with progress_bar(args, f"log {args.name}",
                          artifact.staged_bytes() if chatty(args) else None) as bar:
            version = store.log_artifact(artifact, aliases=args.alias, progress=bar.advance)
            result = {**_describe(version, _logged_aliases(version, args.alias)),
                      "created": version.created, "skipped": skipped}
    if version.created:
        say(args, f"logged {version.ref} ({version.size} bytes, digest {version.digest[:16]})")
    else:
        say(args, f"unchanged: same content as {version.ref}; no new version")
    return result


def get(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        version = store.artifact(args.ref)
        with progress_bar(args, f"get {version.ref}", version.size) as bar:
            target = version.download(args.dir, progress=bar.advance)
        result = {**_describe(version), "path": str(target)}
    say(args, f"{version.ref} -> {target}")
    return result


def ls(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        if args.deleted:
            rows = [{"ref": f"{a}:v{n}", "deleted_at": e.at, "by": e.by, "reason": e.reason,
                     "purged": e.action == "purge"}
                    for a, n, e in store.deleted_versions()
                    if args.name is None or a == args.name]
            for r in rows:
                say(args, f"{r['ref']:30} {'purged' if r['purged'] else 'deleted'} "
                          f"{r['deleted_at']}  {r['by']}  {r['reason'] or ''}")
            return {"deleted": rows}
        if args.name is None:
            names = store.artifacts()
            states = store.version_states() if names and chatty(args) else []
            if not names:
                say(args, "no artifacts yet: log one with "
                          "'artifactstore log NAME PATH --type TYPE'")
            elif chatty(args):  # not built for --json: 20 ms for 3,000 names
                say(args, _artifacts_table(names, states))
            return {"artifacts": names}
        held = store.aliases_by_version(args.name)
        versions = [_describe(v, held.get(v.version, [])) for v in store.versions(args.name)]
    lines = [("VERSION", "TYPE", "SIZE", "CREATED (UTC)", "ALIASES")]
    lines += [(v["ref"], v["type"], human_size(v["size"]), _when(v["created_at"]),
               ", ".join(v["aliases"]) or "-") for v in versions]
    say(args, table(lines))
    return {"versions": versions}


def _when(at: str) -> str:
    return at[:19].replace("T", " ")


def _artifacts_table(names: list[str], states: list[Any]) -> str:
    """NAME TYPE VERSIONS LATEST SIZE UPDATED, from the newest live version of each."""
    newest: dict[str, Any] = {}
    live: dict[str, int] = {}
    for state in states:
        if state.state == "live":
            newest[state.record.artifact] = state.record
            live[state.record.artifact] = live.get(state.record.artifact, 0) + 1
    rows = [("NAME", "TYPE", "VERSIONS", "LATEST", "SIZE", "UPDATED (UTC)")]
    for name in names:
        record = newest.get(name)
        if record is None:
            rows.append((name, "-", "0", "-", "-", "-"))
            continue
        rows.append((name, record.type, str(live[name]), record.label,
                     human_size(record.size), _when(record.created_at)))
    return table(rows)


def show(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        version = store.artifact(args.ref)
        # a FOLDER lists that folder's items only (its subfolders with their totals)
        items = version.folder_listing(args.folder) if args.folder else version.listing()
        files = [_listed(e) for e in items]
        result = {**_describe(version, version.aliases), "files": files}
    say(args, "\n".join(f"{k:12} {v}" for k, v in result.items() if k != "files"))
    for f in files:
        say(args, f"  {f['size']:>12}  {f['path']}")
    return result


def _listed(item: Listed | Folder) -> dict[str, Any]:
    from artifactstore.model.tree import Folder

    if isinstance(item, Folder):
        return {"path": item.path + "/", "size": item.size, "files": item.files}
    return {"path": item.path, "size": item.size,
            "digest": item.digest.hex if item.digest else None}


def diff(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        old, new = store.artifact(args.old), store.artifact(args.new)
        changes = [{"path": c.path, "change": c.kind} for c in new.diff(old, args.folder)]
    marks = {"added": "+", "removed": "-", "modified": "~"}
    for c in changes:
        say(args, f"{marks[c['change']]} {c['path']}")
    if not changes:
        say(args, "no differences")
    return {"old": old.ref, "new": new.ref, "changes": changes}


def _event(e: AliasEvent) -> dict[str, Any]:
    return {"alias": e.alias, "seq": e.seq, "target": e.target, "previous": e.previous,
            "protected": e.protected, "at": e.at, "by": e.by, "forced": e.forced}


def alias_set(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:  # an alias names a version: the project exists
        event = store.set_alias(args.ref, args.alias, force=args.force,
                                protect=True if args.protect else None)
    say(args, f"{args.alias} -> v{event.target}")
    return _event(event)


def alias_rm(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        event = store.remove_alias(args.name, args.alias, force=args.force)
    say(args, f"removed {args.name}:{args.alias}")
    return _event(event)


def _alias_of(text: str) -> tuple[str, str]:
    name, sep, alias = text.partition(":")
    if not sep or not name or not alias:
        raise InvalidInputError(f"{text!r:.60} is not NAME:ALIAS: write e.g. model:production")
    return name, alias


def alias_protect(args: argparse.Namespace) -> dict[str, Any]:
    name, alias = _alias_of(args.alias)
    with open_existing(args) as store:
        event = store.protect_alias(name, alias)
    say(args, f"{name}:{alias} -> v{event.target} is protected: moving or removing it needs "
              f"--force, and deleting v{event.target} refuses until it is unprotected")
    return _event(event)


def alias_unprotect(args: argparse.Namespace) -> dict[str, Any]:
    name, alias = _alias_of(args.alias)
    with open_existing(args) as store:
        event = store.unprotect_alias(name, alias)
    say(args, f"{name}:{alias} -> v{event.target} is no longer protected")
    return _event(event)


def alias_history(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        events = [_event(e) for e in store.alias_history(args.name, args.alias)]
    for e in events:
        say(args, f"{e['seq']:>4}  {e['at']}  {e['by']:20} v{e['previous']} -> v{e['target']}")
    return {"history": events}


def verify_version(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store:
        version = store.artifact(args.ref)
        checked = version.verify(args.dir)
    where = args.dir or "the store"
    say(args, f"ok: {checked} files of {version.ref} verified in {where}")
    return {"ref": version.ref, "files": checked, "ok": True}


_REF_HELP = "NAME, NAME:vN or NAME:ALIAS (NAME alone: the latest version)"


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add these commands; ``add(name, handler, help)`` returns a subparser and
    ``common`` holds the global options every subcommand accepts."""
    p = add("log", log, "log files or folders as a new version of NAME")
    p.add_argument("name", metavar="NAME", help="the artifact, e.g. imagenet-subset")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a file or folder to log (several: each folder under its name)")
    p.add_argument("--type", default="dataset", help="dataset, model, ... (default dataset)")
    p.add_argument("--alias", action="append", default=[],
                   help="also point this alias at the new version; repeat for more")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                   help="a metadata field of the version; repeat for more")
    p.add_argument("--description", help="a line saying what this version is")
    p.add_argument("--follow-links", action="store_true",
                   help="log what symbolic links that leave a folder point to "
                        "(refused by default: a planted link must not upload /etc/passwd)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="skip dangling or looping links and unreadable entries of a folder, "
                        "listing them on stderr (default: refuse the whole log)")
    p = add("get", get, "download a version (NAME[:vN|:ALIAS])")
    p.add_argument("ref", metavar="REF", help=_REF_HELP)
    p.add_argument("--dir", help="target folder, new or empty (default ./artifacts/NAME-vN)")
    p = add("ls", ls, "list artifacts, or the versions of NAME")
    p.add_argument("name", nargs="?", metavar="NAME", help="list the versions of this artifact")
    p.add_argument("--deleted", action="store_true",
                   help="list the deleted versions instead (restorable until gc)")
    p = add("show", show, "show a version and its files (those of FOLDER only, if given)")
    p.add_argument("ref", metavar="REF", help=_REF_HELP)
    p.add_argument("folder", nargs="?", default="", metavar="FOLDER",
                   help="list only this folder's files and subfolders, reading its nodes only "
                        "(default: the whole version)")
    p = add("diff", diff, "what changed between two versions")
    p.add_argument("old", metavar="OLD", help="the version to compare from, " + _REF_HELP)
    p.add_argument("new", metavar="NEW", help="the version to compare to, " + _REF_HELP)
    p.add_argument("folder", nargs="?", default="", metavar="FOLDER",
                   help="only the changes under this folder (default: the whole version)")
    p = add("alias", None, "set, remove, protect, unprotect or show the history of an alias")
    alias = p.add_subparsers(dest="alias_command", required=True, metavar="ACTION")
    a = add_action(alias, common, "set", alias_set, "point ALIAS at REF")
    a.add_argument("ref", metavar="REF", help=_REF_HELP)
    a.add_argument("alias", metavar="ALIAS", help="the alias, e.g. production")
    a.add_argument("--force", action="store_true", help="move a protected alias")
    a.add_argument("--protect", action="store_true", help="protect the alias from moves")
    a = add_action(alias, common, "rm", alias_rm, "remove ALIAS from NAME")
    a.add_argument("name", metavar="NAME", help="the artifact")
    a.add_argument("alias", metavar="ALIAS", help="the alias to remove")
    a.add_argument("--force", action="store_true", help="remove a protected alias")
    for action, handler, what in (
        ("protect", alias_protect, "protect ALIAS where it points now: moving or removing it "
                                   "needs --force, deleting its version refuses"),
        ("unprotect", alias_unprotect, "lift the protection of ALIAS (recorded in its history)"),
    ):
        a = add_action(alias, common, action, handler, what)
        a.add_argument("alias", metavar="NAME:ALIAS",
                       help="the artifact and its alias, e.g. model:production")
    a = add_action(alias, common, "history", alias_history, "every move of ALIAS")
    a.add_argument("name", metavar="NAME", help="the artifact")
    a.add_argument("alias", metavar="ALIAS", help="the alias")
