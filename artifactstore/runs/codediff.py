"""What changed between the code of two runs (``artifactstore runs diff-code``).

Vocabulary:

- **code state** of a run: what it recorded when it started (commit, branch, remote,
  dirty flag; :mod:`artifactstore.runs.codestate`), always there unless capture was
  off or the run was outside git.
- **saved code**: the ``code`` artifact a run logs with ``save_code=True`` (design
  §12.5): ``diff.patch`` against its commit and the entry script under ``entry/``.
- **commit range**: with a git repository at hand that holds both commits (the
  current directory's, or ``repo``), the commits from A's to B's
  (``git log A..B``) and ``git diff A B``; without one, only whether the commits
  are equal.
- **patch diff** and **entry diff**: unified diffs of the two runs' saved patches
  and entry scripts; None unless both runs saved their code (a run that did not is
  named in ``notes``), ``""`` when they are equal.

Reading the saved code goes through the runs' own output versions: nothing is
written, and the user's repository is only read (``codestate`` rules: no locks).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from artifactstore.core.errors import ArtifactStoreError
from artifactstore.local.catalog import RunInfo
from artifactstore.repository.project import Project
from artifactstore.repository.version import ArtifactVersion, find_version
from artifactstore.runs.codestate import DIFF_FLAGS, git_output
from artifactstore.runs.queries import get_run

__all__ = ["CodeDiff", "SavedCode", "diff_code", "saved_code"]

PATCH: Final = "diff.patch"
ENTRY: Final = "entry/"
MAX_TEXT: Final = 4 << 20  # bytes read from a saved file for the diff


@dataclass(frozen=True, slots=True)
class SavedCode:
    """A run's saved code: the version holding it, its patch and entry script."""

    ref: str
    patch: str
    entry_name: str | None
    entry: str | None


@dataclass(frozen=True, slots=True)
class CodeDiff:
    """The result of :func:`diff_code`; render with ``to_text``, ``as_dict``."""

    run_a: str
    run_b: str
    code_a: dict[str, Any] | None = field(hash=False)
    code_b: dict[str, Any] | None = field(hash=False)
    saved_a: str | None  # the code version ref, if the run saved its code
    saved_b: str | None
    commits: tuple[str, ...] | None  # "sha subject", oldest first; None: no repository
    git_diff: str | None
    patch_diff: str | None
    entry_diff: str | None
    notes: tuple[str, ...]

    @property
    def same_commit(self) -> bool:
        return _commit(self.code_a) is not None and _commit(self.code_a) == _commit(self.code_b)

    @property
    def changed(self) -> bool:
        """Whether any difference was found (commits, patches or entry scripts)."""
        return (not self.same_commit or bool(self.git_diff) or bool(self.patch_diff)
                or bool(self.entry_diff) or _dirty(self.code_a) != _dirty(self.code_b))

    def as_dict(self) -> dict[str, Any]:
        return {"run_a": self.run_a, "run_b": self.run_b, "code_a": self.code_a,
                "code_b": self.code_b, "same_commit": self.same_commit,
                "changed": self.changed, "saved_a": self.saved_a, "saved_b": self.saved_b,
                "commits": None if self.commits is None else list(self.commits),
                "git_diff": self.git_diff, "patch_diff": self.patch_diff,
                "entry_diff": self.entry_diff, "notes": list(self.notes)}

    def to_text(self) -> str:
        lines = [f"code of run {self.run_a} -> run {self.run_b}"]
        for name, code in (("A", self.code_a), ("B", self.code_b)):
            if code is None or code.get("commit") is None:
                lines.append(f"  {name}: no git commit recorded")
            else:
                dirty = " (dirty)" if code.get("dirty") else ""
                lines.append(f"  {name}: {code['commit']} on {code.get('branch') or '-'}{dirty}")
        if self.same_commit:
            lines.append("same commit")
        if self.commits is not None and not self.same_commit:
            lines.append(f"{len(self.commits)} commit(s) from A to B:")
            lines += [f"  {c}" for c in self.commits]
        lines += [f"note: {n}" for n in self.notes]
        for title, text in (("git diff A B", self.git_diff),
                            ("saved patches (uncommitted changes), A -> B", self.patch_diff),
                            ("entry scripts, A -> B", self.entry_diff)):
            if text:
                lines += ["", f"== {title}", text.rstrip("\n")]
        if not self.changed:
            lines.append("no change")
        return "\n".join(lines) + "\n"


