"""Importing a DVC repository: its tracked outputs as versions, its ``dvc.lock`` stages
as runs (DVC 3, ``hash: md5``).

Vocabulary (DVC's): an **output** is a file or folder DVC tracks, named by a ``.dvc``
file or by a stage's ``outs`` in ``dvc.lock``, with the MD5 of its bytes (a folder's
MD5 ends in ``.dir`` and is that of a **manifest**, a JSON list of ``{"md5",
"relpath"}``); the **cache** keeps each file at ``.dvc/cache/files/md5/<2>/<30>`` (or under the
``cache.dir`` of ``.dvc/config``). A
**stage** of ``dvc.lock`` is a command with its ``deps``, ``params`` and ``outs`` as
they were when ``dvc repro`` last ran it.

Each output becomes a version (artifact name from its path, ``/`` -> ``-``, or as
``names`` renames it), its files read from the cache (else the workspace) and checked
against their MD5s, which are kept in the version's metadata under ``_source``. Each
stage becomes a run of job type ``dvc-stage`` (config: ``cmd``, ``params``, and under
``_source`` the lock file, stage and every dep's and out's MD5) that used its deps and
made its outs, so lineage shows the pipeline; the numbers of the outs ``dvc.yaml`` calls
``metrics`` (JSON or YAML, nested keys joined with ``.``) are its summary. A dep DVC
does not cache (a script kept in git) is imported from the workspace when its MD5 still
matches; otherwise the run records it in its config only, and the report says so.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from artifactstore.core.errors import IntegrityError, InvalidInputError, NotFoundError
from artifactstore.model.names import validate_artifact_name
from artifactstore.objects.store import Progress
from artifactstore.repository.artifact import Artifact
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion
from artifactstore.runs.run import Run
from artifactstore.transfer.foreign.checked import (
    FAILED,
    SOURCE_KEY,
    ForeignFile,
    ForeignReport,
    check,
    file_digest,
    imported_runs,
    imported_version,
    log_staged,
    staged,
)
from artifactstore.transfer.foreign.gitlog import git_versions
from artifactstore.transfer.foreign.yamlfiles import read_yaml

__all__ = ["JOB_TYPE", "import_dvc"]

JOB_TYPE = "dvc-stage"
TOOL = "dvc"
_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")


@dataclass(frozen=True, slots=True)
class _Output:
    path: str  # from the repository's root, posix
    md5: str  # ends in .dir for a folder
    commit: str | None = None  # the git commit of the .dvc file (git history only)
    committed_at: str | None = None


@dataclass(frozen=True, slots=True)
class _Stage:
    lock: str  # the dvc.lock file, from the root
    name: str
    cmd: Any
    params: Mapping[str, Any]
    deps: tuple[_Output, ...]
    outs: tuple[_Output, ...]
    metrics: frozenset[str] = frozenset()  # the outs dvc.yaml calls metrics

    @property
    def ident(self) -> str:
        facts = [self.lock, self.name, [(o.path, o.md5) for o in self.deps + self.outs]]
        digest = hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16]
        return f"{self.lock}:{self.name}@{digest}"


class _Repo:
    def __init__(self, root: Path, names: Mapping[str, str], type: str) -> None:
        self.root = root
        self.cache = _cache_dir(root) / "files" / "md5"
        self.names = dict(names)
        self.type = type

    def name_of(self, path: str) -> str:
        if path in self.names:
            return validate_artifact_name(self.names[path])
        name = path.replace("/", "-").lstrip(".-_") or "root"
        try:
            return validate_artifact_name(name)
        except InvalidInputError as exc:
            raise InvalidInputError(f"DVC output {path!r}: {exc}; rename it with "
                                    f"--name {path}=NAME") from None

    def cached(self, md5: str) -> Path:
        return self.cache / md5[:2] / md5[2:]

    def files(self, out: _Output, *, workspace_must_match: bool) -> list[ForeignFile] | None:
        """The files of ``out`` with their MD5s, from the cache, else the workspace
        (None when the workspace no longer holds them and ``not workspace_must_match``)."""
        if not out.md5.endswith(".dir"):
            return self._file(out.path, out.md5, PurePosixPath(out.path).name,
                              workspace_must_match)
        manifest = self.cached(out.md5)
        if not manifest.is_file():
            if workspace_must_match:
                raise NotFoundError(f"{manifest}: the manifest of DVC folder {out.path!r} "
                                    "is not in the cache (run 'dvc pull' or 'dvc commit')")
            return None
        if file_digest(manifest, "md5") != out.md5.removesuffix(".dir"):
            raise IntegrityError(f"{manifest} (manifest of {out.path}): its md5 is not the "
                                 f"{out.md5} DVC recorded: the cache was changed or damaged; "
                                 "nothing of it was imported")
        result: list[ForeignFile] = []
        for entry in json.loads(manifest.read_bytes()):
            found = self._file(f"{out.path}/{entry['relpath']}", entry["md5"], entry["relpath"],
                               workspace_must_match)
            if found is None:
                return None
            result += found
        return result

    def _file(self, path: str, md5: str, inside: str, must: bool) -> list[ForeignFile] | None:
        source = self.cached(md5)
        if not source.is_file():
            source = self.root / path
            if not must and (not source.is_file() or file_digest(source, "md5") != md5):
                return None
        return [ForeignFile(inside, source, "md5", md5)]


def _cache_dir(root: Path) -> Path:
    """The cache folder: ``.dvc/cache`` unless ``cache.dir`` of ``.dvc/config`` (or of
    ``config.local``, which wins) moves it; a relative one is from ``.dvc/``."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read([root / ".dvc" / "config", root / ".dvc" / "config.local"],
                    encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{root / '.dvc' / 'config'}: not DVC's config "
                                f"({' '.join(str(exc).split())[:120]})") from None
    moved = parser.get("cache", "dir", fallback=None)
    return root / ".dvc" / (moved.strip().strip("'\"") if moved else "cache")


