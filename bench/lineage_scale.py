"""Lineage at scale: catalog sync and lineage queries on S3 (a moto server), in one run.

The issue: reading lineage must not list the whole store per query. The local
catalog (SQLite) is synced incrementally from the immutable records, and
``upstream``/``downstream`` must answer in under 1 s after the first sync on a
store with 2,000 versions and 1,000 runs; a second process must see a new run
after its next sync.

Steps:

* **build** (this process, the *writer*): a moto S3 server on 127.0.0.1 in a
  thread of this process (``artifactstore.testing.servers.moto_s3_server``,
  which counts HTTP requests), then a deterministic store through the public
  API only: ``store.log_artifact`` of raw dataset versions, and runs
  (``store.run``, ``run.use``, ``run.log_artifact``) of tiny artifacts made with
  ``Artifact.new_file``. Sequential: one writer, no threads of ours.
* **reader** (a fresh subprocess with an empty cache dir, driven over a pipe):
  open, first sync (from nothing), the first query (it builds the graph), then
  ``--queries`` ``upstream`` calls on deep versions and as many ``downstream``
  calls on used raw versions, all with ``sync=False``; then a sync with nothing
  new, and one query with the default ``sync=None`` on a catalog older than
  ``max_age`` (it syncs first). The writer logs one more run (an input edge
  and an output); the reader must not see it before its next
  ``store.catalog.sync()`` and must see it after (asserted).
* **later process**: another subprocess on the reader's cache dir (the catalog
  file persists): open, sync, first query.

The request count of each reader step is the server's count between sending
the command and the reply, while the writer is idle; so is the CPU time of this
process (then only the server's) next to the reader's own. Times are measured in
the reader around the call alone. The lineage shape (``make_plan``): ``versions /
10`` raw datasets, a quarter of the versions raw, the rest produced by runs of
four job types (prep, features, train, eval) with 1-3 inputs and 1-2 outputs;
train runs often warm-start from an earlier model, so chains run up to 10
generations deep at the defaults. "Deep" versions are the top decile by generation.

Everything lives in a temp dir that is removed at the end; no network but
loopback. At the defaults the whole run takes about 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import queue
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import artifactstore
from artifactstore import Artifact, Store

if TYPE_CHECKING:
    from artifactstore.testing.servers import MotoS3Server

try:
    from bench.machine import machine_facts
except ImportError:  # run as a script (python bench/lineage_scale.py): bench/ itself is on sys.path
    from machine import machine_facts  # type: ignore[import-not-found,no-redef]

SEED = 20261126
DEFAULT_VERSIONS = 2000
DEFAULT_RUNS = 1000
DEFAULT_QUERIES = 25
TARGET_QUERY_S = 1.0
BUCKET = "artifactstore-bench"
PROJECT = "lineage"
#: how long the writer waits for one reply of a reader process
REPLY_TIMEOUT_S = 900.0

# (job type, output type, output name stem), in pipeline order
STAGES: tuple[tuple[str, str, str], ...] = (
    ("prep", "dataset", "clean"),
    ("features", "dataset", "features"),
    ("train", "model", "model"),
    ("eval", "report", "eval"),
)
_STAGE_WEIGHTS = (0.25, 0.25, 0.3, 0.2)


# -- the lineage plan ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawStep:
    """A raw dataset version, logged outside any run (a root of the graph)."""

    artifact: str
    number: int

    @property
    def ref(self) -> str:
        return f"{self.artifact}:v{self.number}"


@dataclass(frozen=True, slots=True)
class RunStep:
    """One run: the versions it uses, then the versions it logs."""

    index: int
    job_type: str
    inputs: tuple[str, ...]
    outputs: tuple[tuple[str, str, int], ...]  # (artifact, type, number)

    @property
    def output_refs(self) -> tuple[str, ...]:
        return tuple(f"{a}:v{n}" for a, _, n in self.outputs)


@dataclass
class Plan:
    """What the build writes, in order, and the shape of the resulting graph."""

    steps: list[RawStep | RunStep]
    generation: dict[str, int] = field(default_factory=dict)  # ref -> 0 for raw, else 1 + max
    consumers: dict[str, int] = field(default_factory=dict)  # ref -> runs that used it
    raw_datasets: int = 0

    @property
    def runs(self) -> int:
        return sum(isinstance(s, RunStep) for s in self.steps)

    @property
    def versions(self) -> int:
        return len(self.generation)

    def summary(self) -> dict[str, Any]:
        gens = sorted(self.generation.values())
        raw = sum(isinstance(s, RawStep) for s in self.steps)
        runs = [s for s in self.steps if isinstance(s, RunStep)]
        return {
            "versions": self.versions,
            "raw_versions": raw,
            "raw_datasets": self.raw_datasets,
            "derived_versions": self.versions - raw,
            "runs": len(runs),
            "artifacts": len({ref.rpartition(":v")[0] for ref in self.generation}),
            "edges_used": sum(len(s.inputs) for s in runs),
            "edges_produced": sum(len(s.outputs) for s in runs),
            "generation_max": gens[-1],
            "generation_median": statistics.median(gens),
            "generation_p90": gens[int(0.9 * (len(gens) - 1))],
        }


def make_plan(versions: int, runs: int, seed: int = SEED) -> Plan:
    """A deterministic lineage of ``versions`` versions, ``runs`` of them made by runs.

    ``versions // 10`` raw datasets get a v0 up front; further raw versions come
    in evenly between the runs. Derived versions are 1.5 per run (half the runs
    log two), so a quarter of the default 2,000 versions are raw.
    """
    datasets = max(2, versions // 10)
    raw_total = max(datasets, versions - round(1.5 * runs))
    derived = versions - raw_total
    if runs < 1 or not runs <= derived <= 2 * runs:
        raise SystemExit(
            f"cannot lay out {versions} versions over {runs} runs: each run logs 1-2 versions "
            f"and at least {datasets} versions are raw; use about 2 versions per run"
        )
    rng = random.Random(seed)
    plan = Plan(steps=[], raw_datasets=datasets)
    counts: dict[str, int] = {}
    raw_refs: dict[str, list[str]] = {}  # dataset -> its version refs
    made: dict[str, list[str]] = {stem: [] for _, _, stem in STAGES}  # stem -> version refs
    pool = max(2, runs // 16)  # output artifact names per stage

    def new_version(artifact: str) -> int:
        number = counts.get(artifact, 0)
        counts[artifact] = number + 1
        return number

    def add_raw(name: str) -> None:
        step = RawStep(name, new_version(name))
        plan.steps.append(step)
        plan.generation[step.ref] = 0
        raw_refs.setdefault(name, []).append(step.ref)

    def pick_raw() -> str:
        refs = raw_refs[rng.choice(sorted(raw_refs))]
        return refs[-1] if rng.random() < 0.7 else rng.choice(refs)

    def pick(stem: str, recent: float = 0.5) -> str:
        refs = made[stem]
        if rng.random() < recent:
            return rng.choice(refs[-max(1, len(refs) // 10) :])
        return rng.choice(refs)

    def inputs_for(stage: int) -> list[str]:
        if stage == 0:  # prep: 1-2 raw versions
            return [pick_raw() for _ in range(rng.choice((1, 1, 2)))]
        if stage == 1:  # features: 1-2 cleaned sets, sometimes a raw one too
            chosen = [pick("clean") for _ in range(rng.choice((1, 2)))]
            return chosen + ([pick_raw()] if rng.random() < 0.3 else [])
        if stage == 2:  # train: features, often warm-started from an earlier model
            chosen = [pick("features") for _ in range(rng.choice((1, 1, 2)))]
            return chosen + ([pick("model")] if made["model"] and rng.random() < 0.5 else [])
        return [pick("model", recent=0.7), pick("features")]  # eval

    for d in range(datasets):
        add_raw(f"raw-{d:03d}")
    extra_raw = raw_total - datasets
    # before which run each extra raw version comes: spread evenly
    raw_before = [round((k + 1) * runs / (extra_raw + 1)) for k in range(extra_raw)]
    two_outputs = set(rng.sample(range(runs), derived - runs))
    next_raw = 0
    for index in range(runs):
        while next_raw < extra_raw and raw_before[next_raw] <= index:
            add_raw(f"raw-{rng.randrange(datasets):03d}")
            next_raw += 1
        ready = [i for i, (_, _, stem) in enumerate(STAGES) if i == 0 or made[STAGES[i - 1][2]]]
        stage = rng.choices(ready, weights=[_STAGE_WEIGHTS[i] for i in ready])[0]
        job_type, kind, stem = STAGES[stage]
        inputs = tuple(dict.fromkeys(inputs_for(stage)))[:3]
        names = rng.sample(range(pool), 2 if index in two_outputs else 1)
        outputs = tuple((f"{stem}-{n:03d}", kind, new_version(f"{stem}-{n:03d}")) for n in names)
        step = RunStep(index, job_type, inputs, outputs)
        plan.steps.append(step)
        generation = 1 + max(plan.generation[ref] for ref in inputs)
        for ref in inputs:
            plan.consumers[ref] = plan.consumers.get(ref, 0) + 1
        for ref in step.output_refs:
            plan.generation[ref] = generation
            made[stem].append(ref)
    while next_raw < extra_raw:
        add_raw(f"raw-{rng.randrange(datasets):03d}")
        next_raw += 1
    assert (plan.versions, plan.runs) == (versions, runs)
    return plan


def deep_refs(plan: Plan) -> list[str]:
    """Versions in the top decile by generation: the largest upstream graphs."""
    cut = plan.summary()["generation_p90"]
    return [ref for ref, gen in plan.generation.items() if gen >= max(cut, 1)]


def used_raw_refs(plan: Plan) -> list[str]:
    """Raw versions some run used: the largest downstream graphs."""
    return [ref for ref, gen in plan.generation.items() if gen == 0 and plan.consumers.get(ref)]


def sample(rng: random.Random, refs: list[str], n: int) -> list[str]:
    return rng.sample(refs, n) if len(refs) >= n else rng.choices(refs, k=n)


# -- build (the writer) ----------------------------------------------------------


def tiny_artifact(artifact: str, kind: str, number: int) -> Artifact:
    """A one-file artifact whose content differs from every other version's."""
    art = Artifact(artifact, kind)
    with art.new_file("data.txt") as f:
        f.write(f"{artifact} v{number} seed {SEED}\n")
    return art


