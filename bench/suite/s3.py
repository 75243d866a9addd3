"""The S3 case: each tool against a counting moto server on 127.0.0.1 (issue 7).

One repetition of a tool on a workload, with moto emptied first and a fresh bucket:

- **init**: create the repository on S3 (``artifactstore init``, ``restic init``;
  DVC's ``init`` and ``remote add`` are local and untimed);
- **push**: the first upload of v1 (artifactstore ``open`` + ``log_artifact``, which
  also creates the private project's keys; ``restic backup``; ``dvc add`` +
  ``dvc push``), with a warm page cache;
- **repush**: the same v1 again, unchanged, with the client caches the push left
  (the same machine);
- **restore**: v1 into an empty folder with an *empty client cache* (a second machine
  holding the same keys and config: artifactstore's and restic's
  ``$XDG_CACHE_HOME`` and DVC's cache are new), verified byte for byte.

Each step records wall time and peak RSS (as the local suite, in subprocesses) and
the requests the server received while it ran, by kind (see
:mod:`bench.suite.s3server`), with body bytes up and down. As in the local case, the
repo and restore folders of every repetition stay until the workload ends, then are
removed together and the suite settles (runner.py's docstring: ext4 and freed
inodes). borg has no S3 backend and is reported as not applicable. The server runs in
this process, so its CPU time competes with the tool's, alike for every tool.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bench.suite.runner import SETTLE_S, metadata_bytes, settle, verify, warm
from bench.suite.s3server import KINDS, CountingS3Server
from bench.suite.tools import ArtifactStore, Dvc, Restic, SubprocessTool, Tool
from bench.suite.workloads import Workload

MIB = 1 << 20
BUCKET = "bench-suite"
STEPS = ("init", "push", "repush", "restore")
NOT_APPLICABLE = {"borg": "no S3 backend"}
# The issue's targets (at scale 1): requests for the images workload, RSS everywhere.
TARGETS: dict[str, Any] = {
    "requests": {"images": {"push": 40, "repush": 5, "restore": 45}},
    "peak_rss": 200 * MIB,
}
# What the issue measured for the other tools (scale 1), quoted beside the targets.
ISSUE_QUOTES = {"restic images push requests": 40, "dvc images push requests": 20_011,
                "dvc model push peak RSS MiB": 888}
CLIENT = Path(__file__).resolve().parent / "artifactstore_s3.py"
# Inherited settings that would point a client elsewhere or through a proxy.
_DROPPED_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "ARTIFACTSTORE_URL",
                "ARTIFACTSTORE_CACHE_DIR", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                "https_proxy", "ALL_PROXY", "all_proxy")


@dataclass(frozen=True)
class Remote:
    """Where a tool's repository lives: ``bucket/prefix`` on the server."""

    endpoint_url: str
    bucket: str
    prefix: str
    key: str
    secret: str
    region: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret,
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


class _OnS3(SubprocessTool):
    """A private environment pointed at :attr:`remote`; an empty cache inside ``cold()``."""

    remote: Remote
    _cold_home: Path | None = None

    def _env(self) -> dict[str, str]:
        env = super()._env()
        for name in _DROPPED_ENV:
            env.pop(name, None)
        env.update(self.remote.env())
        if self._cold_home is not None:
            env["XDG_CACHE_HOME"] = str(self._cold_home)
        return env

    @contextlib.contextmanager
    def cold(self) -> Iterator[Path]:
        """Commands in the block see a new, empty cache folder (yielded)."""
        home = self.repo_dir / "cold-cache"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        self._cold_home = home
        try:
            yield home
        finally:
            self._cold_home = None


class S3Tool(Tool, Protocol):
    """A tool of the S3 case: its steps (:class:`Tool`) go to :attr:`remote`."""

    remote: Remote


class ArtifactStoreS3(_OnS3, ArtifactStore):
    """``artifactstore init`` (CLI), then push and restore through the Python API
    (``artifactstore_s3.py``); the default project is private (encrypted)."""

    cold_cache: Path | None = None

    def _url(self) -> str:
        return f"s3://{self.remote.bucket}/{self.remote.prefix}"

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "BENCH_S3_ENDPOINT": self.remote.endpoint_url,
                "AWS_ENDPOINT_URL_S3": self.remote.endpoint_url}  # for the CLI's init

    def _run(self, args: list[str], cwd: Path | None = None, *, timed: bool = True) -> str:
        return SubprocessTool._run(self, [str(CLIENT), *args], cwd, timed=timed)

    def init(self, repo_dir: Path) -> None:
        self.repo_dir = repo_dir
        self.refs.clear()
        repo_dir.mkdir(parents=True)
        self._begin()
        # the CLI, as the local suite: a store whose projects are private (encrypted)
        SubprocessTool._run(self, ["-m", "artifactstore", "init", self._url(), "-q"])
        self._end()

    def add(self, data_dir: Path, version_label: str) -> None:
        self._begin()
        out = self._run(["push", self._url(), self.artifact, str(data_dir)])
        self._end()
        self.refs[version_label] = json.loads(out)["ref"]

    def restore(self, version_label: str, out_dir: Path) -> None:
        with self.cold():
            self._begin()
            self._run(["restore", self._url(), self.refs[version_label], str(out_dir)])
            self._end()
            self.cold_cache = self.cache_root()

    def metadata_bytes(self) -> int:
        """As the local tool's; after a restore, that of the empty cache it began with."""
        from artifactstore.local.metadata import metadata_usage

        root, self.cold_cache = self.cold_cache or self.cache_root(), None
        return metadata_usage(root).total


