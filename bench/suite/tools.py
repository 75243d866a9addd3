"""The tools under comparison, behind one small protocol, each step in subprocesses.

Every tool command runs as a child of a small launcher process (``launch.py``) that
waits for it with ``os.wait4``, so a step's peak RSS is the largest ``ru_maxrss`` of its
commands (which covers the command's own waited-for children too), never this Python
process's (which a child started directly from here would inherit as its floor; the
launcher's floor is about 8 MiB). A step's wall time is the sum of its timed commands,
each from its spawn to its exit; set-up commands (``timed=False``) are not counted.

Each tool gets its own ``HOME`` and XDG folders under its repo folder, so caches and
config never leak between tools or repetitions; they are kept between the steps of one
repetition, as on a user's machine. ``stored_bytes`` counts only the repository (or,
for DVC, its cache): client-side caches are not included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

LAUNCHER = Path(__file__).resolve().parent / "launch.py"


class ToolError(RuntimeError):
    """A tool command failed; the message carries its exit code and stderr tail."""


@dataclass(frozen=True)
class Step:
    """One measured step: wall seconds of its timed commands and their peak RSS."""

    seconds: float
    max_rss: int  # bytes


class Tool(Protocol):
    """One versioning tool. Methods raise :class:`ToolError` when a command fails."""

    name: str
    last: Step  # the most recent init/add/restore

    def available(self) -> bool:
        """Whether the tool is installed here."""
        ...

    def version(self) -> str:
        """The tool's version string."""
        ...

    def init(self, repo_dir: Path) -> None:
        """Create a fresh repository under ``repo_dir`` (which must not exist)."""
        ...

    def add(self, data_dir: Path, version_label: str) -> None:
        """Record the folder ``data_dir`` as it is now, as ``version_label``."""
        ...

    def restore(self, version_label: str, out_dir: Path) -> None:
        """Write the files of ``version_label`` into the empty folder ``out_dir``."""
        ...

    def stored_bytes(self) -> int:
        """Bytes of the repository now (sum of file sizes)."""
        ...

    def cleanup(self) -> None:
        """Remove anything the tool left outside its repo folder."""
        ...


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


