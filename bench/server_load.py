"""Team server under load (issue 18): two ``artifactstore serve`` processes over one S3
bucket (a moto server), and client processes logging, reading and listing through both.

The acceptance: 16 client processes for 60 s, 0 errors, 0 lost or duplicate versions,
``verify --read-data`` clean; throughput and p50/p99 latency per operation, and the
request overhead of going through a server instead of straight to S3.

Steps:

* **setup** (this process): moto's S3 on 127.0.0.1 in a thread of this process
  (``artifactstore.testing.servers``, which counts the requests it serves), a store
  created straight on the bucket with one public project, one version of each of the
  ``--artifacts`` artifacts (so reads have something to read from the start), and one
  identity that every client shares (one user, many processes).
* **servers**: ``--servers`` processes of ``python -m artifactstore serve --store
  s3://... --config server.toml --host 127.0.0.1 --port N`` (the S3 endpoint and keys in
  their environment only), each ready when ``/readyz`` answers 200; their output
  (the access log) goes to a file each. With ``--servers 0`` the clients talk to S3
  directly (the same loop without a server, for comparison and for the test).
* **clients**: ``--clients`` processes (this file, ``worker`` mode) that know only the
  servers' URLs (``artifactstore+http://127.0.0.1:PORT/``, no S3 credentials). Each
  opens the project through every server, says ready, and on "go" loops for
  ``--seconds``: **log** a new version of a random artifact (1 to ``--max-files`` files
  of random bytes, log-uniform in size between ``--min-kib`` and ``--max-kib``; the
  seed and sizes are in the version's metadata), **list** the versions of a random
  artifact, **get** (download, without the per-user file cache) a random listed
  version and compare every byte with the bytes its metadata regenerates. Consecutive
  operations alternate between servers. Each operation's start, duration, outcome,
  server and (for logs) the version number it returned go to a JSON file per client.
* **checks** (straight on the bucket, the servers stopped): no operation failed; the
  versions in the store are exactly those that logs returned (none lost, none extra)
  and no (artifact, number) was returned twice; every version's files read back equal
  to the bytes its seed makes; ``python -m artifactstore verify --read-data`` exits 0.
* **overhead** (one server started again, nothing else running): the same
  ``artifactstore log``, ``get`` and ``ls`` commands (processes; each first with an
  empty per-user cache, then again with the cache it left) straight on S3 and through
  a server: S3 requests counted by moto, the client's requests to the server counted in
  the server's access log.

Everything lives in a temp dir removed at the end; only 127.0.0.1 is contacted; the
server processes are stopped by their process id.

Length: one scenario whose parts (data, worker loop, servers, checks, report) only
make sense together; split, each would import the others' constants.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

try:
    from bench.machine import machine_facts
except ImportError:  # run as a script (the worker, python bench/server_load.py)
    from machine import machine_facts  # type: ignore[import-not-found,no-redef]

SEED: Final = 20261206
BUCKET: Final = "artifactstore-bench"
PROJECT: Final = "load"
OPS: Final = ("log", "get", "list")
#: how long a server may take to answer /readyz, and a client to say ready
START_TIMEOUT_S: Final = 120.0
#: a client may overrun --seconds by its last operation; past this it is killed
GRACE_S: Final = 300.0
#: the server settings: an open server, everyone holds ``role`` in every project (the
#: roles are not what is measured; ``--role reader`` shows the checks catch refusals)
SERVER_TOML: Final = 'store = "{store}"\n\n[roles]\neveryone = "{role}"\n'
SECRET: Final = "bench-server-load-secret-" + "x" * 32


@dataclass(frozen=True, slots=True)
class Params:
    seconds: float = 60.0
    clients: int = 16
    servers: int = 2
    artifacts: int = 4
    max_files: int = 3
    min_kib: int = 4
    max_kib: int = 1024
    seed: int = SEED
    role: str = "admin"


# -- the data a version holds --------------------------------------------------------


def version_plan(params: Params, seed: int) -> dict[str, int]:
    """The files (name -> size) of the version logged with ``seed``."""
    rng = random.Random(seed)
    low, high = math.log(params.min_kib * 1024), math.log(params.max_kib * 1024)
    return {f"part-{i}.bin": int(math.exp(rng.uniform(low, high)))
            for i in range(rng.randint(1, params.max_files))}


def file_bytes(seed: int, name: str, size: int) -> bytes:
    """The content of file ``name`` of the version logged with ``seed``."""
    return random.Random(f"{seed}/{name}").randbytes(size)


def write_version(folder: Path, seed: int, files: dict[str, int]) -> int:
    """Write the version's files into the empty ``folder``; their total size."""
    for name, size in files.items():
        (folder / name).write_bytes(file_bytes(seed, name, size))
    return sum(files.values())


