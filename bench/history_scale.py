"""History at scale (issue 20): ``ls`` and ``lineage`` on a project of 20,000 versions and
5,000 runs on S3 (a moto server), cold and warm, with their requests and local metadata.

Steps:

* **build** (cached under ``--cache`` by its parameters; ``--rebuild`` forces one): the
  lineage benchmark's plan (``bench/lineage_scale.py``: ``make_plan`` and ``build``,
  through the public API only: ``store.log_artifact``, ``store.run``, ``run.use``,
  ``run.log_artifact``) written into a local store opened with ``fsync=False`` (a
  scratch store: the documented option that skips the fsyncs, which were half of the
  build's time). One writer, sequential.
* **load**: a moto S3 server on 127.0.0.1 in a thread of this process
  (``artifactstore.testing.servers``, which counts HTTP requests) gets a byte-for-byte
  copy of the store's objects, put straight into moto's in-process backend (no HTTP;
  like ``aws s3 sync``, nothing is rewritten). Packs are left out unless ``--with-packs``:
  ``ls`` and ``lineage`` read records only, and the copy then takes a minute, not ten.
* **commands**: each a fresh process running the CLI (``artifactstore ls`` / ``lineage
  REF``) against the bucket, with ``ARTIFACTSTORE_CACHE_DIR`` one client cache: first
  with an empty cache (the cold catalog build), then warm with nothing changed (three
  times each), then a full listing (``store.sync()``, what every sync did before the
  journal), then after one more version logged by this process (the warm ``ls`` must
  show it). Per step: the server's request count while the process ran, the command's
  own time (``main()`` of the CLI, after Python's start and imports) and the process's
  wall time, and the client cache's local metadata (``local/metadata.py``) after it.

Nothing but loopback network. The store built stays in the cache folder (about 1 GB at
the defaults); the client caches live in a temp dir removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import artifactstore
from artifactstore.local.metadata import metadata_usage
from bench.lineage_scale import (
    PROJECT,
    SEED,
    build,
    deep_refs,
    isolate_environment,
    make_plan,
    tiny_artifact,
)
from bench.machine import machine_facts

BUCKET = "artifactstore-history"
DEFAULT_CACHE = Path.home() / ".cache" / "artifactstore-bench" / "history"
TARGET_WARM_S = 0.3
TARGET_WARM_REQUESTS = 2
TARGET_COLD_S = 30.0
#: in the build folder's name: bump it when the code that writes the store changes what a
#: reader sees (``jh``: stores with the journal head, session 15), so an old build, whose
#: config lacks the feature, is never measured as a new one
BUILD_FORMAT = "jh"


@dataclass(frozen=True)
class Params:
    versions: int = 20_000
    runs: int = 5_000
    seed: int = SEED

    @property
    def folder(self) -> str:
        return f"v{self.versions}-r{self.runs}-s{self.seed}-{BUILD_FORMAT}"


def git_describe() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def cached_build(params: Params, cache: Path, *, rebuild: bool = False,
                 log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """The build folder of ``params`` (reused when complete) and its figures."""
    root = cache / params.folder
    marker = root / "build.json"
    if not rebuild and marker.is_file():
        done: dict[str, Any] = json.loads(marker.read_text())
        if done.get("params") == asdict(params):
            log(f"reusing the build in {root} (built {done['date']})")
            return root, done
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    plan = make_plan(params.versions, params.runs, params.seed)
    steps = len(plan.steps)
    log(f"building {params.versions:,} versions and {params.runs:,} runs ({steps:,} steps) "
        f"in {root} ...")
    began = time.perf_counter()
    every = max(1, steps // 20)

    def progress(done: int) -> None:
        if done % every == 0 or done == steps:
            log(f"  {done:,}/{steps:,} steps, {time.perf_counter() - began:.0f} s")

    with artifactstore.open(str(root / "store"), PROJECT, create=True, fsync=False,
                            cache_dir=root / "client") as store:
        parts = build(store, plan, progress)
    seconds = time.perf_counter() - began
    keys = [p for p in (root / "store" / "projects" / PROJECT).rglob("*") if p.is_file()]
    done = {"params": asdict(params),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "git": git_describe(),
            "build": {"seconds": seconds, **parts,
                      "record_keys": sum("journal" not in p.parts for p in keys),
                      "journal_keys": sum("journal" in p.parts for p in keys)},
            "deep_ref": deep_refs(plan)[0]}
    marker.write_text(json.dumps(done, indent=2) + "\n")
    return root, done


# -- the S3 copy ----------------------------------------------------------------------


def load_into_moto(store: Path, bucket: str, prefix: str, *, with_packs: bool,
                   with_bundles: bool, with_journal: bool = True) -> dict[str, Any]:
    """Put the objects of the local store ``store`` into moto's in-process backend
    (without its journal entries: the project as gc leaves it a day after the writes)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    began = time.perf_counter()
    count = size = 0
    for base, _dirs, names in os.walk(store):
        rel_base = Path(base).relative_to(store).as_posix()
        if (not with_packs and "/packs" in f"/{rel_base}") or (
                not with_bundles and rel_base.endswith("/bundles")) or (
                not with_journal and rel_base.endswith("/journal")):
            continue
        for name in names:
            if name.startswith(".tmp") or ".tmp-" in name:
                continue  # a local store's temp files are not objects
            rel = name if rel_base == "." else f"{rel_base}/{name}"
            data = (Path(base) / name).read_bytes()
            backend.put_object(bucket, f"{prefix}/{rel}", data)
            count += 1
            size += len(data)
    return {"objects": count, "bytes": size, "seconds": time.perf_counter() - began}