class SubprocessTool:
    """Shared plumbing: a private environment and measured commands."""

    name = ""
    executable = ""

    def __init__(self) -> None:
        self.last = Step(0.0, 0)
        self.repo_dir = Path()
        self._seconds, self._rss = 0.0, 0

    def _exe(self) -> str | None:
        beside = Path(sys.executable).parent / self.executable
        return shutil.which(self.executable) or (str(beside) if beside.exists() else None)

    def available(self) -> bool:
        return self._exe() is not None

    def _env(self) -> dict[str, str]:
        home = self.repo_dir / "home"
        return {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
                "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_DATA_HOME": str(home / ".local/share"), "LC_ALL": "C.UTF-8"}

    def _begin(self) -> None:
        self._seconds, self._rss = 0.0, 0

    def _end(self) -> None:
        self.last = Step(self._seconds, self._rss)

    def _run(self, args: list[str], cwd: Path | None = None, *, timed: bool = True) -> str:
        """Run the tool with ``args``; return its stdout. Measured unless ``timed=False``."""
        exe = self._exe()
        if exe is None:
            raise ToolError(f"{self.name} is not installed")
        if self.repo_dir == Path():
            raise ToolError(f"{self.name}: init() first")  # logs live in the repo folder
        logs = self.repo_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out_path, err_path, report = logs / "stdout", logs / "stderr", logs / "measured"
        report.unlink(missing_ok=True)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            # through the launcher, so the RSS is the command's, not this process's peak
            returncode = subprocess.call(
                [sys.executable, "-I", "-S", str(LAUNCHER), str(report), exe, *args], cwd=cwd,
                env=self._env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        if returncode != 0 or not report.exists():
            tail = err_path.read_text(errors="replace")[-2000:]
            raise ToolError(f"{self.name} {' '.join(args[:2])} exited {returncode}: {tail}")
        max_rss, seconds = report.read_text().split()
        if timed:
            self._seconds += float(seconds)
            self._rss = max(self._rss, int(max_rss))
        return out_path.read_text(errors="replace")

    def _query(self, args: list[str]) -> str:
        """Stdout of an unmeasured command that needs no repo (a version query)."""
        exe = self._exe()
        if exe is None:
            raise ToolError(f"{self.name} is not installed")
        proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise ToolError(f"{self.name} {' '.join(args)} exited {proc.returncode}: "
                            f"{proc.stderr[-2000:]}")
        return proc.stdout.strip()

    def version(self) -> str:
        return self._query(["--version"]).splitlines()[0]

    def stored_bytes(self) -> int:
        return tree_bytes(self.repo_dir / "repo")

    def cleanup(self) -> None:
        pass


class ArtifactStore(SubprocessTool):
    """artifactstore through its CLI: ``log NAME DIR`` and ``get NAME:vK --dir OUT``.

    The store is created with ``artifactstore init`` defaults (a private project, so
    contents are encrypted). artifactstore numbers versions from v0, so label ``v1``
    is the ref returned by the first ``log``.
    """

    name = "artifactstore"
    artifact = "bench"

    def __init__(self) -> None:
        super().__init__()
        self.refs: dict[str, str] = {}  # version label -> artifactstore ref

    def _exe(self) -> str | None:
        return sys.executable

    def _run(self, args: list[str], cwd: Path | None = None, *, timed: bool = True) -> str:
        return super()._run(["-m", "artifactstore", *args], cwd, timed=timed)

    def cache_root(self) -> Path:
        """The per-user cache folder the tool's commands use now (as the CLI finds it)."""
        env = self._env()
        given = env.get("ARTIFACTSTORE_CACHE_DIR")
        return Path(given) if given else Path(env["XDG_CACHE_HOME"]) / "artifactstore"

    def metadata_bytes(self) -> int:
        """Bytes of local metadata (refs, index, catalog, stat cache, known) in the cache
        folder now: what ``artifactstore cache clean --metadata`` covers, plus ``known``."""
        from artifactstore.local.metadata import metadata_usage

        return metadata_usage(self.cache_root()).total

    def version(self) -> str:
        return self._query(["-m", "artifactstore", "--version"])

    #: ``init`` options beyond the store's path (the public variant adds ``--public``)
    init_options: tuple[str, ...] = ()

    def init(self, repo_dir: Path) -> None:
        self.repo_dir = repo_dir
        self.refs.clear()
        repo_dir.mkdir(parents=True)
        # ``pip install`` byte-compiles a package; an editable install under
        # PYTHONDONTWRITEBYTECODE=1 (this machine's) never does, and would pay ~0.1 s
        # of compiling per command that no installed tool pays (DVC is pip-installed).
        import artifactstore
        self._query(["-m", "compileall", "-q", str(Path(artifactstore.__file__).parent)])
        self._begin()
        self._run(["init", str(repo_dir / "repo"), *self.init_options, "-q"])
        self._end()

    def add(self, data_dir: Path, version_label: str) -> None:
        self._begin()
        out = self._run(["--json", "log", self.artifact, str(data_dir), "--store",
                         str(self.repo_dir / "repo"), "-q"])
        self._end()
        self.refs[version_label] = json.loads(out)["ref"]

    def restore(self, version_label: str, out_dir: Path) -> None:
        self._begin()
        self._run(["get", self.refs[version_label], "--dir", str(out_dir), "--store",
                   str(self.repo_dir / "repo"), "-q"])
        self._end()


class ArtifactStorePublic(ArtifactStore):
    """artifactstore with a store made by ``init --public``: contents compressed, not
    encrypted, so blobs are kept as zstd made them (the path where a memory bug of
    public stores hid while the suite measured private ones only: docs/benchmarks.md,
    "Issue 20 after session 15"). Compared with the other tools, not with
    ``artifactstore`` (:func:`~bench.suite.runner.ratios`)."""

    name = "artifactstore-public"
    init_options = ("--public",)


class Restic(SubprocessTool):
    """restic: ``backup .`` from inside the folder (so paths are relative), ``restore``."""

    name = "restic"
    executable = "restic"

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: dict[str, str] = {}  # version label -> snapshot id

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY":
                str(self.repo_dir / "repo")}

    def version(self) -> str:
        return self._query(["version"])

    def init(self, repo_dir: Path) -> None:
        self.repo_dir = repo_dir
        self.snapshots.clear()
        repo_dir.mkdir(parents=True)
        self._begin()
        self._run(["init", "-q"])
        self._end()

    def add(self, data_dir: Path, version_label: str) -> None:
        self._begin()
        out = self._run(["backup", "-q", "--json", "--tag", version_label, "."], data_dir)
        self._end()
        summary = json.loads(out.strip().splitlines()[-1])
        self.snapshots[version_label] = summary["snapshot_id"]

    def restore(self, version_label: str, out_dir: Path) -> None:
        self._begin()
        self._run(["restore", "-q", self.snapshots[version_label], "--target", str(out_dir)])
        self._end()