def build(store: Store, plan: Plan, progress: Callable[[int], None]) -> dict[str, float]:
    """Write the plan through the public API; check each version got its planned number."""
    raw_s = run_s = 0.0
    for done, step in enumerate(plan.steps, 1):
        t0 = time.perf_counter()
        if isinstance(step, RawStep):
            got = [store.log_artifact(tiny_artifact(step.artifact, "dataset", step.number))]
            wanted: tuple[str, ...] = (step.ref,)
        else:
            with store.run(name=f"{step.job_type}-{step.index:05d}", job_type=step.job_type,
                           config={"index": step.index}, capture_code=False) as run:
                for ref in step.inputs:
                    run.use(ref)
                got = [run.log_artifact(tiny_artifact(a, kind, n)) for a, kind, n in step.outputs]
            wanted = step.output_refs
        if tuple(v.ref for v in got) != wanted or not all(v.created for v in got):
            raise SystemExit(f"step {done}: logged {[v.ref for v in got]}, planned {wanted}")
        elapsed = time.perf_counter() - t0
        if isinstance(step, RawStep):
            raw_s += elapsed
        else:
            run_s += elapsed
        progress(done)
    return {"raw_versions_s": raw_s, "runs_s": run_s}


# -- the reader process ------------------------------------------------------------