def bundle(store: Path) -> dict[str, Any]:
    """``store.bundle_records()`` and gc's index consolidation on the local copy (once;
    the maintainer's steps)."""
    from artifactstore.maintenance.consolidate import consolidate_index
    from artifactstore.objects.gcrecords import GcLock

    began = time.perf_counter()
    with artifactstore.open(str(store), PROJECT, fsync=False,
                            cache_dir=store.parent / "client") as opened:
        count = opened.bundle_records()
        seconds = time.perf_counter() - began
        began = time.perf_counter()
        lock = GcLock(opened.objects.backend)
        lock.acquire()
        try:
            merged = consolidate_index(opened.objects)
        finally:
            lock.release()
    folder = store / "projects" / PROJECT / "bundles"
    files = list(folder.iterdir()) if folder.is_dir() else []
    return {"records": count, "seconds": seconds, "bundles": len(files),
            "bytes": sum(f.stat().st_size for f in files),
            "index_merged": merged.merged, "index_written": merged.written,
            "consolidate_s": time.perf_counter() - began}


# -- one command in a fresh process ------------------------------------------------------

_CHILD = """
import contextlib, io, json, sys, time
t0 = time.perf_counter()
op = json.loads(sys.argv[1])
import s3fs  # imported by the first S3 call: counted with Python's start, not the command
if op["kind"] == "cli":
    from artifactstore.cli.main import main
    t1 = time.perf_counter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if op.get("profile"):
            import cProfile
            profiler = cProfile.Profile()
            rc = profiler.runcall(main, op["argv"])
            profiler.dump_stats(op["profile"])
        else:
            rc = main(op["argv"])
    t2 = time.perf_counter()
    text = out.getvalue()
else:
    import artifactstore
    t1 = time.perf_counter()
    with artifactstore.open(op["url"], op["project"]) as store:
        store.sync()
    t2 = time.perf_counter()
    rc, text = 0, ""
# VmHWM, not ru_maxrss: that one keeps the forking benchmark's peak across exec
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
import artifactstore
print(json.dumps({"rc": rc, "seconds": t2 - t1, "import_s": t1 - t0, "out": text,
                  "max_rss": hwm * 1024, "code": artifactstore.__file__}))
"""


def compile_tree(tree: Path) -> None:
    """Byte-compile the package of ``tree`` once, as an installed package is: with
    ``PYTHONDONTWRITEBYTECODE`` set (this machine's sessions set it) every fresh process
    would otherwise compile each module it imports from source (~0.5 s of a warm
    ``ls`` at load 10, inside ``main()``)."""
    import compileall

    compileall.compile_dir(str(tree / "artifactstore"), quiet=1)


def run_child(server: Any, op: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    server.reset_count()
    began = time.perf_counter()
    # run in the tree PYTHONPATH names: ``-c`` puts the working folder first on sys.path
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(op)], env=env,
                          cwd=env["PYTHONPATH"], capture_output=True, text=True,
                          timeout=3600, check=False)
    wall = time.perf_counter() - began
    requests = server.request_count
    if done.returncode != 0:
        raise SystemExit(f"{op}: exit {done.returncode}\n{done.stderr[-3000:]}")
    reply: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if reply["rc"] != 0:
        raise SystemExit(f"{op}: the command failed: {reply['out'][-2000:]}\n{done.stderr[-2000:]}")
    reply.update(wall_s=wall, requests=requests)
    return reply