class Borg(SubprocessTool):
    """borg 1.x: ``init --encryption=none``, ``create REPO::vN .``, ``extract``."""

    name = "borg"
    executable = "borg"

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "BORG_BASE_DIR": str(self.repo_dir / "home"),
                "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
                "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}

    def init(self, repo_dir: Path) -> None:
        self.repo_dir = repo_dir
        repo_dir.mkdir(parents=True)
        self._begin()
        self._run(["init", "--encryption=none", str(repo_dir / "repo")])
        self._end()

    def add(self, data_dir: Path, version_label: str) -> None:
        self._begin()
        self._run(["create", f"{self.repo_dir / 'repo'}::{version_label}", "."], data_dir)
        self._end()

    def restore(self, version_label: str, out_dir: Path) -> None:
        self._begin()
        self._run(["extract", f"{self.repo_dir / 'repo'}::{version_label}"], out_dir)
        self._end()


class Dvc(SubprocessTool):
    """DVC without git: ``dvc add vN`` in a workspace at the workload folder.

    ``dvc add`` only takes paths inside the workspace, so the workspace is the folder
    holding the version folders (``.dvc/``, ``.dvcignore`` and ``vN.dvc`` are written
    there and removed by :meth:`cleanup`); the cache lives at ``repo_dir/repo`` with
    ``cache.type copy``, so DVC never links or touches the generated files. A restore
    is a fresh workspace (set up untimed) holding ``vN.dvc`` and the same cache dir,
    then ``dvc checkout`` (timed); the checked-out folder is renamed to ``out_dir``.
    """

    name = "dvc"
    executable = "dvc"

    def __init__(self) -> None:
        super().__init__()
        self.workspace = Path()  # where .dvc/ is now; Path() when nowhere
        self.names: dict[str, str] = {}  # version label -> folder name in the workspace

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "DVC_NO_ANALYTICS": "1",
                "DVC_SITE_CACHE_DIR": str(self.repo_dir / "home" / "site")}

    def init(self, repo_dir: Path) -> None:
        self.cleanup()
        self.repo_dir = repo_dir
        self.names.clear()
        repo_dir.mkdir(parents=True)
        self.last = Step(0.0, 0)

    def _setup_workspace(self, ws: Path) -> None:
        shutil.rmtree(ws / ".dvc", ignore_errors=True)
        self._run(["init", "--no-scm", "-q", "-f"], ws, timed=False)
        self._run(["config", "cache.dir", str(self.repo_dir / "repo")], ws, timed=False)
        self._run(["config", "cache.type", "copy"], ws, timed=False)

    def add(self, data_dir: Path, version_label: str) -> None:
        ws = data_dir.parent
        if self.workspace != ws:
            self.cleanup()
            self.workspace = ws
            self._setup_workspace(ws)
        self._begin()
        self._run(["add", "-q", data_dir.name], ws)
        self._upload(ws, data_dir.name)
        self._end()
        shutil.copyfile(ws / f"{data_dir.name}.dvc", self.repo_dir / f"{version_label}.dvc")
        self.names[version_label] = data_dir.name

    def _upload(self, ws: Path, name: str) -> None:
        """Part of a timed add after ``dvc add NAME``: nothing locally (a push to a remote)."""

    def restore(self, version_label: str, out_dir: Path) -> None:
        ws = self.repo_dir / f"restore-{version_label}"
        shutil.rmtree(ws, ignore_errors=True)
        ws.mkdir()
        self._setup_workspace(ws)
        name = self.names[version_label]
        shutil.copyfile(self.repo_dir / f"{version_label}.dvc", ws / f"{name}.dvc")
        self._begin()
        self._run(["checkout", "-q", f"{name}.dvc"], ws)
        self._end()
        out_dir.rmdir()
        (ws / name).rename(out_dir)
        shutil.rmtree(ws)

    def cleanup(self) -> None:
        ws = self.workspace
        if ws == Path():
            return
        shutil.rmtree(ws / ".dvc", ignore_errors=True)
        for leftover in [ws / ".dvcignore", *ws.glob("*.dvc")]:
            leftover.unlink(missing_ok=True)
        self.workspace = Path()


TOOLS: dict[str, Callable[[], Tool]] = {
    t.name: t for t in (ArtifactStore, ArtifactStorePublic, Restic, Borg, Dvc)}