def compare(folder: Path, metadata: Any) -> str | None:
    """None when ``folder`` holds exactly the files ``metadata`` regenerates."""
    if not isinstance(metadata, Mapping) or "seed" not in metadata:
        return f"no load metadata: {metadata!r}"
    seed, files = int(metadata["seed"]), dict(metadata["files"])
    found = sorted(p.name for p in folder.iterdir())
    if found != sorted(files):
        return f"files {found} instead of {sorted(files)}"
    for name, size in files.items():
        if (folder / name).read_bytes() != file_bytes(seed, name, int(size)):
            return f"{name}: bytes differ"
    return None


def client_seed(params: Params, client: int, index: int) -> int:
    """The seed of the ``index``-th version client ``client`` logs (unique, stable)."""
    return (params.seed % 100_000) * 10**9 + client * 10**7 + index


# -- the client process -----------------------------------------------------------------


def worker(spec: dict[str, Any]) -> int:
    """One client: open the project through every URL, "ready", wait for "go", loop."""
    import artifactstore

    params = Params(**spec["params"])
    client = int(spec["client"])
    rng = random.Random(client_seed(params, client, -1))
    # no file cache: a repeated get reads through the server again, as a new client would
    stores = [artifactstore.open(url, PROJECT, create=False, cache_dir=spec["cache"],
                                 file_cache=False) for url in spec["urls"]]
    names = [f"data-{i}" for i in range(params.artifacts)]
    listed: dict[str, list[int]] = {name: [] for name in names}
    ops: list[dict[str, Any]] = []
    scratch = Path(tempfile.mkdtemp(prefix=f"client{client}-", dir=spec["scratch"]))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    start = time.time()
    deadline = time.monotonic() + params.seconds
    turn = client  # consecutive operations alternate between servers
    logged = 0

    def timed(op: str, call: Callable[[Any], dict[str, Any]]) -> None:
        nonlocal turn
        server = turn % len(stores)
        turn += 1
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"op": op, "server": server, "at": time.time() - start}
        try:
            entry.update(call(stores[server]))
            entry["ok"] = "error" not in entry
        except Exception as exc:  # every failure is counted, none stops the loop
            entry.update(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
        entry["seconds"] = time.perf_counter() - t0 - entry.pop("untimed", 0.0)
        ops.append(entry)

    def log(store: Any) -> dict[str, Any]:
        nonlocal logged
        seed = client_seed(params, client, logged)
        logged += 1
        name = rng.choice(names)
        folder = scratch / f"log-{seed}"
        folder.mkdir()
        t0 = time.perf_counter()
        files = version_plan(params, seed)
        size = write_version(folder, seed, files)
        untimed = time.perf_counter() - t0
        try:
            version = store.log_artifact(folder, name=name, type="dataset",
                                         metadata={"seed": seed, "files": files})
        finally:
            shutil.rmtree(folder)
        return {"artifact": name, "number": version.number, "created": version.created,
                "seed": seed, "bytes": size, "untimed": untimed}

    def listing(store: Any) -> dict[str, Any]:
        name = rng.choice(names)
        numbers = [v.number for v in store.versions(name)]
        listed[name] = numbers
        return {"artifact": name, "count": len(numbers)}

    def get(store: Any) -> dict[str, Any]:
        choices = [(n, v) for n, vs in listed.items() for v in vs]
        if not choices:  # nothing listed yet: read the setup version of one artifact
            choices = [(rng.choice(names), 0)]
        name, number = rng.choice(choices)
        folder = scratch / f"get-{len(ops)}"
        try:
            version = store.artifact(f"{name}:v{number}")
            version.download(folder)
            t0 = time.perf_counter()
            wrong = compare(folder, version.metadata)
            size = sum(p.stat().st_size for p in folder.iterdir())
            untimed = time.perf_counter() - t0
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        result = {"artifact": name, "number": number, "bytes": size, "untimed": untimed}
        if wrong is not None:
            result["error"] = f"{name}:v{number} read back wrong: {wrong}"
        return result

    try:
        while time.monotonic() < deadline:
            timed("log", log)
            timed("list", listing)
            timed("get", get)
    finally:
        for store in stores:
            store.close()
        shutil.rmtree(scratch, ignore_errors=True)
        Path(spec["out"]).write_text(json.dumps(ops))
    return 0


# -- servers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except OSError:
        return None


@dataclass
class Server:
    """One ``artifactstore serve`` process; its output (access log) in ``log_path``."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    log_file: IO[bytes]

    @property
    def url(self) -> str:
        return f"artifactstore+http://127.0.0.1:{self.port}/"

    def access_entries(self) -> list[dict[str, Any]]:
        """The access log so far: one JSON object per request line (``method``, ``path``,
        ``status``, ``bytes``, ``ms``, ...), the object protocol's requests only."""
        self.log_file.flush()
        entries = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith("{"):
                continue  # the server's other lines (start, warnings)
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and str(entry.get("path", "")).startswith("/v1/"):
                entries.append(entry)
        return entries

    def stop(self) -> int:
        """SIGTERM (graceful: requests in flight finish), then wait; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return int(self.process.returncode)


def start_server(store: str, config: Path, env: dict[str, str], log_path: Path) -> Server:
    port = free_port()
    log_file = log_path.open("ab")
    argv = [sys.executable, "-m", "artifactstore", "serve", "--store", store,
            "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file,
                               stderr=subprocess.STDOUT, env=env)
    server = Server(process, port, log_path, log_file)
    deadline = time.monotonic() + START_TIMEOUT_S
    while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"artifactstore serve did not become ready: {tail}")
        time.sleep(0.1)
    return server


@contextlib.contextmanager
def servers_running(count: int, store: str, config: Path, env: dict[str, str],
                    folder: Path, tag: str) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for i in range(count):
            started.append(start_server(store, config, env, folder / f"{tag}-server{i}.log"))
        yield started
    finally:
        for server in started:
            server.stop()


# -- the run --------------------------------------------------------------------------


@dataclass
class Setting:
    """Where the scenario runs: the temp dir, the S3 server, the store, environments."""

    work: Path
    s3: Any
    store: str
    config: Path
    #: the S3 endpoint and keys: for this process's direct reads, the servers, verify
    s3_env: dict[str, str]
    #: the clients': the shared identity and no S3 credentials
    client_env: dict[str, str]
    setup_seeds: dict[str, int] = field(default_factory=dict)


def make_setting(params: Params, work: Path, s3: Any) -> Setting:
    import artifactstore

    store = f"s3://{BUCKET}/load-{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "ARTIFACTSTORE_", "FSSPEC_"))}
    base.update(ARTIFACTSTORE_CONFIG_DIR=str(work / "identity"), PYTHONUNBUFFERED="1")
    s3_env = {**base, "AWS_ENDPOINT_URL": s3.endpoint_url, "AWS_ACCESS_KEY_ID": s3.access_key,
              "AWS_SECRET_ACCESS_KEY": s3.secret_key, "AWS_DEFAULT_REGION": s3.region,
              "ARTIFACTSTORE_SERVER_SECRET": SECRET,
              "ARTIFACTSTORE_CACHE_DIR": str(work / "server-cache")}
    config = work / "server.toml"
    config.write_text(SERVER_TOML.format(store=store, role=params.role))
    setting = Setting(work, s3, store, config, s3_env, dict(base))
    with environment(setting.s3_env | {"ARTIFACTSTORE_CACHE_DIR": str(work / "setup")}):
        made = artifactstore.open(store, PROJECT, create=True)
        try:
            for i in range(params.artifacts):
                seed = client_seed(params, params.clients + 1, i)
                folder = work / f"setup-{i}"
                folder.mkdir()
                files = version_plan(params, seed)
                write_version(folder, seed, files)
                made.log_artifact(folder, name=f"data-{i}", type="dataset",
                                  metadata={"seed": seed, "files": files})
                shutil.rmtree(folder)
                setting.setup_seeds[f"data-{i}"] = seed
        finally:
            made.close()
    return setting


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by ``values`` for the block."""
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def run_clients(params: Params, setting: Setting, urls: list[str],
                say: Callable[[str], None]) -> tuple[list[dict[str, Any]], float]:
    """Start the clients, let them loop; every operation they did, and the wall time."""
    here = Path(__file__).resolve()
    procs, outs = [], []
    scratch = setting.work / "scratch"
    scratch.mkdir(exist_ok=True)
    env = setting.client_env if urls[0].startswith("artifactstore+") else setting.s3_env
    try:
        for client in range(params.clients):
            out = setting.work / f"client{client}.json"
            spec = {"params": asdict(params), "client": client, "urls": urls,
                    "cache": str(setting.work / f"client{client}-cache"),
                    "scratch": str(scratch), "out": str(out)}
            procs.append(subprocess.Popen(
                [sys.executable, str(here), "worker", json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
            outs.append(out)
        for client, proc in enumerate(procs):
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"client {client} did not start (exit {proc.wait()})")
        say(f"{params.clients} clients ready; go for {params.seconds:g} s")
        t0 = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for client, proc in enumerate(procs):
            left = t0 + params.seconds + GRACE_S - time.perf_counter()
            if proc.wait(timeout=max(1.0, left)) != 0:
                raise SystemExit(f"client {client} exited with {proc.returncode}")
        wall = time.perf_counter() - t0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
    ops: list[dict[str, Any]] = []
    for client, out in enumerate(outs):
        for entry in json.loads(out.read_text()):
            ops.append({"client": client, **entry})
    return ops, wall


# -- statistics and checks ------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0-1) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def op_stats(ops: list[dict[str, Any]], wall: float) -> dict[str, dict[str, Any]]:
    """Per operation: count, errors, ops/s, MB/s, p50/p99/max latency (s)."""
    stats = {}
    for op in OPS:
        mine = [e for e in ops if e["op"] == op]
        ok = [e for e in mine if e["ok"]]
        seconds = [e["seconds"] for e in ok]
        moved = sum(e.get("bytes", 0) for e in ok)
        stats[op] = {
            "count": len(mine), "errors": len(mine) - len(ok),
            "per_s": len(ok) / wall if wall else 0.0,
            "mb_per_s": moved / 1e6 / wall if wall else 0.0,
            "bytes": moved,
            "p50_s": percentile(seconds, 0.5), "p99_s": percentile(seconds, 0.99),
            "max_s": max(seconds, default=None),
            "mean_s": statistics.fmean(seconds) if seconds else None,
            "by_server": {str(k): sum(1 for e in mine if e["server"] == k)
                          for k in sorted({e["server"] for e in mine})},
        }
    return stats


def check_versions(ops: list[dict[str, Any]], stored: dict[str, dict[int, int | None]],
                   setup: dict[str, int]) -> list[str]:
    """Problems: failed operations, versions lost, extra or returned twice, seeds that do
    not match. ``stored``: artifact -> {number: the seed in its metadata} in the store;
    ``setup``: artifact -> the seed of its version 0, logged before the clients."""
    problems = [f"client {e['client']}: {e['op']} failed: {e.get('error')}"
                for e in ops if not e["ok"]]
    returned: dict[tuple[str, int], int] = {(name, 0): seed for name, seed in setup.items()}
    for e in ops:
        if e["op"] != "log" or not e["ok"]:
            continue
        key = (e["artifact"], e["number"])
        if not e["created"]:
            problems.append(f"client {e['client']}: a log of new content made no version "
                            f"({e['artifact']}:v{e['number']} returned)")
        elif key in returned:
            problems.append(f"{key[0]}:v{key[1]} returned twice (seeds {returned[key]} and "
                            f"{e['seed']})")
        else:
            returned[key] = e["seed"]
    in_store = {(name, n): seed for name, numbers in stored.items()
                for n, seed in numbers.items()}
    for key in sorted(set(returned) - set(in_store)):
        problems.append(f"{key[0]}:v{key[1]} was returned by a log but is not in the store")
    for key in sorted(set(in_store) - set(returned)):
        problems.append(f"{key[0]}:v{key[1]} is in the store but no log returned it")
    for key in sorted(set(in_store) & set(returned)):
        if in_store[key] != returned[key]:
            problems.append(f"{key[0]}:v{key[1]} holds seed {in_store[key]}, the log that "
                            f"returned it wrote seed {returned[key]}")
    return problems


def read_back(setting: Setting, say: Callable[[str], None]) -> tuple[
        dict[str, dict[int, int | None]], list[str], int]:
    """Every version of the store, straight from the bucket: {artifact: {number:
    seed}}, the versions whose files differ from their seed's bytes, bytes read."""
    import artifactstore

    stored: dict[str, dict[int, int | None]] = {}
    wrong: list[str] = []
    read = 0
    with environment(setting.s3_env | {"ARTIFACTSTORE_CACHE_DIR": str(setting.work / "check")}):
        store = artifactstore.open(setting.store, PROJECT, create=False, file_cache=False)
        try:
            for name in store.artifacts():
                stored[name] = {}
                for version in store.versions(name):
                    meta = version.metadata
                    stored[name][version.number] = (int(meta["seed"])
                                                    if isinstance(meta, Mapping) and "seed" in meta
                                                    else None)
                    folder = setting.work / "readback"
                    version.download(folder)
                    read += sum(p.stat().st_size for p in folder.iterdir())
                    problem = compare(folder, meta)
                    shutil.rmtree(folder)
                    if problem is not None:
                        wrong.append(f"{version.ref}: {problem}")
        finally:
            store.close()
    say(f"read back {sum(map(len, stored.values()))} versions ({read / 1e6:.0f} MB) "
        f"straight from the bucket: {len(wrong)} wrong")
    return stored, wrong, read


def verify_store(setting: Setting) -> dict[str, Any]:
    """``artifactstore verify --read-data`` straight on the bucket (a process)."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "artifactstore", "verify", "--read-data",
                           "--store", setting.store, "--project", PROJECT, "--json"],
                          capture_output=True, text=True, check=False, timeout=3600,
                          env=setting.s3_env | {"ARTIFACTSTORE_CACHE_DIR": str(
                              setting.work / "verify")})
    report: dict[str, Any] = {"exit": done.returncode, "seconds": time.perf_counter() - t0}
    try:
        report["report"] = json.loads(done.stdout)
    except json.JSONDecodeError:
        report["output"] = (done.stdout + done.stderr)[-2000:]
    return report


# -- request overhead ---------------------------------------------------------------


#: the overhead commands: (result key, cache, what to run); each cache starts empty,
#: so the first command of a cache is cold, the second warm (catalog and records kept)
OVERHEAD_STEPS: Final = (
    ("log", "a", ("log", "{name}", "{folder0}", "--metadata", "seed={seed0}")),
    ("log warm", "a", ("log", "{name}", "{folder1}", "--metadata", "seed={seed1}")),
    ("get", "b", ("get", "{name}:v0", "--dir", "{got0}")),
    ("get warm", "b", ("get", "{name}:v1", "--dir", "{got1}")),
    ("list", "c", ("ls", "{name}")),
    ("list warm", "c", ("ls", "{name}")),
)


def overhead(params: Params, setting: Setting, server: Server | None,
             say: Callable[[str], None]) -> dict[str, Any]:
    """``artifactstore log``, ``get`` and ``ls`` as processes, each first with an empty
    per-user cache (cold) then again with the cache it left (warm), straight on S3
    (``server`` None) or through ``server``: the requests S3 served (moto's count) and,
    through a server, the requests it served (its access log), with the command's wall
    time. ``get`` reads a version whose files are not in the cache, cold and warm."""
    mode = "direct" if server is None else "server"
    url = setting.store if server is None else server.url
    env = setting.s3_env if server is None else setting.client_env
    name = f"overhead-{mode}"
    files = {"a.bin": 64 << 10, "b.bin": 256 << 10, "c.bin": 1 << 20}
    values = {"name": name}
    for i in range(2):
        seed = client_seed(params, params.clients + 2, 2 * i + (server is not None))
        folder = setting.work / f"{name}-{i}"
        folder.mkdir()
        write_version(folder, seed, files)
        values.update({f"seed{i}": str(seed), f"folder{i}": str(folder),
                       f"got{i}": str(setting.work / f"{name}-got{i}")})
    result: dict[str, Any] = {}
    for key, cache, args in OVERHEAD_STEPS:
        argv = [sys.executable, "-m", "artifactstore", *(a.format(**values) for a in args),
                "--store", url, "--project", PROJECT, "--json", "--quiet"]
        before = len(server.access_entries()) if server is not None else 0
        setting.s3.reset_count()
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600,
                              env=env | {"ARTIFACTSTORE_CACHE_DIR": str(
                                  setting.work / f"{name}-cache-{cache}")})
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{mode} {key} failed ({done.returncode}): {done.stderr[-1000:]}")
        entry = {"s3_requests": setting.s3.request_count, "seconds": seconds,
                 "s3_by_method": by_method(setting.s3.requests)}
        if server is not None:
            entry["server_requests"] = len(server.access_entries()) - before
        result[key] = entry
    for i, key in enumerate(("get", "get warm")):
        result[key]["byte_exact"] = compare(Path(values[f"got{i}"]), {
            "seed": values[f"seed{i}"], "files": files}) is None
    say(f"overhead {mode}: " + ", ".join(
        f"{op} {e['s3_requests']} S3" + (f" / {e['server_requests']} server"
                                        if "server_requests" in e else "") + " requests"
        for op, e in result.items()))
    return result


def access_summary(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One server's requests: how many, by method and status, its own p50/p99 ms."""
    ms = [float(e["ms"]) for e in entries if isinstance(e.get("ms"), int | float)]
    methods: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for e in entries:
        methods[str(e.get("method"))] = methods.get(str(e.get("method")), 0) + 1
        statuses[str(e.get("status"))] = statuses.get(str(e.get("status")), 0) + 1
    return {"requests": len(entries), "by_method": methods, "by_status": statuses,
            "p50_ms": percentile(ms, 0.5), "p99_ms": percentile(ms, 0.99)}


def by_method(requests: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in requests:
        method = line.split(" ", 1)[0]
        counts[method] = counts.get(method, 0) + 1
    return counts


# -- the whole scenario ---------------------------------------------------------------


def run(params: Params, *, say: Callable[[str], None] = print,
        keep: Path | None = None) -> dict[str, Any]:
    """The scenario of the module docstring; its results (``problems`` empty when every
    check passed)."""
    from artifactstore.testing.servers import moto_s3_server

    started = datetime.datetime.now(datetime.UTC)
    work = Path(tempfile.mkdtemp(prefix="server-load-")) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"date": started.isoformat(timespec="seconds"),
                              "params": asdict(params)}
    try:
        with moto_s3_server(bucket=BUCKET) as s3:
            setting = make_setting(params, work, s3)
            result["store"] = setting.store
            result["client_env_s3"] = sorted(k for k in setting.client_env
                                             if k.startswith(("AWS_", "FSSPEC_")))
            say(f"store {setting.store} on moto {s3.endpoint_url}; {params.artifacts} "
                f"artifacts; {params.servers} server(s), {params.clients} clients")
            load_before = os.getloadavg()
            s3.reset_count()
            with servers_running(params.servers, setting.store, setting.config,
                                 setting.s3_env, work, "load") as servers:
                urls = [s.url for s in servers] or [setting.store]
                ops, wall = run_clients(params, setting, urls, say)
                result["server_requests"] = [access_summary(s.access_entries())
                                             for s in servers]
            result["s3_requests"] = s3.request_count
            result["load_average"] = {"before": load_before, "after": os.getloadavg()}
            result["wall_s"] = wall
            result["ops"] = op_stats(ops, wall)
            say(report_table(result["ops"]))
            stored, wrong, read = read_back(setting, say)
            problems = check_versions(ops, stored, setting.setup_seeds) + wrong
            result["versions"] = {"stored": sum(map(len, stored.values())),
                                  "logged": sum(1 for e in ops if e["op"] == "log"
                                                and e["ok"]),
                                  "setup": len(setting.setup_seeds),
                                  "read_back_bytes": read}
            verified = verify_store(setting)
            result["verify"] = verified
            if verified["exit"] != 0:
                problems.append(f"verify --read-data exited {verified['exit']}: "
                                f"{verified.get('output', verified.get('report'))}")
            say(f"verify --read-data: exit {verified['exit']} in {verified['seconds']:.1f} s")
            direct: dict[str, Any] = {}
            through: dict[str, Any] = {}
            if not problems:  # the request counts mean something only on a sound run
                direct = overhead(params, setting, None, say)
            if params.servers and not problems:
                with servers_running(1, setting.store, setting.config, setting.s3_env,
                                     work, "overhead") as (server,):
                    through = overhead(params, setting, server, say)
            result["overhead"] = {"direct": direct, "server": through}
            result["problems"] = problems
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f}"


def report_table(stats: dict[str, dict[str, Any]]) -> str:
    """Per operation: count, errors, throughput and latency, as Markdown."""
    lines = ["| operation | count | errors | per second | MB/s | p50 ms | p99 ms | max ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for op in OPS:
        s = stats[op]
        lines.append(f"| {op} | {s['count']:,} | {s['errors']} | {s['per_s']:.2f} | "
                     f"{s['mb_per_s']:.2f} | {_ms(s['p50_s'])} | {_ms(s['p99_s'])} | "
                     f"{_ms(s['max_s'])} |")
    return "\n".join(lines)


def overhead_table(over: dict[str, Any]) -> str:
    """Requests per command, straight on S3 and through a server, as Markdown."""
    lines = ["| command | cache | straight to S3: S3 requests | through a server: requests "
             "to the server | its S3 requests | wall s (direct / server) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for key, _, args in OVERHEAD_STEPS:
        d, s = over["direct"].get(key), over["server"].get(key)
        if d is None:
            continue
        command = f"`artifactstore {args[0]}`"
        cache = "warm" if key.endswith("warm") else "empty"
        through = (f"{s['server_requests']} | {s['s3_requests']} | {d['seconds']:.2f} / "
                   f"{s['seconds']:.2f}" if s else f"n/a | n/a | {d['seconds']:.2f} / n/a")
        lines.append(f"| {command} | {cache} | {d['s3_requests']} | {through} |")
    return "\n".join(lines)


def summary(result: dict[str, Any]) -> str:
    m, p, v = result["machine"], result["params"], result["versions"]
    lines = [
        f"team server under load, {result['date']}; {m['cpu']}, {m['cores']} cores, "
        f"{m['ram_gib']} GiB RAM, {m['os']}, python {m['python']}"
        + (f"; git {m['git']}" if m.get("git") else ""),
        f"{p['servers']} server(s), {p['clients']} client processes, {p['seconds']:g} s "
        f"(wall {result['wall_s']:.1f} s), {p['artifacts']} artifacts, 1-{p['max_files']} "
        f"files of {p['min_kib']} KiB-{p['max_kib']} KiB per version",
        f"versions: {v['logged']} logged by clients + {v['setup']} at setup, "
        f"{v['stored']} in the store; S3 requests {result['s3_requests']:,}",
        *(f"server {i}: {a['requests']:,} requests, by status {a['by_status']}, "
          f"handler p50 {a['p50_ms'] or 0:.1f} ms, p99 {a['p99_ms'] or 0:.1f} ms"
          for i, a in enumerate(result.get("server_requests", []))),
        f"load average before/after: {result['load_average']['before'][0]:.2f} / "
        f"{result['load_average']['after'][0]:.2f}",
        "", report_table(result["ops"]), "", overhead_table(result["overhead"]), "",
        ("checks: all passed (0 errors, 0 lost, 0 duplicate, every version byte-exact, "
         "verify --read-data clean)" if not result["problems"] else
         f"checks: {len(result['problems'])} PROBLEM(S):\n  " + "\n  ".join(
             result["problems"][:20])),
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = Params()
    p = argparse.ArgumentParser(prog="python -m bench server",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=defaults.seconds,
                   help=f"how long the clients loop (default {defaults.seconds:g})")
    p.add_argument("--clients", type=int, default=defaults.clients,
                   help=f"client processes (default {defaults.clients})")
    p.add_argument("--servers", type=int, default=defaults.servers,
                   help=f"server processes; 0: clients go straight to S3 (default "
                        f"{defaults.servers})")
    p.add_argument("--artifacts", type=int, default=defaults.artifacts,
                   help=f"artifacts the clients log to (default {defaults.artifacts})")
    p.add_argument("--max-files", type=int, default=defaults.max_files,
                   help=f"files per version, at most (default {defaults.max_files})")
    p.add_argument("--min-kib", type=int, default=defaults.min_kib,
                   help=f"smallest file, KiB (default {defaults.min_kib})")
    p.add_argument("--max-kib", type=int, default=defaults.max_kib,
                   help=f"largest file, KiB (default {defaults.max_kib})")
    p.add_argument("--seed", type=int, default=SEED, help=f"data seed (default {SEED})")
    p.add_argument("--role", choices=("reader", "writer", "admin"), default="admin",
                   help="the role everyone holds on the servers (default admin; reader "
                        "shows what refused writes look like in the checks)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                   help="folder of server-load.json and .md (server-load-direct.* with "
                        "--servers 0; default bench/results)")
    p.add_argument("--no-write", action="store_true", help="print only, write no results")
    args = p.parse_args(argv)
    for name in ("clients", "artifacts", "max_files", "min_kib", "max_kib"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.servers < 0 or args.seconds <= 0:
        p.error("--servers must be >= 0 and --seconds positive")
    if args.min_kib > args.max_kib:
        p.error("--min-kib must not exceed --max-kib")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return worker(json.loads(argv[1]))
    args = parse_args(argv)
    params = Params(args.seconds, args.clients, args.servers, args.artifacts,
                    args.max_files, args.min_kib, args.max_kib, args.seed, args.role)
    result = run(params, say=lambda line: print(line, flush=True))
    result["machine"] = machine_facts(("artifactstore", "starlette", "uvicorn", "moto",
                                       "s3fs"))
    text = summary(result)
    print()
    print(text)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = "server-load" if params.servers else "server-load-direct"
        (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / f"{stem}.md").write_text(text + "\n")
    return 0 if not result["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