def import_dvc(project: Project, path: str | os.PathLike[str], *,
               names: Mapping[str, str] | None = None, type: str = "dataset",
               git_history: bool = False,
               progress: Progress | None = None) -> ForeignReport:
    """Import the DVC repository at ``path`` into ``project`` (see the module's
    docstring); ``names`` maps an output's path to the artifact name it gets, ``type``
    is every version's type; ``git_history`` also imports the older versions of each
    ``.dvc`` file that git's log holds (oldest first), when the cache still has them."""
    root = Path(path)
    if not (root / ".dvc").is_dir():
        raise NotFoundError(f"{root}: not a DVC repository (no .dvc folder; run "
                            "'dvc init' there or give its root)")
    repo = _Repo(root, names or {}, type)
    report = ForeignReport("dvc", str(root))
    outputs = list(_dvc_files(root))
    if git_history:
        outputs = [*_older(repo, outputs, report), *outputs]
    stages = _ordered(list(_lock_stages(root)))
    # Every tracked file is checked before anything is written: a damaged cache imports
    # nothing (and each file is checked again as it is copied to be logged).
    for out in [*outputs, *(o for s in stages for o in s.outs)]:
        for file in repo.files(out, workspace_must_match=out.commit is None) or []:
            check(file, "DVC")
    for out in outputs:
        files = repo.files(out, workspace_must_match=out.commit is None) or []
        _version(project, repo, out, files, None, report, progress)
    done = imported_runs(project, TOOL)
    for stage in stages:
        _stage_run(project, repo, stage, done, report, progress)
    return report


def _version(project: Project, repo: _Repo, out: _Output, files: list[ForeignFile],
             run: Run | None, report: ForeignReport,
             progress: Progress | None) -> ArtifactVersion:
    name = repo.name_of(out.path)
    ident = f"{out.path}@{out.md5}"
    found = imported_version(project, name, TOOL, ident)
    if found is not None:
        if run is not None:
            run.record_output(found)
        report.versions.append({"ref": found.ref, "source": ident, "created": False})
        return found
    source: dict[str, Any] = {"tool": TOOL, "id": ident, "path": out.path, "md5": out.md5,
                              "files": {f.path: f.digest for f in files}}
    if out.commit is not None:
        source |= {"commit": out.commit, "committed_at": out.committed_at}
    meta = {SOURCE_KEY: source}
    with staged(files, Artifact(name, repo.type, None, meta), tool="DVC",
                progress=progress) as artifact:
        version = log_staged(project, artifact, run, progress)
    report.versions.append({"ref": version.ref, "source": ident, "created": version.created})
    return version


def _stage_run(project: Project, repo: _Repo, stage: _Stage, done: Mapping[str, Any],
               report: ForeignReport, progress: Progress | None) -> None:
    if stage.ident in done:
        report.runs.append({"run_id": done[stage.ident].run_id, "source": stage.ident,
                            "created": False})
        return
    outs = [(o, repo.files(o, workspace_must_match=True) or []) for o in stage.outs]
    inputs = []
    for dep in stage.deps:
        files = repo.files(dep, workspace_must_match=False)
        if files is None:
            report.notes.append(f"stage {stage.name}: dep {dep.path} ({dep.md5}) is in "
                                "neither the cache nor the workspace: kept in the run's "
                                "config only")
            continue
        inputs.append(_version(project, repo, dep, files, None, report, progress))
    config = {
        "cmd": stage.cmd, "params": dict(stage.params),
        SOURCE_KEY: {"tool": TOOL, "id": stage.ident, "lock": stage.lock, "stage": stage.name,
                     "deps": {d.path: d.md5 for d in stage.deps},
                     "outs": {o.path: o.md5 for o in stage.outs}},
    }  # fmt: skip
    run = Run(project, name=stage.name, job_type=JOB_TYPE, config=config, capture_code=False)
    try:
        for version in inputs:
            run.record_use(version)
        made = [_version(project, repo, o, files, run, report, progress).ref
                for o, files in outs]
        for out, files in outs:
            if out.path in stage.metrics:
                run.summary.update(_summary(files, out.path))
    except BaseException as exc:
        run.finish(error=f"{FAILED}{exc}")
        raise
    run.finish()
    report.runs.append({"run_id": run.id, "source": stage.ident, "created": True,
                        "inputs": [v.ref for v in inputs], "outputs": made})