def _catalog_bytes(cache_dir: Path) -> int:
    return sum(p.stat().st_size for p in (cache_dir / "catalog").rglob("*") if p.is_file())


class ReaderSide:
    """What a reader process does on each command; every reply is a JSON-able dict."""

    def __init__(self) -> None:
        self._store: Store | None = None
        self.cache_dir = Path()

    @property
    def store(self) -> Store:
        assert self._store is not None, "open first"
        return self._store

    def open(self, url: str, options: dict[str, Any], cache_dir: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        self._store = artifactstore.open(url, PROJECT, cache_dir=cache_dir, **options)
        self.cache_dir = Path(cache_dir)
        return {"seconds": time.perf_counter() - t0}

    def sync(self) -> dict[str, Any]:
        stats = self.store.catalog.sync()
        return {"seconds": stats.seconds, "listed": stats.listed, "fetched": stats.fetched,
                "catalog_bytes": _catalog_bytes(self.cache_dir)}

    def query(self, direction: str, ref: str, default_sync: bool = False) -> dict[str, Any]:
        """One query with ``sync=False``, or with the default ``sync=None`` on a stale catalog."""
        call = self.store.upstream if direction == "upstream" else self.store.downstream
        catalog = self.store.catalog
        max_age = catalog.max_age
        if default_sync:
            catalog.max_age = 0.0  # as if the last sync were older than max_age
        try:
            t0 = time.perf_counter()
            graph = call(ref) if default_sync else call(ref, sync=False)
            seconds = time.perf_counter() - t0
        finally:
            catalog.max_age = max_age
        versions = sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "version")
        return {"seconds": seconds, "nodes": graph.number_of_nodes(),
                "edges": graph.number_of_edges(), "versions": versions,
                "runs": graph.number_of_nodes() - versions}

    def sees(self, run_id: str, input_ref: str, output_ref: str) -> dict[str, Any]:
        """Whether the catalog (no sync) knows the run and its edges."""
        t0 = time.perf_counter()
        runs = {r.run_id: r for r in self.store.runs(sync=False)}
        info = runs.get(run_id)
        down = self.store.downstream(input_ref, sync=False)
        return {
            "seconds": time.perf_counter() - t0,
            "runs_known": len(runs),
            "run": info is not None,
            "run_status": None if info is None else info.status,
            "run_inputs": [] if info is None else list(info.inputs),
            "run_outputs": [] if info is None else list(info.outputs),
            "downstream_has_run": f"run:{run_id}" in down,
            "downstream_has_output": output_ref in down,
        }

    def close(self) -> dict[str, Any]:
        if self._store is not None:
            self._store.close()
        return {}


