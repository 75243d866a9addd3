"""Importing a Hugging Face hub cache: each snapshot of a repository a version.

Vocabulary (the hub library's): a cache folder (``~/.cache/huggingface/hub``) holds one
folder per repository, ``models--<org>--<name>`` (or ``datasets--``, ``spaces--``), with
``blobs/`` (each file's bytes once, named by its **etag**: the SHA-256 of an LFS file,
git's SHA-1 of ``blob <size>\\0<bytes>`` for the others), ``snapshots/<commit>/`` (the
files of one commit, as symbolic links into ``blobs/``), ``refs/<name>`` (a branch or tag
-> the commit it pointed at when downloaded) and, from huggingface_hub 1.x on,
``trees/<commit>.json`` (the listing of that commit: each file's git blob id and LFS
SHA-256).

Each snapshot becomes a version of the artifact named after the repository
(``<org>--<name>``, or ``artifact``), oldest snapshot folder first; each file is read
through its link and checked against its blob's name (SHA-256 when 64 hex digits, git
SHA-1 when 40) and, when the tree listing is cached, against the digest listed there. The
commit, the refs naming it and every file's digest are kept under ``_source``; each ref
whose name is a valid alias becomes an alias of the version (``main``, ``v1.0``). A
snapshot file that is no link (a cache written without symbolic links) has no digest to
check: it is imported unchecked, and the report says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.model.names import validate_alias, validate_artifact_name
from artifactstore.objects.store import Progress
from artifactstore.repository.aliases import set_alias
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.project import Project
from artifactstore.transfer.foreign.checked import (
    SOURCE_KEY,
    ForeignFile,
    ForeignReport,
    check,
    imported_version,
    log_staged,
    staged,
)

__all__ = ["import_hf"]

TOOL = "hf"
_KINDS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")


def import_hf(project: Project, path: str | os.PathLike[str], *, artifact: str | None = None,
              progress: Progress | None = None) -> ForeignReport:
    """Import the hub cache at ``path`` (the cache folder, or one repository's folder in
    it) into ``project`` (see the module's docstring); ``artifact`` names the artifact
    of the snapshots (only with one repository)."""
    root = Path(path)
    repos = [root] if _is_repo(root) else sorted(p for p in _children(root) if _is_repo(p))
    if not repos:
        raise NotFoundError(f"{root}: no Hugging Face cache here (no models--*/snapshots; "
                            "give the hub cache folder or one repository's folder)")
    if artifact is not None and len(repos) > 1:
        raise InvalidInputError(f"--artifact names one artifact, and {root} holds "
                                f"{len(repos)} repositories: give one repository's folder")
    report = ForeignReport("hf", str(root))
    plans = [(repo, list(_snapshots(repo))) for repo in repos]
    for _, snapshots in plans:  # everything checked before anything is written
        for _, files, _ in snapshots:
            for file in files:
                check(file, "the hub cache")
    for repo, snapshots in plans:
        kind, repo_id = _repo_id(repo)
        name = validate_artifact_name(artifact or repo_id.replace("/", "--"))
        for commit, files, refs in snapshots:
            _snapshot(project, name, kind, repo_id, commit, files, refs, report, progress)
    return report


def _children(root: Path) -> list[Path]:
    try:
        return list(root.iterdir())
    except OSError as exc:
        raise NotFoundError(f"{root}: cannot list it ({exc.strerror})") from None


def _is_repo(path: Path) -> bool:
    return (path.name.split("--")[0] in _KINDS and "--" in path.name
            and (path / "snapshots").is_dir())


def _repo_id(repo: Path) -> tuple[str, str]:
    kind, _, rest = repo.name.partition("--")
    return _KINDS[kind], rest.replace("--", "/")


def _snapshots(repo: Path) -> Iterator[tuple[str, list[ForeignFile], list[str]]]:
    refs: dict[str, list[str]] = {}
    refs_dir = repo / "refs"
    for ref in sorted(p for p in refs_dir.rglob("*") if p.is_file()) if refs_dir.is_dir() else ():
        commit = ref.read_text(encoding="utf-8", errors="replace").strip()
        refs.setdefault(commit, []).append(ref.relative_to(refs_dir).as_posix())
    folders = [p for p in (repo / "snapshots").iterdir() if p.is_dir()]
    for folder in sorted(folders, key=lambda p: (p.stat().st_mtime_ns, p.name)):
        listed = _tree(repo, folder.name)
        files = [_file(folder, p, listed) for p in sorted(folder.rglob("*"))
                 if p.is_file()]
        yield folder.name, files, refs.get(folder.name, [])


def _tree(repo: Path, commit: str) -> dict[str, Any]:
    """The cached listing of ``commit`` (path -> facts), empty when none is cached."""
    tree = repo / "trees" / f"{commit}.json"
    if not tree.is_file():
        return {}
    try:
        files = json.loads(tree.read_bytes()).get("files")
    except (OSError, ValueError, AttributeError):
        raise InvalidInputError(f"{tree}: not the hub's tree listing (JSON with 'files')"
                                ) from None
    return files if isinstance(files, dict) else {}


def _file(folder: Path, path: Path, listed: dict[str, Any]) -> ForeignFile:
    inside = path.relative_to(folder).as_posix()
    if not path.is_symlink():
        return ForeignFile(inside, path)
    blob = path.resolve()
    etag = blob.name
    algorithm = "sha256" if _HEX64.fullmatch(etag) else "git-sha1" if _HEX40.fullmatch(
        etag) else None
    if algorithm is None:
        raise InvalidInputError(f"{path}: links to {blob}, whose name is no SHA-256 or git "
                                "SHA-1: not a hub cache blob")
    facts = listed.get(inside)
    if isinstance(facts, dict):
        want = facts.get("lfs_sha256") if algorithm == "sha256" else facts.get("blob_id")
        if want != etag:
            raise InvalidInputError(f"{path}: links to blob {etag}, but the cached tree "
                                    f"of this commit lists {want}: the cache is inconsistent")
    return ForeignFile(inside, blob, algorithm, etag)


def _snapshot(project: Project, name: str, kind: str, repo_id: str, commit: str,
              files: list[ForeignFile], refs: list[str], report: ForeignReport,
              progress: Progress | None) -> None:
    ident = f"{repo_id}@{commit}"
    version = imported_version(project, name, TOOL, ident)
    if version is None:
        unchecked = [f.path for f in files if f.algorithm is None]
        if unchecked:
            report.notes.append(f"{ident}: {len(unchecked)} files are no links into blobs/ "
                                f"(e.g. {unchecked[0]}): imported without a digest to check")
        meta = {SOURCE_KEY: {
            "tool": TOOL, "id": ident, "repo_id": repo_id, "repo_type": kind,
            "commit": commit, "refs": refs,
            "files": {f.path: None if f.algorithm is None else {f.algorithm: f.digest}
                      for f in files},
        }}  # fmt: skip
        with staged(files, Artifact(name, kind, None, meta), tool="the hub cache",
                    progress=progress) as artifact:
            version = log_staged(project, artifact, None, progress)
        created = version.created
    else:
        created = False
    report.versions.append({"ref": version.ref, "source": ident, "created": created})
    current = project.refs.aliases(name)
    for ref in refs:
        try:
            alias = validate_alias(ref)
        except InvalidInputError:
            report.notes.append(f"{ident}: ref {ref!r} is no valid alias: kept in the "
                                "metadata only")
            continue
        if current.get(alias) != version.number:
            set_alias(project, version.ref, alias)