class ResticS3(_OnS3, Restic):
    """restic's s3 backend: ``s3:http://127.0.0.1:PORT/bucket/prefix``."""

    def _env(self) -> dict[str, str]:
        r = self.remote
        return {**super()._env(),
                "RESTIC_REPOSITORY": f"s3:{r.endpoint_url}/{r.bucket}/{r.prefix}"}

    def restore(self, version_label: str, out_dir: Path) -> None:
        with self.cold():
            super().restore(version_label, out_dir)


class DvcS3(_OnS3, Dvc):
    """DVC with a default ``s3://bucket/prefix`` remote (needs the dvc-s3 plugin).

    A push is ``dvc add`` + ``dvc push`` (one step); a restore is ``dvc pull`` in a
    fresh workspace whose cache (and site cache) are new and empty.
    """

    _supports_s3: bool | None = None

    def available(self) -> bool:
        if not super().available():
            return False
        if self._supports_s3 is None:
            supports = self._query(["version"]).split("Supports:", 1)[-1]
            self._supports_s3 = "\ts3 (" in supports  # "s3 (s3fs = ...)" with dvc-s3
        return self._supports_s3

    def _env(self) -> dict[str, str]:
        env = super()._env()
        if self._cold_home is not None:
            env["DVC_SITE_CACHE_DIR"] = str(self._cold_home / "site")
        return env

    def _add_remote(self, ws: Path) -> None:
        r = self.remote
        self._run(["remote", "add", "-d", "-f", "bench", f"s3://{r.bucket}/{r.prefix}"], ws,
                  timed=False)
        self._run(["remote", "modify", "bench", "endpointurl", r.endpoint_url], ws, timed=False)

    def _setup_workspace(self, ws: Path) -> None:
        super()._setup_workspace(ws)
        self._add_remote(ws)

    def _upload(self, ws: Path, name: str) -> None:
        self._run(["push", "-q", f"{name}.dvc"], ws)

    def restore(self, version_label: str, out_dir: Path) -> None:
        ws = self.repo_dir / f"restore-{version_label}"
        shutil.rmtree(ws, ignore_errors=True)
        ws.mkdir()
        name = self.names[version_label]
        with self.cold() as cache:
            self._run(["init", "--no-scm", "-q", "-f"], ws, timed=False)
            self._run(["config", "cache.dir", str(cache / "dvc")], ws, timed=False)
            self._run(["config", "cache.type", "copy"], ws, timed=False)
            self._add_remote(ws)
            shutil.copyfile(self.repo_dir / f"{version_label}.dvc", ws / f"{name}.dvc")
            self._begin()
            self._run(["pull", "-q", f"{name}.dvc"], ws)
            self._end()
        out_dir.rmdir()
        (ws / name).rename(out_dir)
        shutil.rmtree(ws)


S3_TOOLS: dict[str, Callable[[], S3Tool]] = {
    t.name: t for t in (ArtifactStoreS3, ResticS3, DvcS3)}


def run_once(tool: S3Tool, workload: Workload, server: CountingS3Server,
             scratch: Path, rep: int = 0) -> dict[str, Any]:
    """init, push, repush and restore of v1; each step's time, RSS and requests. The
    repo and restore folders stay until the workload ends (:func:`run_workload`)."""
    server.reset_state(BUCKET)
    tool.remote = Remote(server.endpoint_url, BUCKET, tool.name, server.access_key,
                         server.secret_key, server.region)
    repo, out = scratch / f"{tool.name}-{rep}", scratch / f"{tool.name}-{rep}-restore"
    for p in (repo, out):
        shutil.rmtree(p, ignore_errors=True)
    label, folder = workload.labels[0], workload.versions[0]
    steps: dict[str, dict[str, Any]] = {}

    def measured(step: str, action: Callable[[], None]) -> dict[str, Any]:
        server.reset_counts()
        action()
        steps[step] = {"seconds": tool.last.seconds, "max_rss": tool.last.max_rss,
                       "metadata_bytes": metadata_bytes(tool), **server.counts()}
        return steps[step]

    try:
        measured("init", lambda: tool.init(repo))
        for step in ("push", "repush"):
            os.sync()
            warm(folder)
            measured(step, lambda: tool.add(folder, label))
            steps[step]["stored_bytes"], steps[step]["stored_objects"] = server.stored_bytes(
                BUCKET, tool.name)
        out.mkdir()
        os.sync()
        measured("restore", lambda: tool.restore(label, out))
        steps["restore"]["files_verified"] = verify(folder, out)
    finally:
        tool.cleanup()
    return steps