def page_costs(server: Any, prefix: str, rounds: int = 3) -> dict[str, list[float]]:
    """Seconds of one ``ListObjectsV2`` page like a warm sync's (the journal past its
    end: no keys come back) on the loaded bucket and on an empty one, alternated: how
    much of a warm step is moto's scan of the bucket rather than the client."""
    import urllib.parse
    import urllib.request

    empty = f"{BUCKET}-empty"
    server.create_bucket(empty)
    journal = f"{prefix}/projects/{PROJECT}/journal/"
    query = urllib.parse.urlencode({"list-type": "2", "prefix": journal,
                                    "start-after": f"{journal}~"})
    found: dict[str, list[float]] = {"full": [], "empty": []}
    for _ in range(rounds):
        for name, bucket in (("full", BUCKET), ("empty", empty)):
            began = time.perf_counter()
            with urllib.request.urlopen(f"{server.endpoint_url}/{bucket}?{query}",
                                        timeout=600) as response:
                response.read()
            found[name].append(time.perf_counter() - began)
    return found


def metadata_of(cache: Path) -> dict[str, Any]:
    usage = metadata_usage(cache)
    return {"total": usage.total, "bytes": usage.bytes, "files": usage.files}


def measure(args: argparse.Namespace, root: Path, built: dict[str, Any],
            work: Path) -> dict[str, Any]:
    from artifactstore.testing.servers import moto_s3_server  # imports moto

    result: dict[str, Any] = {"steps": []}
    with moto_s3_server(bucket=BUCKET) as server:
        print("bundling the records of the local store ...", flush=True)
        result["bundle"] = bundle(root / "store")
        print(f"  {result['bundle']}", flush=True)
        before = f"history-{uuid.uuid4().hex[:8]}-nobundles"
        prefix = f"history-{uuid.uuid4().hex[:8]}"
        print("copying the store into moto, with and without its bundles ...", flush=True)
        if not args.skip_unbundled:
            result["load_nobundles"] = load_into_moto(root / "store", BUCKET, before,
                                                      with_packs=args.with_packs,
                                                      with_bundles=False)
        result["load"] = load_into_moto(root / "store", BUCKET, prefix,
                                        with_packs=args.with_packs, with_bundles=True,
                                        with_journal=not args.pruned_journal)
        print(f"  {result['load']['objects']:,} objects in {result['load']['seconds']:.0f} s",
              flush=True)
        result["page_s"] = page_costs(server, prefix)
        print(f"  one warm-sync page, full bucket / empty bucket: {result['page_s']}",
              flush=True)
        url = f"s3://{BUCKET}/{prefix}"
        client = work / "client"
        env = {**os.environ, "AWS_ENDPOINT_URL": server.endpoint_url,
               "AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key,
               "AWS_DEFAULT_REGION": server.region, "ARTIFACTSTORE_CACHE_DIR": str(client),
               "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        ls = {"kind": "cli", "argv": ["ls", "--store", url, "--project", PROJECT, "--json"]}
        lineage = {"kind": "cli", "argv": ["lineage", built["deep_ref"], "--store", url,
                                           "--project", PROJECT, "--json"]}

        env_before = None if args.before is None else {
            **env, "PYTHONPATH": str(args.before.resolve())}
        for tree in {env["PYTHONPATH"], *([] if env_before is None else
                                          [env_before["PYTHONPATH"]])}:
            compile_tree(Path(tree))

        def step(name: str, op: dict[str, Any], *, before: bool = False,
                 cache: Path | None = None) -> dict[str, Any]:
            use = env_before if before and env_before else env
            if cache is not None:
                use = {**use, "ARTIFACTSTORE_CACHE_DIR": str(cache)}
            reply = run_child(server, op, use)
            if before:
                name = f"{name} [before: {args.before}]"
                assert str(args.before.resolve()) in reply["code"], reply["code"]
            shapes: dict[str, int] = {}
            for request in server.requests:
                method, _, target = request.partition(" ")
                path, _, query = target.partition("?")
                listed = parse_qs(query).get("prefix")
                shape = (f"LIST {listed[0]}" if "list-type" in query and listed
                         else f"{method} {path}").replace(prefix, "*")
                shapes[shape] = shapes.get(shape, 0) + 1
            row = {"step": name, "requests": reply["requests"], "seconds": reply["seconds"],
                   "by_path": shapes,
                   "wall_s": reply["wall_s"], "max_rss": reply["max_rss"],
                   "metadata": metadata_of(cache or client), "load": os.getloadavg()[0]}
            result["steps"].append(row)
            print(f"  {name}: {row['seconds']:.3f} s ({row['wall_s']:.2f} s wall), "
                  f"{row['requests']} requests: {shapes if len(shapes) < 8 else '...'}",
                  flush=True)
            return reply

        if args.skip_unbundled:
            result["cold_without_bundles"] = None
        else:
            cold_before = {"kind": "cli", "argv": ["ls", "--store", f"s3://{BUCKET}/{before}",
                                                   "--project", PROJECT, "--json"]}
            env_nob = {**env, "ARTIFACTSTORE_CACHE_DIR": str(work / "client-nobundles")}
            reply = run_child(server, cold_before, env_nob)
            result["cold_without_bundles"] = {k: reply[k] for k in ("seconds", "wall_s",
                                                                     "requests", "max_rss")}
            print(f"  ls, cold, no bundles: {reply['seconds']:.1f} s, {reply['requests']:,} "
                  "requests", flush=True)
        step("ls, cold: empty client cache (the catalog's first build, from bundles)", ls)
        if env_before and not args.skip_cold_before:
            step("ls, cold: empty client cache", ls, before=True, cache=work / "client-before")
            shutil.rmtree(work / "client-before", ignore_errors=True)
        for _ in range(args.warm):  # with --before: the old code's run alternated
            step("ls, warm, nothing changed", ls)
            if env_before:
                step("ls, warm, nothing changed", ls, before=True)
        for _ in range(args.warm):
            step("lineage, warm, nothing changed", lineage)
            if env_before:
                step("lineage, warm, nothing changed", lineage, before=True)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
            for name, op in (("ls", ls), ("lineage", lineage)):
                step(f"{name}, warm, under cProfile (not a timing)",
                     {**op, "profile": str(args.profile.resolve() / f"warm-{name}.prof")})
        step("store.sync(): a full listing (what every sync cost before the journal)",
             {"kind": "sync", "url": url, "project": PROJECT})
        with artifactstore.open(url, PROJECT, cache_dir=work / "writer",
                                **server.backend_options()) as writer:
            server.reset_count()
            writer.log_artifact(tiny_artifact("late-dataset", "dataset", 0))
            result["late_log_requests"] = server.request_count
        reply = step("ls, warm, after another process logged one version", ls)
        result["late_seen"] = "late-dataset" in json.loads(reply["out"])["artifacts"]
        step("lineage, warm, after that", lineage)
    return result


# -- the report ---------------------------------------------------------------------------

MIB = 1 << 20


def verdicts(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = result["steps"]
    warm = [r for r in rows if "warm, nothing changed" in r["step"] and "[before" not in r["step"]
            and "cProfile" not in r["step"]]
    cold = rows[0]
    worst_s = max(r["seconds"] for r in warm)
    worst_n = max(r["requests"] for r in warm)
    return [
        (f"warm `ls`/`lineage` <= {TARGET_WARM_S} s, nothing changed",
         f"max {worst_s:.3f} s over {len(warm)} commands (process wall max "
         f"{max(r['wall_s'] for r in warm):.2f} s)", "met" if worst_s <= TARGET_WARM_S
         else f"missed ({worst_s / TARGET_WARM_S:.1f}x)"),
        (f"warm `ls`/`lineage` <= {TARGET_WARM_REQUESTS} requests", f"max {worst_n}",
         "met" if worst_n <= TARGET_WARM_REQUESTS else "missed"),
        (f"cold catalog build <= {TARGET_COLD_S:.0f} s", f"{cold['seconds']:.1f} s, "
         f"{cold['requests']:,} requests", "met" if cold["seconds"] <= TARGET_COLD_S
         else f"missed ({cold['seconds'] / TARGET_COLD_S:.1f}x)"),
        ("a new version shows in the next warm `ls`", str(result["late_seen"]),
         "met" if result["late_seen"] else "missed"),
    ]


def markdown(doc: dict[str, Any]) -> str:
    b, r = doc["build"], doc["result"]
    lines = [
        f"History at scale: {doc['params']['versions']:,} versions, {doc['params']['runs']:,} "
        f"runs ({doc['date']} UTC, git {doc['git']})", "",
        f"Build (cached, {b['date']}): {b['build']['seconds']:.0f} s through the API "
        f"(raw versions {b['build']['raw_versions_s']:.0f} s, runs {b['build']['runs_s']:.0f} s)"
        f"; {b['build']['record_keys']:,} keys under the project, "
        f"{b['build']['journal_keys']:,} journal entries. Copied into moto"
        + (" without the journal entries (`--pruned-journal`)" if doc.get("pruned_journal")
           else "") + ": "
        f"{r['load']['objects']:,} objects ({r['load']['bytes'] / MIB:.0f} MiB) in "
        f"{r['load']['seconds']:.0f} s. One more version logged: {r['late_log_requests']} "
        "requests.",
        "One warm-sync list page (the journal past its end), seconds, loaded bucket: "
        + ", ".join(f"{x:.3f}" for x in r["page_s"]["full"]) + "; empty bucket: "
        + ", ".join(f"{x:.3f}" for x in r["page_s"]["empty"]) + ".",
        f"Bundles (`store.bundle_records()` on the local store before the copy): "
        f"{r['bundle']['records']:,} records in {r['bundle']['bundles']} bundles "
        f"({r['bundle']['bytes'] / MIB:.1f} MiB), {r['bundle']['seconds']:.1f} s. "
        + (f"The same cold `ls` on a copy without bundles: "
           f"{r['cold_without_bundles']['seconds']:.1f} s, "
           f"{r['cold_without_bundles']['requests']:,} requests, peak RSS "
           f"{r['cold_without_bundles']['max_rss'] / MIB:.0f} MiB."
           if r["cold_without_bundles"] else "(No copy without bundles: --skip-unbundled.)"),
        "",
        "| step | command s | process wall s | requests | local metadata MiB (catalog) "
        "| peak RSS MiB | load |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    for s in r["steps"]:
        meta = s["metadata"]
        lines.append(
            f"| {s['step']} | {s['seconds']:.3f} | {s['wall_s']:.2f} | {s['requests']:,} | "
            f"{meta['total'] / MIB:.1f} ({meta['bytes'].get('catalog', 0) / MIB:.1f}) | "
            f"{s['max_rss'] / MIB:.0f} | {s['load']:.2f} |")
    lines += ["", "| target | measured | verdict |", "| --- | --- | --- |"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in verdicts(r)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench history", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("--versions", type=int, default=Params.versions,
                   help=f"artifact versions of the fixture (default {Params.versions:,})")
    p.add_argument("--runs", type=int, default=Params.runs,
                   help=f"runs of the fixture (default {Params.runs:,})")
    p.add_argument("--warm", type=int, default=3, help="warm repetitions of each command")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help="where built fixtures are kept by their parameters "
                        "(default ~/.cache/artifactstore-bench/history)")
    p.add_argument("--rebuild", action="store_true",
                   help="build the fixture again even if --cache holds one")
    p.add_argument("--with-packs", action="store_true",
                   help="copy the packs into the bucket too (ls and lineage read records "
                        "only; the copy then takes ten minutes, not one)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    p.add_argument("--markdown", type=Path, default=None,
                   help="also write the Markdown report here")
    p.add_argument("--skip-unbundled", action="store_true",
                   help="no copy without bundles and no cold ls of it (the slowest step)")
    p.add_argument("--pruned-journal", action="store_true",
                   help="copy the store without its journal entries, as gc leaves a project "
                        "a day after its writes (design 12.8): the fixture's are all fresh")
    p.add_argument("--skip-cold-before", action="store_true",
                   help="with --before: no cold ls of the old code (its own client cache)")
    p.add_argument("--profile", type=Path, default=None,
                   help="a folder: one more warm ls and lineage each under cProfile, their "
                        "stats written there (warm-ls.prof, warm-lineage.prof)")
    p.add_argument("--before", type=Path, default=None,
                   help="a source tree of an older commit: its CLI runs each warm step "
                        "too, alternated with this tree's (same moto copy, same cache)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    isolate_environment()
    params = Params(args.versions, args.runs)
    root, built = cached_build(params, args.cache, rebuild=args.rebuild,
                               log=lambda m: print(m, flush=True))
    with tempfile.TemporaryDirectory(prefix="history-") as tmp:
        doc: dict[str, Any] = {"params": asdict(params),
               "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
               "git": git_describe(), "machine": machine_facts(["moto", "s3fs"]),
               "load_before": os.getloadavg(), "build": built,
               "pruned_journal": args.pruned_journal}
        doc["result"] = measure(args, root, built, Path(tmp))
        doc["load_after"] = os.getloadavg()
    text = markdown(doc)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    return 0 if all(v == "met" for _, _, v in verdicts(doc["result"])) else 1


if __name__ == "__main__":
    sys.exit(main())
