"""Commands over the user's identity: identity create, show, check, declare.

Passphrases come from ``--passphrase-stdin``, a terminal prompt (getpass, never
echoed), or ``$ARTIFACTSTORE_PASSPHRASE`` (check); they are never printed.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING, Any

from artifactstore.cli._common import add_action, chatty, passphrase_from_stdin
from artifactstore.core.errors import InvalidInputError

if TYPE_CHECKING:  # each command imports what it uses (cli/main.py: start-up)
    from artifactstore.local.identity import (
        Identity,
        IdentityInfo,
    )


def _interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _note(args: argparse.Namespace, text: str) -> None:
    if chatty(args):
        print(text, file=sys.stderr)


def _describe(info: IdentityInfo | Identity, path: str) -> dict[str, Any]:
    from artifactstore.local.profile import declared_profile

    declared = declared_profile()
    return {"name": info.public.name, "fingerprint": info.public.fingerprint,
            "public": info.public.to_line(), "path": path, "protected": info.protected,
            "declared": None if declared is None else {"name": declared.name,
                                                       "email": declared.email}}


def _new_passphrase(args: argparse.Namespace) -> str | None:
    if args.no_passphrase:
        return None
    if args.passphrase_stdin:
        return passphrase_from_stdin("use --no-passphrase")
    if not _interactive():
        # Said even with --quiet: the user should know the private keys are not sealed.
        print("artifactstore: stdin is not a terminal, so the identity gets no passphrase "
              "(use --passphrase-stdin to set one)", file=sys.stderr)
        return None
    first = getpass.getpass("Passphrase for the new identity (empty for none): ")
    if first != getpass.getpass("The same passphrase again: "):
        raise InvalidInputError("the two passphrases differ; run the command again")
    return first or None


def identity_create(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.local.identity import (
        create_identity,
        ensure_absent,
        identity_backups,
        identity_path,
    )

    path = identity_path()
    if not args.force:
        ensure_absent(path=path)  # before asking for a passphrase
    before = set(identity_backups(path=path))
    identity = create_identity(args.name, _new_passphrase(args), path=path, force=args.force)
    if not args.json:
        print(identity.public.to_line())
    how = "protected by a passphrase" if identity.protected else "without a passphrase"
    _note(args, f"created identity {identity.public.fingerprint} at {path}, {how}; "
                "give the line above to teammates")
    for backup in sorted(set(identity_backups(path=path)) - before):
        _note(args, f"the old identity was kept as {backup}")
    return _describe(identity, str(path))


def identity_show(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.local.identity import identity_info

    info = identity_info()
    described = _describe(info, str(info.path))
    if not args.json:
        print(info.public.to_line())
        declared = described["declared"]
        if declared is not None:
            _note(args, f"declares: {_person(declared['name'], declared['email'])}")
    return described


def _person(name: str, email: str | None) -> str:
    return name + (f" <{email}>" if email else "")


def identity_declare(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.local.identity import identity_info
    from artifactstore.local.profile import (
        declared_profile,
        forget_declared_profile,
        save_declared_profile,
    )

    if args.forget:
        if args.name is not None or args.email is not None:
            raise InvalidInputError("--forget takes no --name or --email; leave them out")
        forgot = forget_declared_profile()
        _note(args, "nothing is declared any more (projects keep what they were shown)"
              if forgot else "nothing was declared")
        return {"declared": None, "forgot": forgot}
    current = declared_profile()
    name = args.name if args.name is not None else (
        current.name if current is not None else identity_info().public.name)
    email = args.email if args.email is not None else (
        current.email if current is not None else None)
    profile = save_declared_profile(name, email or None)
    if not args.json:
        print(_person(profile.name, profile.email))
    _note(args, "shown to the members of each project you write in from your next write "
                "there (and to anyone who can read a public project)")
    return {"declared": {"name": profile.name, "email": profile.email}}


def identity_check(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.local.identity import PASSPHRASE_ENV, identity_info, load_identity

    info = identity_info()
    passphrase = None
    if info.protected and not os.environ.get(PASSPHRASE_ENV) and _interactive():
        passphrase = getpass.getpass(f"Passphrase for {info.path}: ")
    identity = load_identity(passphrase, path=info.path)
    if not args.json:
        print(f"{info.path}: intact, its private keys match {identity.public.fingerprint}"
              + (" and the passphrase opens them" if identity.protected else ""))
    return {**_describe(identity, str(info.path)), "ok": True}


#: ``local.identity.PASSPHRASE_ENV`` for the help text, which must not import the
#: identity's cryptography (~20 ms); tests/test_cli_startup.py checks they are equal
PASSPHRASE_ENV = "ARTIFACTSTORE_PASSPHRASE"


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``identity`` command; ``add(name, handler, help)`` returns a subparser and
    ``common`` holds the global options every subcommand accepts."""
    p = add("identity", None, "your keys for private projects: create, show or check them, "
                              "declare your name and e-mail")
    sub = p.add_subparsers(dest="identity_command", required=True, metavar="ACTION")
    a = add_action(sub, common, "create", identity_create,
                   "make your X25519 and Ed25519 key pairs and print your public line")
    a.add_argument("--name", help="display name shown to teammates (default: user@host)")
    secret = a.add_mutually_exclusive_group()
    secret.add_argument("--no-passphrase", action="store_true",
                        help="store the private keys unprotected (file mode 0600)")
    secret.add_argument("--passphrase-stdin", action="store_true",
                        help="read the passphrase from the first line of stdin")
    a.add_argument("--force", action="store_true",
                   help="replace an existing identity (kept as a backup; its projects will "
                        "no longer open)")
    add_action(sub, common, "show", identity_show,
               "print your public identity as one line to give to teammates")
    add_action(sub, common, "check", identity_check,
               f"check that the identity is intact and the passphrase (from ${PASSPHRASE_ENV} "
               "or a prompt) opens it")
    a = add_action(sub, common, "declare", identity_declare,
                   "declare the name and e-mail project members see beside your fingerprint "
                   "(written into each project at your next write there)")
    a.add_argument("--name", help="the name to show (default: the one declared before, else "
                                  "the identity's name)")
    a.add_argument("--email", help="the e-mail to show; '' for none (default: the one "
                                   "declared before, else none)")
    a.add_argument("--forget", action="store_true",
                   help="declare nothing from now on (projects keep what they were shown)")
