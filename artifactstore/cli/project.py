"""Commands over projects: project ls, create, show, trust, members add, members rm.

Vocabulary: see :mod:`artifactstore.maintenance.projects`. A member is named by their
**public line** (``asid1… name``, from ``artifactstore identity show``; pass it
quoted as one argument, or the ``asid1…`` part alone) or, for ``members rm``,
by their **fingerprint** (32 hex characters, as ``project show`` lists them).
The recovery passphrase of ``project create --passphrase-stdin`` is the first
line of stdin; it is never printed.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from artifactstore.cli._common import add_action, chatty, passphrase_from_stdin, progress_bar
from artifactstore.core.errors import ArtifactStoreError, InvalidInputError

if TYPE_CHECKING:  # each command imports what it uses (cli/main.py: start-up)
    from artifactstore.maintenance.projects import (
        ProjectSummary,
    )


VISIBILITIES = ("private", "team", "public")
_FINGERPRINT_CHARS = 32


def _my_fingerprint() -> str | None:
    """The user's fingerprint, to mark them in member lists; None without a usable identity
    (reading a project's members needs no identity, so this must not fail the command)."""
    from artifactstore.local.identity import identity_info

    try:
        return identity_info().public.fingerprint
    except ArtifactStoreError:
        return None


def _show(args: argparse.Namespace, summary: ProjectSummary, *,
          changed: bool = True) -> dict[str, Any]:
    """Print ``summary`` for people (a change's confirmation is silent with --quiet)."""
    if not args.json and not (changed and args.quiet):
        if summary.created_at is None:
            print(f"project {summary.project}: public (made before project records; "
                  "its first writer with this version becomes its creator)")
        else:
            me = _my_fingerprint()
            print(f"project {summary.project}: {summary.visibility}, created "
                  f"{summary.created_at}, {summary.epochs} key epoch(s)")
            print(f"  members ({len(summary.members)}):")
            for fingerprint in summary.members:
                profile = summary.profiles.get(fingerprint)
                who = "" if profile is None else "  " + profile.name + (
                    f" <{profile.email}>" if profile.email else "")
                print(f"    {fingerprint}{who}" + (" (you)" if fingerprint == me else ""))
            if summary.profiles_hidden and summary.members:
                print(f"    ({summary.profiles_hidden})")
            if not summary.pinned:
                print("  pin: none on this machine yet (the first open pins it)")
            elif summary.pin_matches:
                print("  pin: matches what this machine pinned")
            else:
                print(f"  pin: DIFFERS: {'; '.join(summary.pin_changes)}; if a member did "
                      f"this on purpose, run 'artifactstore project trust {summary.project}'")
    return summary.as_dict()


def _passphrase(args: argparse.Namespace) -> str | None:
    if not args.passphrase_stdin:
        return None
    return passphrase_from_stdin("leave out --passphrase-stdin")


def _member_ref(text: str) -> str:
    """A public line or a fingerprint, checked enough to give a clear one-line error."""
    from artifactstore.local.identity import LINE_PREFIX, PublicIdentity

    text = text.strip()
    if text[:len(LINE_PREFIX)].lower() == LINE_PREFIX:
        PublicIdentity.parse(text)  # a damaged line: say so before touching the project
        return text
    if len(text) != _FINGERPRINT_CHARS or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise InvalidInputError(
            f"{text[:40]!r} is neither a public identity line ('{LINE_PREFIX}…', from "
            f"'artifactstore identity show') nor a fingerprint ({_FINGERPRINT_CHARS} hex "
            "characters, from 'artifactstore project show')"
        )
    return text.lower()


def project_create(args: argparse.Namespace) -> dict[str, Any]:
    # Parsed first: a bad line is refused before the project (or an identity) is made;
    # deduplicated because the library refuses a repeated member after creating the project.
    from artifactstore.local.identity import PublicIdentity
    from artifactstore.maintenance.projects import create_project

    members = list({m.fingerprint: m for m in map(PublicIdentity.parse, args.member)}.values())
    summary = create_project(args.name, args.store, visibility=args.visibility,
                             members=members, passphrase=_passphrase(args))
    return _show(args, summary)


def project_ls(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.maintenance.projects import project_listing

    found = project_listing(args.store, args.project)
    if chatty(args):
        if not found:
            print("no projects in this store yet")
        for p in found:
            access = "" if p.readable else ", locked: you are not a member"
            print(f"{p.project}  {p.visibility}{access}  {p.runs} run(s), "
                  f"{p.artifacts} artifact(s)")
    return {"projects": [p.as_dict() for p in found]}


def project_show(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.maintenance.projects import show_project

    name = args.name if args.name is not None else args.project
    return _show(args, show_project(name, args.store), changed=False)


def project_trust(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.maintenance.projects import show_project, trust_project

    name = args.name or args.project or "default"
    before = show_project(name, args.store)
    old, new = trust_project(name, args.store)
    if chatty(args):
        if old is None:
            print(f"project {name}: no pin on this machine before")
        else:
            print(f"project {name}: pinned {old.first_seen}: {old.visibility}, creator "
                  f"{old.creator}, key epochs up to {old.epoch}")
            for change in before.pin_changes:
                print(f"  changed: {change}")
        print(f"now pinned: {new.visibility}, creator {new.creator}, key epochs up to "
              f"{new.epoch} (high-water marks of this project forgotten)")
    return {"project": name, "before": None if old is None else old.as_dict(),
            "changes": list(before.pin_changes), "pin": new.as_dict()}


def members_add(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.local.identity import PublicIdentity
    from artifactstore.maintenance.projects import add_member

    who = PublicIdentity.parse(args.who)
    return _show(args, add_member(args.project, who, args.store))


def members_rm(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.maintenance.projects import remove_member

    summary = remove_member(args.project, _member_ref(args.who), args.store)
    result = _show(args, summary)
    rotated = summary.visibility != "public"  # encrypted projects always start a new epoch
    if rotated and chatty(args):
        print(f"started key epoch {summary.epochs - 1}: new data is encrypted for the remaining "
              "members only; data already shared stays readable to whoever kept it "
              "(see docs/security.md)")
    return {**result, "new_epoch": summary.epochs - 1 if rotated else None}


def rekey(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.maintenance.projects import rekey_project

    name = args.name if args.name is not None else args.project
    with progress_bar(args, "re-encrypt", enabled=args.reencrypt) as bar:
        epoch, report = rekey_project(name, args.store, reencrypt=args.reencrypt,
                                      progress=bar.advance, on_wait=bar.wait)
    result: dict[str, Any] = {"project": name or "default", "epoch": epoch,
                              "reencrypted": report is not None}
    if report is not None:
        result.update(versions_rewritten=report.versions_rewritten,
                      records_resealed=report.records_resealed,
                      bytes_copied=report.bytes_copied, old_domains=report.old_domains,
                      left_behind=report.left_behind, bundles_deleted=report.bundles_deleted,
                      records_bundled=report.records_bundled)
    if chatty(args):
        print(f"started key epoch {epoch}")
        if report is not None:
            emptied = sum(report.old_domains.values())
            print(f"re-encrypted {report.versions_rewritten} versions and re-sealed "
                  f"{report.records_resealed} records; emptied {emptied} of "
                  f"{len(report.old_domains)} old key domains")
            if report.bundles_deleted:
                print(f"replaced {report.bundles_deleted} record bundles (they held records "
                      f"as first sealed) with bundles of {report.records_bundled} records")
            if report.left_behind:
                print(f"{len(report.left_behind)} records were written under an old key "
                      "while this ran: run 'artifactstore project rekey --reencrypt' again")
    return result


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``project`` command; ``add(name, handler, help)`` returns a subparser and
    ``common`` holds the global options every subcommand accepts."""
    p = add("project", None, "the store's projects, a project's visibility and members: "
                             "ls, create, show, members")
    sub = p.add_subparsers(dest="project_command", required=True, metavar="ACTION")
    add_action(sub, common, "ls", project_ls,
               "every project of the store: visibility, whether your identity can read it, "
               "runs and artifacts (deleted ones count until purged)")
    a = add_action(sub, common, "create", project_create,
                   "create project NAME owned by your identity (made if needed)")
    a.add_argument("name", metavar="NAME", help="the project (wins over --project)")
    a.add_argument("--visibility", choices=VISIBILITIES, default="private",
                   help="private and team projects are encrypted; public ones are readable "
                        "by anyone with the bucket (default: private)")
    a.add_argument("--member", action="append", default=[], metavar="PUBLIC_LINE",
                   help="also give this identity access (its quoted 'asid1… name' line, or "
                        "the asid1… part); repeat for more")
    a.add_argument("--passphrase-stdin", action="store_true",
                   help="also let the first line of stdin open the project (a recovery "
                        "passphrase, for readers without an identity)")
    a = add_action(sub, common, "show", project_show,
                   "visibility, members (fingerprints) and key epochs of a project")
    a.add_argument("name", metavar="NAME", nargs="?",
                   help="the project (default: --project, else 'default')")
    a = add_action(sub, common, "trust", project_trust,
                   "after checking a deliberate change (a member re-created the project, "
                   "restored it from a backup): show what this machine pinned and what the "
                   "store says now, forget the pin and the high-water marks, and pin the "
                   "project as it is now")
    a.add_argument("name", metavar="NAME", nargs="?",
                   help="the project (default: --project, else 'default')")
    a = sub.add_parser("members", parents=[common], help="add or remove a member")
    members = a.add_subparsers(dest="members_command", required=True, metavar="ACTION")
    m = add_action(members, common, "add", members_add,
                   "give an identity every key of the project (--project P)")
    m.add_argument("who", metavar="PUBLIC_LINE",
                   help="their quoted 'asid1… name' line, or the asid1… part")
    m = add_action(members, common, "rm", members_rm,
                   "remove a member; an encrypted project starts a new key epoch (--project P)")
    m.add_argument("who", metavar="PUBLIC_LINE|FINGERPRINT",
                   help="their public line, or their fingerprint as 'project show' lists it")
    a = add_action(sub, common, "rekey", rekey,
                   "start a new key epoch; --reencrypt also re-encrypts every older version "
                   "so old keys open nothing left in the bucket")
    a.add_argument("name", metavar="NAME", nargs="?",
                   help="the project (default: --project, else 'default')")
    a.add_argument("--reencrypt", action="store_true",
                   help="rewrite old data under the new key and delete the old ciphertext")