def _dvc_files(root: Path) -> Iterator[_Output]:
    for file in sorted(_walk(root, "*.dvc")):
        doc = read_yaml(file)
        folder = file.parent.relative_to(root)
        for out in doc.get("outs") or []:
            yield _output(folder, out, file)


def _older(repo: _Repo, current: list[_Output], report: ForeignReport) -> list[_Output]:
    """The outputs of every .dvc file's earlier commits, oldest first, whose files the
    cache still holds (the others are named in the report)."""
    now = {(o.path, o.md5) for o in current}
    found: list[_Output] = []
    seen: set[tuple[str, str]] = set()
    for file in sorted(_walk(repo.root, "*.dvc")):
        rel = file.relative_to(repo.root).as_posix()
        for commit, at, doc in git_versions(repo.root, rel, report):
            folder = file.parent.relative_to(repo.root)
            for entry in doc.get("outs") or []:
                out = _output(folder, entry, file)
                key = (out.path, out.md5)
                if key in now or key in seen:
                    continue
                seen.add(key)
                if repo.files(out, workspace_must_match=False) is None:
                    report.notes.append(f"{out.path} at git commit {commit[:12]} ({out.md5}) "
                                        "is no longer in the cache: not imported")
                    continue
                found.append(_Output(out.path, out.md5, commit, at))
    return found


def _lock_stages(root: Path) -> Iterator[_Stage]:
    for file in sorted(_walk(root, "dvc.lock")):
        doc = read_yaml(file)
        folder = file.parent.relative_to(root)
        lock = (folder / "dvc.lock").as_posix()
        declared = _metrics(file.parent / "dvc.yaml", folder)
        for name, entry in (doc.get("stages") or {}).items():
            yield _Stage(lock, str(name), entry.get("cmd"), entry.get("params") or {},
                         tuple(_output(folder, d, file) for d in entry.get("deps") or []),
                         tuple(_output(folder, o, file) for o in entry.get("outs") or []),
                         frozenset(declared.get(str(name), ())))


def _metrics(dvc_yaml: Path, folder: Path) -> dict[str, list[str]]:
    """Stage name -> the paths (from the root) of its ``metrics`` in ``dvc.yaml``."""
    if not dvc_yaml.is_file():
        return {}
    found: dict[str, list[str]] = {}
    for name, stage in (read_yaml(dvc_yaml).get("stages") or {}).items():
        for item in (stage or {}).get("metrics") or [] if isinstance(stage, dict) else []:
            for path in [item] if isinstance(item, str) else list(item or {}):
                found.setdefault(str(name), []).append(
                    Path(os.path.normpath(folder / str(path))).as_posix())
    return found


def _summary(files: list[ForeignFile], path: str) -> dict[str, Any]:
    """The numbers of a metrics file (JSON or YAML), nested keys joined with '.'."""
    from artifactstore.transfer.foreign.yamlfiles import parse_yaml

    values: dict[str, Any] = {}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[prefix] = value

    for file in files:  # YAML reads JSON too
        flatten("", parse_yaml(file.source.read_bytes(), f"{path} ({file.source})"))
    return values


def _walk(root: Path, pattern: str) -> Iterator[Path]:
    for file in root.rglob(pattern):
        parts = file.relative_to(root).parts
        if not any(p in (".dvc", ".git") for p in parts[:-1]) and file.is_file():
            yield file


def _output(folder: Path, entry: Mapping[str, Any], file: Path) -> _Output:
    md5 = entry.get("md5")
    if entry.get("hash") != "md5" or not isinstance(md5, str) or not _MD5.fullmatch(md5):
        raise InvalidInputError(
            f"{file}: output {entry.get('path')!r} has no DVC 3 MD5 ('hash: md5'); a DVC 2 "
            "repository needs 'dvc cache migrate' and 'dvc commit' first"
        )
    path = os.path.normpath(folder / str(entry["path"]))
    if path.startswith(".."):
        raise InvalidInputError(f"{file}: output {entry['path']!r} is outside the repository")
    return _Output(PurePosixPath(Path(path)).as_posix(), md5)


def _ordered(stages: list[_Stage]) -> list[_Stage]:
    """Stages so that one whose dep another makes comes after it."""
    maker = {o.path: s for s in stages for o in s.outs}
    result: list[_Stage] = []
    seen: set[int] = set()

    def visit(stage: _Stage) -> None:
        if id(stage) in seen:
            return
        seen.add(id(stage))
        for dep in stage.deps:
            if dep.path in maker:
                visit(maker[dep.path])
        result.append(stage)

    for stage in stages:
        visit(stage)
    return result
