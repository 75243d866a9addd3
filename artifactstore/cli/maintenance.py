"""Whole-store maintenance commands: verify and repair."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from artifactstore.cli import artifacts
from artifactstore.cli._common import MiB, add_action, progress_bar, say
from artifactstore.core.errors import IntegrityError, InvalidInputError


def verify(args: argparse.Namespace) -> dict[str, Any] | int:
    if args.ref is not None:
        if args.read_data or args.read_data_subset is not None:
            raise InvalidInputError("--read-data and --read-data-subset check the whole store "
                                    "(verify without REF); verify REF always reads every chunk")
        return artifacts.verify_version(args)
    from artifactstore.maintenance.verify import ALL_PACKS, Subset, verify_store
    from artifactstore.repository.opening import resolve_url

    subset: Subset | bool = ALL_PACKS if args.read_data else False
    if args.read_data_subset is not None:
        subset = Subset.parse(args.read_data_subset, args.seed)
    with progress_bar(args, "verify") as bar:
        report = verify_store(resolve_url(args.store), args.project, bar.advance,
                              read_data=subset)
    result = report.as_dict()
    if not report.ok:
        message = (f"{len(report.damage)} damaged object(s), the first: {report.damage[0]}"
                   if report.damage else f"{len(report.missing)} missing record(s), the "
                   f"first: {report.missing[0]}; restore them from a backup of the store")
        if args.json:
            print(json.dumps({**result, "error": "IntegrityError", "message": message,
                              "exit_code": IntegrityError.exit_code}, indent=2, sort_keys=True))
        else:
            print("\n".join(report.damage_lines()))
        print(f"artifactstore: error: {message}", file=sys.stderr)
        return IntegrityError.exit_code
    data = ("data not re-hashed (--read-data re-hashes it)" if report.read_data is None else
            f"{result['packs']} packs ({report.read_data.describe()}), {result['blobs']} blobs, "
            f"{result['bytes'] / MiB:.1f} MiB re-hashed")
    say(args, f"ok: {report.versions} versions, {report.files} files and "
              f"{result['packs_total']} packs hold together; {data}"
              + (f"; {len(report.skipped_domains)} encrypted key domain(s) of other projects "
                 "not read (verify with --project NAME as a member)"
                 if report.skipped_domains else ""))
    if report.stale_temps:
        say(args, f"{report.stale_temps} temp file(s) that interrupted writes left behind "
                  "(not damage; 'artifactstore gc' removes them)")
    return result


def repair_index(args: argparse.Namespace) -> dict[str, Any]:
    from artifactstore.maintenance.repair import repair_index as repair_store_index
    from artifactstore.repository.opening import resolve_url

    with progress_bar(args, "repair index") as bar:
        report = repair_store_index(resolve_url(args.store), args.project, bar.advance)
    result = report.as_dict()
    if not result["index_objects_written"]:
        say(args, f"nothing to write: readable index objects list all {result['packs']} packs"
                  + (" whose trailer checks" if result["damaged_packs"] else ""))
    else:
        say(args, f"{len(result['packs_indexed'])} of {result['packs']} packs "
                  f"({result['blobs_indexed']} blobs) listed again in "
                  f"{len(result['index_objects_written'])} new index object(s)")
    for key in result["removed_index_objects"]:
        say(args, f"removed unreadable index object {key} (its packs are listed again)")
    for line in result["damaged_packs"]:
        say(args, f"not indexed, its trailer does not check: {line}")
    return result


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add ``verify`` and ``repair``; ``add(name, handler, help)`` returns a subparser."""
    p = add("verify", verify, "check that every version of the store holds together (no REF; "
                              "--read-data also re-hashes the packs), or one version REF")
    p.add_argument("ref", nargs="?", metavar="REF",
                   help="check only this version (NAME[:vN|:ALIAS]), every chunk read")
    p.add_argument("--dir", help="check a downloaded copy of REF in this folder instead")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--read-data", action="store_true",
                      help="also read and re-hash every pack and blob")
    data.add_argument("--read-data-subset", metavar="N%",
                      help="re-hash a subset of packs: N%%, a fraction (0.1) or n/m (1/5)")
    p.add_argument("--seed", type=int, default=0,
                   help="which packs a N%% subset picks (default 0: the same ones each run)")
    p = add("repair", None, "rebuild store metadata from the data it describes")
    repair = p.add_subparsers(dest="repair_command", required=True, metavar="WHAT")
    add_action(repair, common, "index", repair_index,
               "rebuild lost or damaged index objects from the pack trailers")
