"""Commands that delete and reclaim: delete, restore, gc, purge, retention."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from artifactstore.cli._common import open_existing, progress_bar, say
from artifactstore.core.errors import InvalidInputError
from artifactstore.core.sizes import human_size
from artifactstore.maintenance.defaults import DEFAULT_REPACK_THRESHOLD

if TYPE_CHECKING:  # each command imports what it uses (cli/main.py: start-up)
    from artifactstore.maintenance.gc import GcReport
    from artifactstore.records.lifecycle import LifecycleEvent


def _event(event: LifecycleEvent) -> dict[str, Any]:
    return {"seq": event.seq, "action": event.action, "artifact": event.artifact,
            "versions": [f"v{n}" for n in event.numbers], "runs": list(event.runs),
            "reason": event.reason, "ttl": event.ttl, "at": event.at, "by": event.by}


def delete(args: argparse.Namespace) -> dict[str, Any]:
    chosen = sum(bool(x) for x in (args.artifact, args.run, args.whole_project))
    if chosen > 1:
        raise InvalidInputError("use one of --artifact, --run, --whole-project")
    if args.whole_project and args.target:
        raise InvalidInputError("--whole-project takes no REF")
    if not args.whole_project and not args.target:
        raise InvalidInputError("say what to delete: REF (name:vN), or NAME --artifact, "
                                "or RUN_ID --run, or --whole-project")
    with open_existing(args) as store:
        if args.whole_project:
            events = store.delete_project(force=args.force, reason=args.reason)
        elif args.run:
            events = store.delete_run(args.target, with_artifacts=args.with_artifacts,
                                      force=args.force, reason=args.reason)
        elif args.artifact:
            events = [store.delete_artifact(args.target, force=args.force, reason=args.reason)]
        else:
            events = [store.delete(args.target, force=args.force, reason=args.reason)]
    for e in events:
        what = ", ".join([f"{e.artifact}:v{n}" for n in e.numbers] + [f"run {r}" for r in e.runs])
        say(args, f"deleted {what} (restore with 'artifactstore restore'; gc reclaims "
                  "the space)")
    return {"events": [_event(e) for e in events]}


def restore(args: argparse.Namespace) -> dict[str, Any]:
    if sum(bool(x) for x in (args.artifact, args.run, args.whole_project)) > 1:
        raise InvalidInputError("use one of --artifact, --run, --whole-project")
    if (args.ref is None) != bool(args.whole_project):
        raise InvalidInputError("say what to restore: REF (name:vN), NAME --artifact, "
                                "RUN_ID --run, or --whole-project")
    with open_existing(args) as store:
        if args.whole_project:
            events = store.restore_project()
        elif args.artifact:
            events = store.restore_artifact(args.ref)
        elif args.run:
            events = [store.restore_run(args.ref)]
        else:
            events = [store.restore(args.ref)]
    say(args, f"restored {args.ref or 'the project'} ({len(events)} events)")
    return {"events": [_event(e) for e in events]}


def gc_report(report: GcReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run, "grace": report.grace, "expired": report.expired,
        "missing_records": report.missing,
        "bytes_freed": report.bytes_freed, "packs_deleted": report.packs_deleted,
        "stale_temps": report.stale_temps, "journal_pruned": report.journal_pruned,
        "index_objects_merged": report.index_objects_merged,
        "index_objects_written": report.index_objects_written,
        "domains": {
            name: {
                "live_blobs": d.live_blobs, "condemned_blobs": d.condemned_blobs,
                "condemned_bytes": d.condemned_bytes, "orphan_packs": d.orphan_packs,
                "waiting_condemnations": d.waiting,
                "packs_deleted": d.swept.packs_deleted, "packs_repacked": d.swept.packs_repacked,
                "blobs_deleted": d.swept.blobs_deleted, "bytes_freed": d.swept.bytes_freed,
                "index_objects_rewritten": d.swept.index_objects_rewritten,
            }
            for name, d in report.domains.items()
        },
    }


def gc(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store, progress_bar(args, "gc", enabled=not args.dry_run) as bar:
        report = store.gc(args.grace, dry_run=args.dry_run,
                          repack_threshold=args.repack_threshold, progress=bar.advance,
                          accept_missing_records=args.accept_missing_records,
                          on_wait=bar.wait)
    result = gc_report(report)
    for line in report.missing:
        say(args, f"accepted as lost: {line}")
    for ref in report.expired:
        say(args, f"{'would expire' if report.dry_run else 'expired'} {ref} (retention)")
    if report.dry_run:
        say(args, f"dry run: {human_size(report.bytes_freed)} are unreferenced and would be freed")
    else:
        condemned = sum(d.condemned_bytes for d in report.domains.values())
        say(args, f"freed {human_size(report.bytes_freed)} ({report.packs_deleted} packs removed)")
        if condemned:
            say(args, f"condemned {human_size(condemned)} unreferenced; a gc after the grace "
                      f"period ({report.grace:g} s) deletes what is still unreferenced")
    if report.stale_temps:
        say(args, f"{'would remove' if report.dry_run else 'removed'} {report.stale_temps} "
                  "temp file(s) that interrupted writes left behind")
    if report.index_objects_merged:
        say(args, f"merged {report.index_objects_merged} index objects into "
                  f"{report.index_objects_written}")
    return result


def purge(args: argparse.Namespace) -> dict[str, Any]:
    with open_existing(args) as store, progress_bar(args, f"purge {args.ref}") as countdown:
        report = store.purge(args.ref, reason=args.reason, path=args.path,
                             wait=not args.no_wait, on_wait=countdown.wait)
    say(args, f"purged {report.ref}: wiped {report.blobs_wiped} blobs "
              f"({human_size(report.bytes_wiped)}), rewrote {report.packs_rewritten} packs; "
              f"checked {report.indexes_checked} index objects and {report.packs_checked} "
              f"packs: {'none holds them' if report.absent else 'SOME STILL DO'}")
    if report.shared_files:
        say(args, f"kept (also in live versions): {', '.join(report.shared_files)}")
    if report.tree_reclaimed:
        say(args, "its tree was already reclaimed by gc, which freed what only it held, "
                  "except bytes in packs that gc kept; 'artifactstore gc --grace 0 "
                  "--repack-threshold 0' rewrites those")
    if report.downstream_versions or report.downstream_runs:
        say(args, "consumed downstream by: " + ", ".join(
            report.downstream_versions + [f"run {r}" for r in report.downstream_runs]))
    return asdict(report)


def retention(args: argparse.Namespace) -> dict[str, Any]:
    ttl = None if args.ttl.lower() in ("none", "off") else args.ttl
    with open_existing(args) as store:
        event = store.set_retention(ttl, artifact=args.artifact)
    scope = args.artifact or "every artifact"
    say(args, f"retention of {scope}: " + ("off" if ttl is None else
             f"unaliased versions older than {event.ttl:g} s are deleted by gc"))
    return _event(event)


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add the commands; ``add(name, handler, help)`` returns a subparser."""
    p = add("delete", delete, "soft-delete a version, an artifact, a run or the project "
                              "(restorable until gc)")
    p.add_argument("target", nargs="?", metavar="REF",
                   help="name:vN or name:alias (with --artifact: a name; with --run: a run id)")
    p.add_argument("--artifact", action="store_true", help="delete every version of NAME")
    p.add_argument("--run", action="store_true", help="delete the run RUN_ID")
    p.add_argument("--with-artifacts", action="store_true",
                   help="with --run: also delete the versions the run produced")
    p.add_argument("--whole-project", action="store_true",
                   help="delete every version and run of the project")
    p.add_argument("--force", action="store_true",
                   help="also remove the aliases pointing at what is deleted")
    p.add_argument("--reason", help="why (recorded)")
    p = add("restore", restore, "bring back a deleted version, artifact or run (before gc "
                                "reclaimed it)")
    p.add_argument("ref", metavar="REF", nargs="?",
                   help="name:vN (with --artifact: a name; with --run: a run id)")
    p.add_argument("--artifact", action="store_true", help="every deleted version of NAME")
    p.add_argument("--run", action="store_true", help="the deleted run RUN_ID")
    p.add_argument("--whole-project", action="store_true",
                   help="every deleted version and run of the project")
    p = add("gc", gc, "reclaim the space of deleted versions: condemn, then delete after "
                      "the grace period")
    p.add_argument("--grace", default="1h",
                   help="keep unreferenced data this long before deleting it (default 1h; "
                        "0 frees it in this run after waiting out the store's commit window, "
                        "counted down on a terminal)")
    p.add_argument("--dry-run", action="store_true", help="only report what would be freed")
    p.add_argument("--repack-threshold", type=float, default=DEFAULT_REPACK_THRESHOLD,
                   help="rewrite a pack once this fraction of it is dead (default 0.3)")
    p.add_argument("--accept-missing-records", action="store_true",
                   help="collect although records are missing ('artifactstore verify' lists "
                        "them): the data only they named is freed for good")
    p = add("purge", purge, "takedown: delete a version and wipe its data from the store now")
    p.add_argument("ref", metavar="REF", help="the version to purge, NAME:vN or NAME:ALIAS")
    p.add_argument("--reason", required=True, help="why (recorded in the purge record)")
    p.add_argument("--path", help="purge only this file or folder: a new version without it "
                                  "is logged and the old version purged")
    p.add_argument("--no-wait", action="store_true",
                   help="wipe at once instead of waiting out the store's commit window "
                        "(default 120 s, counted down on a terminal): only safe when "
                        "nobody else writes to the store meanwhile")
    p = add("retention", retention, "delete unaliased versions older than a TTL at each gc")
    p.add_argument("ttl", metavar="TTL", help="e.g. 30d, 12h, 0 (or 'none' to remove it)")
    p.add_argument("--artifact", metavar="NAME", help="only this artifact (default: all)")