def _commit(code: Mapping[str, Any] | None) -> str | None:
    return None if code is None else code.get("commit")


def _dirty(code: Mapping[str, Any] | None) -> bool | None:
    return None if code is None else code.get("dirty")


def saved_code(project: Project, run: RunInfo) -> SavedCode | None:
    """The code a run saved (the last of its outputs of type ``code``), or None."""
    for ref in reversed(run.outputs):
        try:
            version = find_version(project, ref)
        except ArtifactStoreError:
            continue  # deleted or purged since: nothing to read
        if version.type == "code":
            return _read_saved(version)
    return None


def _read_saved(version: ArtifactVersion) -> SavedCode:
    paths = sorted(entry.path for entry in version.files())
    patch = _text(version, PATCH) if PATCH in paths else ""
    entries = [p for p in paths if p.startswith(ENTRY)]
    entry = entries[0] if entries else None
    return SavedCode(version.ref, patch, None if entry is None else entry[len(ENTRY):],
                     None if entry is None else _text(version, entry))


def _text(version: ArtifactVersion, path: str) -> str:
    with version.open(path) as f:
        data = f.read(MAX_TEXT + 1)
    note = "\n[... cut at 4 MiB]\n" if len(data) > MAX_TEXT else ""
    return data[:MAX_TEXT].decode("utf-8", errors="replace") + note


def _unified(a: str, b: str, name_a: str, name_b: str) -> str:
    return "".join(difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                        fromfile=name_a, tofile=name_b))


def _has_commit(repo: str | os.PathLike[str] | None, sha: str) -> bool:
    return git_output(repo, "cat-file", "-e", f"{sha}^{{commit}}") is not None


def diff_code(project: Project, run_a: str, run_b: str, *,
              repo: str | os.PathLike[str] | None = None,
              sync: bool | None = None) -> CodeDiff:
    """What changed from the code of run ``run_a`` to that of ``run_b`` (module docstring);
    ``repo`` is a folder inside the git repository to ask (default: the current one)."""
    a, b = get_run(project, run_a, sync=sync), get_run(project, run_b, sync=False)
    notes: list[str] = []
    commit_a, commit_b = _commit(a.code), _commit(b.code)
    commits: tuple[str, ...] | None = None
    git_diff: str | None = None
    if commit_a is None or commit_b is None:
        notes.append("a run recorded no git commit: only saved code can be compared")
    elif commit_a == commit_b:
        commits, git_diff = (), ""
    elif _has_commit(repo, commit_a) and _has_commit(repo, commit_b):
        log = git_output(repo, "log", "--format=%H %s", "--reverse", f"{commit_a}..{commit_b}")
        diff = git_output(repo, "diff", *DIFF_FLAGS, commit_a, commit_b, "--")
        commits = tuple(os.fsdecode(log or b"").splitlines())
        git_diff = None if diff is None else diff.decode("utf-8", errors="replace")
        if not commits:
            notes.append("B's commit is not a descendant of A's: git diff shows the whole change")
    else:
        where = "the current directory" if repo is None else str(repo)
        notes.append(f"the git repository in {where} does not hold both commits: run this "
                     "inside a clone that has them (or pass --repo) to see git diff")
    saved: dict[str, SavedCode | None] = {}
    for name, run in (("A", a), ("B", b)):
        saved[name] = saved_code(project, run)
        if saved[name] is None:
            notes.append(f"run {name} ({run.run_id}) saved no code: start runs with "
                         "save_code=True to keep uncommitted changes and the entry script")
    sa, sb = saved["A"], saved["B"]
    patch_diff = entry_diff = None
    if sa is not None and sb is not None:
        patch_diff = _unified(sa.patch, sb.patch, f"A/{PATCH}", f"B/{PATCH}")
        if sa.entry is not None and sb.entry is not None:
            entry_diff = _unified(sa.entry, sb.entry, f"A/{sa.entry_name}", f"B/{sb.entry_name}")
    return CodeDiff(a.run_id, b.run_id, _plain(a.code), _plain(b.code),
                    None if sa is None else sa.ref, None if sb is None else sb.ref, commits,
                    git_diff, patch_diff, entry_diff, tuple(notes))


def _plain(code: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if code is None else dict(code)