def summarize(reps: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Medians over repetitions per step; request counts of every repetition too."""
    med = statistics.median
    steps: dict[str, Any] = {}
    for step in STEPS:
        rs = [r[step] for r in reps]
        s: dict[str, Any] = {key: med(r[key] for r in rs) for key in
                             ("seconds", "max_rss", "requests", "bytes_in", "bytes_out")}
        kinds = list(KINDS) + sorted({k for r in rs for k in r["by_kind"]} - set(KINDS))
        s["by_kind"] = {k: med(r["by_kind"].get(k, 0) for r in rs) for k in kinds}
        shapes = {k for r in rs for k in r["by_shape"]}
        s["by_shape"] = dict(sorted(((k, med(r["by_shape"].get(k, 0) for r in rs))
                                     for k in shapes), key=lambda kv: (-kv[1], kv[0])))
        s["requests_each_rep"] = [r["requests"] for r in rs]
        for key in ("stored_bytes", "stored_objects", "files_verified"):
            if key in rs[0]:
                s[key] = med(r[key] for r in rs)
        known = [r["metadata_bytes"] for r in rs if r.get("metadata_bytes") is not None]
        s["metadata_bytes"] = med(known) if known else None
        steps[step] = s
    return {"steps": steps, "peak_rss": med(max(r[s]["max_rss"] for s in STEPS) for r in reps),
            "verified": True, "reps": len(reps)}


# Compared across tools (lower is better): requests of three steps and peak RSS.
METRICS = ("push_requests", "repush_requests", "restore_requests", "peak_rss")


def _metric(summary: dict[str, Any], metric: str) -> float:
    if metric == "peak_rss":
        return float(summary["peak_rss"])
    return float(summary["steps"][metric.removesuffix("_requests")]["requests"])


def ratios(by_tool: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each tool's value over the best (lowest) value among the other tools."""
    out: dict[str, dict[str, float | None]] = {}
    for name, summary in by_tool.items():
        others = [s for n, s in by_tool.items() if n != name]
        out[name] = {}
        for metric in METRICS:
            best = min((_metric(s, metric) for s in others), default=None)
            out[name][metric] = _metric(summary, metric) / best if best else None
    return out


def run_workload(tools: list[S3Tool], workload: Workload, server: CountingS3Server,
                 scratch: Path, reps: int, log: Any = print,
                 settle_s: float = SETTLE_S) -> dict[str, Any]:
    """Every tool, ``reps`` times in rotated order; nothing deleted until the end, then a
    settle, as in the local case (runner.py: a restore that follows the deletion of a
    20,000-file tree pays ext4's scan past the freed inodes, whichever tool it is)."""
    raw: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tools}
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(reps):
            shift = i % len(tools)
            for tool in tools[shift:] + tools[:shift]:
                log(f"  s3 {workload.name} rep {i + 1}/{reps}: {tool.name} ...")
                raw[tool.name].append(run_once(tool, workload, server, scratch, i))
    finally:
        for p in list(scratch.iterdir()):
            shutil.rmtree(p, ignore_errors=True)
        settle(settle_s, log)
    summaries = {name: summarize(r) for name, r in raw.items()}
    return {"version": workload.labels[0], "nbytes": workload.nbytes[0],
            "files": workload.files[0], "tools": summaries,
            "ratios_vs_best_other": ratios(summaries), "raw": raw}


def run(tool_names: list[str], workload_list: list[Workload], scratch: Path, reps: int,
        log: Any = print, settle_s: float = SETTLE_S) -> dict[str, Any]:
    """The S3 case for every named tool (those installed) on every workload."""
    from bench.suite.s3server import counting_moto_server  # imports moto

    tools = [S3_TOOLS[n]() for n in tool_names if n in S3_TOOLS]
    present = [t for t in tools if t.available()]
    doc: dict[str, Any] = {
        "server": "moto, served by a werkzeug thread of the benchmark process on 127.0.0.1; "
                  "requests counted by a WSGI middleware",
        "moto": _version_of("moto"),
        "tools": {t.name: t.version() for t in present},
        "missing": [t.name for t in tools if not t.available()],
        "not_applicable": {n: why for n, why in NOT_APPLICABLE.items() if n in tool_names},
        "restore_cache": "cold: an empty client cache, same keys and config",
        "targets": TARGETS, "issue_quotes": ISSUE_QUOTES, "workloads": {},
    }
    if not present:
        return doc
    with counting_moto_server() as server:
        log(f"moto S3 server at {server.endpoint_url}")
        for w in workload_list:
            doc["workloads"][w.name] = run_workload(present, w, server, scratch, reps, log,
                                                    settle_s)
    return doc


def _version_of(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
