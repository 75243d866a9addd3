"""The ``import-from`` command (``dvc``, ``mlflow``, ``hf`` or ``wandb``, then a PATH):
another tool's history brought in as versions and runs (the work is in
:mod:`artifactstore.transfer.foreign`)."""

from __future__ import annotations

import argparse
from typing import Any

from artifactstore.cli._common import open_to_add, progress_bar, say
from artifactstore.core.errors import InvalidInputError

KINDS = ("dvc", "mlflow", "hf", "wandb")  # transfer.foreign.KINDS (loaded only when used)


def import_from(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.kind == "dvc":
        options["names"] = _renames(args.name)
        options["type"] = args.type
        options["git_history"] = args.git_history
    elif args.name or args.git_history:
        raise InvalidInputError("--name PATH=NAME and --git-history are for DVC only (use "
                                "--artifact for mlflow and hf)")
    if args.artifact is not None:
        if args.kind not in ("mlflow", "hf"):
            raise InvalidInputError("--artifact is for mlflow and hf only")
        options["artifact"] = args.artifact
    if args.experiment is not None:
        if args.kind != "mlflow":
            raise InvalidInputError("--experiment is for mlflow only")
        options["experiment"] = args.experiment
    with open_to_add(args) as store, progress_bar(args, f"import-from {args.kind}") as bar:
        report = store.import_from(args.kind, args.path, progress=bar.advance, **options)
    for v in report.versions:
        made = "new" if v["created"] else "already here, no new version"
        say(args, f"  {v['ref']} <- {v['source']} ({made})")
    for r in report.runs:
        made = "new" if r["created"] else "already here, no new run"
        say(args, f"  run {r['run_id']} <- {r['source']} ({made})")
    for note in report.notes:
        say(args, f"  note: {note}")
    if report.created_versions or report.created_runs:
        say(args, f"imported {report.created_versions} versions and {report.created_runs} "
                  f"runs from {args.kind} {args.path}")
    else:
        say(args, f"nothing new: everything of {args.path} was imported before")
    return report.as_dict()


def _renames(pairs: list[str]) -> dict[str, str]:
    renames = {}
    for pair in pairs:
        path, sep, name = pair.partition("=")
        if not sep or not path or not name:
            raise InvalidInputError(f"--name takes PATH=NAME, not {pair!r}")
        renames[path.strip("/")] = name
    return renames


def register(add: Any, common: argparse.ArgumentParser) -> None:
    """Add the command; ``add(name, handler, help)`` returns a subparser."""
    del common
    p = add("import-from", import_from,
            "bring another tool's history in: a DVC repository (outputs as versions, "
            "dvc.lock stages as runs), an MLflow mlruns folder (runs, params, metrics, "
            "artifacts), a Hugging Face hub cache (snapshots as versions) or W&B offline "
            "runs (runs, history, logged artifacts); original "
            "digests are checked and kept in the metadata")
    p.add_argument("kind", choices=KINDS, metavar="KIND",
                   help=f"the source's tool: {', '.join(KINDS)} (no default)")
    p.add_argument("path", metavar="PATH",
                   help="dvc: the repository's root; mlflow: the mlruns folder; hf: the hub "
                        "cache folder (e.g. ~/.cache/huggingface/hub) or one models--* "
                        "folder in it (no default)")
    p.add_argument("--name", action="append", default=[], metavar="PATH=NAME",
                   help="dvc: import the output at PATH as artifact NAME (repeatable; "
                        "default: the path with '/' as '-')")
    p.add_argument("--type", default="dataset",
                   help="dvc: the type of the versions (default: dataset)")
    p.add_argument("--git-history", action="store_true",
                   help="dvc: also import the older versions of each .dvc file in git's "
                        "log, oldest first, while the cache holds them (default: only the "
                        "current ones)")
    p.add_argument("--artifact", default=None, metavar="NAME",
                   help="mlflow: the artifact of each run's artifacts (default: "
                        "mlflow-<run id>); hf: the artifact of a repository's snapshots "
                        "(default: its name, e.g. org--model)")
    p.add_argument("--experiment", default=None, metavar="NAME",
                   help="mlflow: import only this experiment (default: all)")