def reader_main() -> int:
    """Serve commands (JSON lines on stdin) until ``close``; replies go to stdout."""
    isolate_environment()
    replies = sys.stdout
    sys.stdout = sys.stderr  # nothing else may write to the reply pipe
    side = ReaderSide()
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        cpu = cpu_seconds()
        try:
            reply = getattr(side, op)(**command)
        except Exception as exc:  # reported to the writer, which stops the benchmark
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        reply["reader_cpu_s"] = cpu_seconds() - cpu
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if op == "close":
            break
    return 0


class Reader:
    """A reader subprocess, and the server requests each of its commands caused."""

    def __init__(self, server: MotoS3Server) -> None:
        self._server = server
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--reader"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, args=(self._proc.stdout,),
                                             daemon=True)
        self._pump_thread.start()

    def _pump(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self._replies.put(line)
        self._replies.put(None)

    def ask(self, op: str, **args: Any) -> dict[str, Any]:
        """Run one command; the reply gets ``requests`` (the writer must be idle meanwhile)."""
        assert self._proc.stdin is not None
        self._server.reset_count()
        cpu = cpu_seconds()
        self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._proc.stdin.flush()
        try:
            line = self._replies.get(timeout=REPLY_TIMEOUT_S)
        except queue.Empty:
            raise SystemExit(f"reader: no reply to {op} in {REPLY_TIMEOUT_S:.0f} s") from None
        if line is None:
            raise SystemExit(f"reader exited during {op} (its stderr is above)")
        reply: dict[str, Any] = json.loads(line)
        reply["requests"] = self._server.request_count
        # this process only serves the reader meanwhile: its CPU is the moto server's
        reply["server_cpu_s"] = cpu_seconds() - cpu
        if "error" in reply:
            raise SystemExit(f"reader: {op} failed: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            if self._proc.poll() is None:
                self.ask("close")
        finally:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._pump_thread.join(timeout=10)  # it reads the pipe up to EOF
            if self._proc.stdout is not None:
                self._proc.stdout.close()


# -- measure -------------------------------------------------------------------------


def isolate_environment() -> None:
    """Only the local server's fake credentials: no AWS config, profile or metadata lookups."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "max": max(values), "min": min(values)}


def query_series(reader: Reader, direction: str, refs: list[str]) -> dict[str, Any]:
    replies = [reader.ask("query", direction=direction, ref=ref) for ref in refs]
    return {
        "refs": refs,
        "seconds": [r["seconds"] for r in replies],
        "requests": [r["requests"] for r in replies],
        "nodes": [r["nodes"] for r in replies],
        "versions": [r["versions"] for r in replies],
        "runs": [r["runs"] for r in replies],
        "seconds_stats": stats([r["seconds"] for r in replies]),
        "nodes_stats": stats([float(r["nodes"]) for r in replies]),
    }


def log_late_run(store: Store, input_ref: str) -> dict[str, Any]:
    """The writer logs one more run: one input edge, one new version."""
    t0 = time.perf_counter()
    with store.run(name="late-eval", job_type="eval", capture_code=False) as run:
        run.use(input_ref)
        version = run.log_artifact(tiny_artifact("eval-late", "report", 0))
    return {"seconds": time.perf_counter() - t0, "run_id": run.id, "input": input_ref,
            "output": version.ref}


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from artifactstore.testing.servers import moto_s3_server  # imports moto

    plan = make_plan(args.versions, args.runs)
    shape = plan.summary()
    rng = random.Random(SEED + 1)
    deep, raw_used = deep_refs(plan), used_raw_refs(plan)
    first_ref = rng.choice(deep)
    up_refs, down_refs = sample(rng, deep, args.queries), sample(rng, raw_used, args.queries)
    print(f"plan: {shape['versions']} versions ({shape['raw_versions']} raw in "
          f"{shape['raw_datasets']} datasets), {shape['runs']} runs, {shape['artifacts']} "
          f"artifacts, generations up to {shape['generation_max']}", flush=True)
    result: dict[str, Any] = {"plan": shape}
    with moto_s3_server(bucket=BUCKET) as server:
        url = f"s3://{BUCKET}/lineage-{uuid.uuid4().hex[:8]}"
        options = server.backend_options()
        writer = artifactstore.open(url, PROJECT, create=True, cache_dir=work / "writer",
                                    **options)
        try:
            step_count = len(plan.steps)
            tick = max(1, step_count // 10)
            t_build = time.perf_counter()

            def progress(done: int) -> None:
                if done % tick == 0 or done == step_count:
                    print(f"  build {done}/{step_count} steps, {time.perf_counter() - t_build:.0f}"
                          f" s, {server.request_count:,} requests", flush=True)

            print(f"building through the API on {url} ...", flush=True)
            server.reset_count()
            parts = build(writer, plan, progress)
            build_s = time.perf_counter() - t_build
            result["build"] = {"seconds": build_s, "requests": server.request_count,
                               "runs_per_s": plan.runs / parts["runs_s"], **parts}
            keys = len(list(writer.objects.backend.list(f"projects/{PROJECT}/")))
            result["build"]["record_keys"] = keys

            print("reader: fresh process, empty cache ...", flush=True)
            reader = Reader(server)
            try:
                cache = str(work / "reader")
                result["open"] = reader.ask("open", url=url, options=options, cache_dir=cache)
                result["first_sync"] = reader.ask("sync")
                result["first_query"] = {
                    "ref": first_ref, **reader.ask("query", direction="upstream", ref=first_ref)}
                print(f"reader: {args.queries} upstream + {args.queries} downstream queries "
                      "...", flush=True)
                result["upstream"] = query_series(reader, "upstream", up_refs)
                result["downstream"] = query_series(reader, "downstream", down_refs)
                result["noop_sync"] = reader.ask("sync")
                result["stale_query"] = {"ref": first_ref, **reader.ask(
                    "query", direction="upstream", ref=first_ref, default_sync=True)}

                server.reset_count()
                late = log_late_run(writer, rng.choice(deep))
                late["requests"] = server.request_count
                result["late_run"] = late
                seen = {"run_id": late["run_id"], "input_ref": late["input"],
                        "output_ref": late["output"]}
                result["before_sync"] = reader.ask("sees", **seen)
                result["late_sync"] = reader.ask("sync")
                result["after_sync"] = reader.ask("sees", **seen)
            finally:
                reader.close()

            print("later process: same cache dir ...", flush=True)
            later = Reader(server)
            try:
                result["later_open"] = later.ask("open", url=url, options=options,
                                                 cache_dir=cache)
                result["later_sync"] = later.ask("sync")
                result["later_first_query"] = {
                    "ref": first_ref, **later.ask("query", direction="upstream", ref=first_ref)}
            finally:
                later.close()
        finally:
            writer.close()
    check(result)
    return result


def check(result: dict[str, Any]) -> None:
    """What the issue asks of the second process; a failure stops the benchmark."""
    before, after, late = result["before_sync"], result["after_sync"], result["late_run"]
    if before["run"] or before["downstream_has_run"]:
        raise SystemExit("the reader saw the new run before syncing: the query was not local")
    problems = []
    if not (after["run"] and after["downstream_has_run"] and after["downstream_has_output"]):
        problems.append(f"the new run is not in the reader's catalog after its sync: {after}")
    if after["run_inputs"] != [late["input"]] or after["run_outputs"] != [late["output"]]:
        problems.append(f"the new run's edges are {after['run_inputs']} -> "
                        f"{after['run_outputs']}, expected [{late['input']}] -> [{late['output']}]")
    if result["late_sync"]["fetched"] < 1:
        problems.append("the sync after the new run fetched nothing")
    if problems:
        raise SystemExit("; ".join(problems))


# -- report --------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return machine_facts(("artifactstore", "moto", "s3fs", "networkx"))


def table(r: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    p, b = r["plan"], r["build"]
    rows: list[tuple[str, str, str, str, str]] = []

    def one(step: str, reply: dict[str, Any], note: str = "") -> None:
        rows.append((step, f"{reply['seconds']:.3f}", "", f"{reply['requests']:,}", note))

    def sync_note(s: dict[str, Any]) -> str:
        return (f"listed {s['listed']:,} keys, fetched {s['fetched']:,} records; CPU: reader "
                f"{s['reader_cpu_s']:.1f} s, server {s['server_cpu_s']:.1f} s")

    rows.append((f"writer: build {p['versions']:,} versions, {p['runs']:,} runs",
                 f"{b['seconds']:.1f}", "", f"{b['requests']:,}",
                 f"runs {b['runs_s']:.1f} s ({b['runs_per_s']:.1f}/s), raw versions "
                 f"{b['raw_versions_s']:.1f} s; sequential"))
    one("reader: open (fresh process, empty cache)", r["open"])
    one("reader: first sync", r["first_sync"], sync_note(r["first_sync"])
        + f"; catalog {r['first_sync']['catalog_bytes'] / 1e6:.1f} MB")
    fq = r["first_query"]
    one("reader: first query (builds the graph)", fq,
        f"upstream {fq['ref']}: {fq['nodes']} nodes")
    for direction, what in (("upstream", "deep versions"), ("downstream", "used raw versions")):
        s = r[direction]
        rows.append((f"reader: {len(s['seconds'])} x {direction} ({what}), sync=False",
                     f"{s['seconds_stats']['median']:.4f}", f"{s['seconds_stats']['max']:.4f}",
                     f"{sum(s['requests']):,}",
                     f"{statistics.median(s['nodes']):.0f} nodes median "
                     f"({min(s['nodes'])}-{max(s['nodes'])})"))
    one("reader: sync, nothing new", r["noop_sync"], sync_note(r["noop_sync"]))
    sq = r["stale_query"]
    one("reader: upstream with the default sync=None, catalog older than max_age", sq,
        "the query syncs first: a full listing")
    one("writer: log one more run (1 input, 1 output)", r["late_run"])
    one("reader: sync after the new run", r["late_sync"], sync_note(r["late_sync"])
        + ("; run seen" if r["after_sync"]["run"] else "; run NOT seen"))
    one("later process, same cache: open", r["later_open"])
    one("later process: sync", r["later_sync"], sync_note(r["later_sync"]))
    lq = r["later_first_query"]
    one("later process: first query", lq, f"{lq['nodes']} nodes")
    head = ("step", "s (median)", "s (max)", "S3 requests", "notes")
    lines = ["| " + " | ".join(head) + " |", "| --- | ---: | ---: | ---: | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(r: dict[str, Any]) -> str:
    worst = max(r["upstream"]["seconds_stats"]["max"], r["downstream"]["seconds_stats"]["max"])
    ok = worst < TARGET_QUERY_S
    return (f"target upstream/downstream < {TARGET_QUERY_S:.0f} s after the first sync: "
            f"{'met' if ok else 'MISSED'} (slowest {worst:.4f} s; first query, which builds "
            f"the graph, {r['first_query']['seconds']:.3f} s); the second process saw the new "
            f"run after its next sync: {'yes' if r['after_sync']['run'] else 'NO'}")


# -- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--versions", type=int, default=DEFAULT_VERSIONS,
                   help=f"versions in the store (default {DEFAULT_VERSIONS})")
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                   help=f"runs in the store (default {DEFAULT_RUNS})")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply --versions and --runs, e.g. 0.1 for a quick look")
    p.add_argument("--queries", type=int, default=DEFAULT_QUERIES,
                   help=f"timed upstream and downstream queries each (default {DEFAULT_QUERIES})")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    p.add_argument("--reader", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.versions = round(args.versions * args.scale)
    args.runs = round(args.runs * args.scale)
    if args.queries < 1:
        p.error("--queries must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reader:
        return reader_main()
    isolate_environment()
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="artifactstore-lineage-"))
    t0 = time.perf_counter()
    try:
        result = measure(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    info = machine()
    result = {
        "date": started.isoformat(timespec="seconds"),
        "machine": info,
        "settings": {"versions": args.versions, "runs": args.runs, "queries": args.queries,
                     "seed": SEED, "server": "moto (threaded werkzeug) in the writer process",
                     "reader": "fresh subprocess, empty cache dir"},
        "load_average": {"before": load_before, "after": load_after},
        "total_seconds": time.perf_counter() - t0,
        **result,
    }
    print(f"\nartifactstore lineage at scale, {started:%Y-%m-%d %H:%M} UTC; {info['cpu']}, "
          f"{info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}, python "
          f"{info['python']}, moto {info['packages']['moto']}"
          + (f"; git {info['git']}" if info["git"] else ""))
    # the load after includes this benchmark's own writer, server and reader
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f}"
          + ("  (the machine was busy before the start: times are pessimistic)"
             if load_before[0] > 0.5 else ""))
    print()
    print(table(result))
    print()
    print(verdict(result))
    print(f"total benchmark time {result['total_seconds']:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
