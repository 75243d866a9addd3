"""Web UI at scale: the runs table and a run page of a project of 1,000 runs x 10,000 steps x
10 metrics, served by ``artifactstore ui`` and loaded in headless Chromium (issue 17).

The target: the runs table (first paint) and a run page with 10 charts each load in
under 1 s.

Steps:

* **build** (cached): a local store with one project of ``--runs`` runs, each logged
  through the public API as a training script would (``store.run(...)`` with a config
  and tags, ``run.log({...})`` once per step with ``--metrics`` values, a summary value
  set at the end). The store lives in ``--cache`` under a folder named by the parameters;
  a ``build.json`` written last marks it complete, so a later run with the same
  parameters reuses it (``--rebuild`` forces a new one). The build reports its logging
  rate (rows per second, one row = one ``run.log`` call).
* **serve**: ``python -m artifactstore ui --port 0 --json`` in a child process (the
  user's command, on 127.0.0.1), with the per-user cache (the local catalog) kept in
  the build folder. Each page is measured on a fresh server: its first request is
  **cold** (first request after start), then ``--warm`` more loads give the **warm**
  median. The server's peak RSS (``VmHWM``) is read before it stops.
* **measure** in headless Chromium (``artifactstore.testing.browser``, the system
  Chromium): per load, the server's handler time (its ``Server-Timing`` header, as the
  browser's Performance API reports it), time to first byte, first contentful paint and
  the time at which ``<body data-ready="true">`` (every chart drawn), all from the
  navigation start. The JSON twin of each page (``/api/p/...``) is fetched once for its
  size and server time.

Nothing leaves 127.0.0.1; the server is stopped by its process id.
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
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

try:
    from bench.machine import git_describe, machine_facts
except ImportError:  # run as a script (python bench/ui_scale.py): bench/ itself is on sys.path
    from machine import git_describe, machine_facts  # type: ignore[import-not-found,no-redef]

SEED: Final = 20261206
PROJECT: Final = "ui-scale"
DEFAULT_RUNS: Final = 1000
DEFAULT_STEPS: Final = 10_000
DEFAULT_METRICS: Final = 10
DEFAULT_WARM: Final = 5
TARGET_S: Final = 1.0
#: the names of the first metrics, as a training script logs them; more are ``metric_<i>``
METRIC_NAMES: Final = ("loss", "val_loss", "acc", "val_acc", "lr", "grad_norm", "throughput",
                       "perplexity", "f1", "recall")
OPTIMIZERS: Final = ("adam", "adamw", "sgd", "lion")
TAGS: Final = ("baseline", "sweep", "ablation", "long", "fp16", "bf16", "augment")
#: ready when this is truthy (ui.js sets it when every page script has settled); functions,
#: not expressions: Playwright runs a bare expression with eval(), which the CSP refuses
READY: Final = "() => document.body && document.body.dataset.ready === 'true'"
#: truthy once the browser recorded the page's first contentful paint
PAINTED: Final = "() => performance.getEntriesByName('first-contentful-paint').length > 0"


@dataclass(frozen=True, slots=True)
class Params:
    """What the built project holds; equal parameters reuse the same build."""

    runs: int
    steps: int
    metrics: int
    seed: int = SEED

    @property
    def rows(self) -> int:
        return self.runs * self.steps

    @property
    def folder(self) -> str:
        return f"runs{self.runs}-steps{self.steps}-metrics{self.metrics}-seed{self.seed}"


# -- the project -----------------------------------------------------------------------


def metric_names(count: int) -> list[str]:
    return [METRIC_NAMES[i] if i < len(METRIC_NAMES) else f"metric_{i}" for i in range(count)]


def run_config(params: Params, index: int) -> dict[str, Any]:
    """The config of run ``index``: a hyper-parameter sweep, deterministic."""
    rng = random.Random(params.seed * 1_000_003 + index)
    return {
        "lr": round(10 ** rng.uniform(-5, -1), 8),
        "batch": rng.choice((16, 32, 64, 128, 256)),
        "optimizer": rng.choice(OPTIMIZERS),
        "seed": index,
        "epochs": rng.randint(1, 100),
        "dropout": round(rng.uniform(0.0, 0.5), 3),
        "warmup": rng.choice((0, 100, 500, 1000)),
        "weight_decay": round(10 ** rng.uniform(-6, -2), 8),
        "model": {"layers": rng.choice((6, 12, 24)), "width": rng.choice((256, 512, 1024))},
    }


def run_tags(params: Params, index: int) -> list[str]:
    rng = random.Random(params.seed * 7 + index)
    return sorted(rng.sample(TAGS, rng.randint(0, 3)))


def _curves(params: Params) -> list[list[float]]:
    """Per metric, a base curve over the steps (shared by the runs, scaled per run)."""
    n = max(1, params.steps)
    curves = []
    for m in range(params.metrics):
        kind = m % 4
        if kind == 0:  # a loss: decays
            curves.append([2.5 * math.exp(-4 * s / n) + 0.1 for s in range(n)])
        elif kind == 1:  # an accuracy: rises
            curves.append([0.95 - 0.85 * math.exp(-5 * s / n) for s in range(n)])
        elif kind == 2:  # a schedule: warm-up then cosine
            curves.append([min(1.0, s / (0.05 * n + 1)) * 0.5 * (1 + math.cos(math.pi * s / n))
                           for s in range(n)])
        else:  # a noisy level
            curves.append([1.0 + 0.3 * math.sin(s / 50) for s in range(n)])
    return curves


def log_run(store: Any, params: Params, index: int, curves: list[list[float]]) -> float:
    """Log run ``index``; the seconds spent in ``run.log`` calls (the rows' own cost)."""
    names = metric_names(params.metrics)
    rng = random.Random(params.seed * 31 + index)
    scale = [rng.uniform(0.7, 1.3) for _ in names]
    noise = [rng.uniform(0.005, 0.05) for _ in names]
    spent = 0.0
    uniform = rng.random
    with store.run(name=f"run-{index:04d}", job_type="train",
                   config=run_config(params, index), tags=run_tags(params, index),
                   capture_code=False) as run:
        pairs = list(zip(names, scale, noise, curves, strict=True))
        for step in range(params.steps):
            row = {name: c[step] * k + (uniform() - 0.5) * z for name, k, z, c in pairs}
            t0 = time.perf_counter()
            run.log(row)
            spent += time.perf_counter() - t0
        if params.steps:
            first = names[0]
            run.summary[f"best_{first}"] = min(curves[0]) * scale[0]
    return spent


def build(params: Params, store_path: Path,
          progress: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Log the whole project into a new local store at ``store_path``; the build's figures."""
    import artifactstore

    curves = _curves(params)
    store = artifactstore.open(str(store_path), PROJECT, create=True)
    t0 = time.perf_counter()
    log_s = 0.0
    try:
        for index in range(params.runs):
            log_s += log_run(store, params, index, curves)
            if progress is not None:
                progress(index + 1, time.perf_counter() - t0)
        sync_t0 = time.perf_counter()
        listed = len(store.runs())
        sync_s = time.perf_counter() - sync_t0
    finally:
        store.close()
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "log_seconds": log_s,
        "rows": params.rows,
        "rows_per_s": params.rows / log_s if log_s else 0.0,
        "runs_listed": listed,
        "first_listing_s": sync_s,
        "store_bytes": tree_bytes(store_path),
    }


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cached_build(params: Params, cache: Path, *, rebuild: bool = False,
                 log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """The build folder of ``params`` under ``cache`` (reused when complete) and its figures.

    The folder holds ``store/`` (the store), ``client/`` (the per-user cache: the local
    catalog) and ``build.json`` (written last: the parameters and the build's figures).
    """
    root = cache / params.folder
    marker = root / "build.json"
    if not rebuild and marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("params") == asdict(params):
            log(f"reusing the build in {root} (built {done['date']})")
            return root, done
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log(f"building {params.runs:,} runs x {params.steps:,} steps x {params.metrics} metrics "
        f"in {root} ...")
    every = max(1, params.runs // 20)

    def progress(done: int, seconds: float) -> None:
        if done % every == 0 or done == params.runs:
            log(f"  {done:,}/{params.runs:,} runs, {seconds:.0f} s")

    with client_cache(root / "client"):
        figures = build(params, root / "store", progress)
    done = {"params": asdict(params),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "git": git_describe(), "build": figures}
    marker.write_text(json.dumps(done, indent=2) + "\n")
    return root, done


@contextmanager
def client_cache(path: Path) -> Iterator[None]:
    """This process's per-user cache (the catalog) at ``path`` for the block."""
    before = os.environ.get("ARTIFACTSTORE_CACHE_DIR")
    os.environ["ARTIFACTSTORE_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("ARTIFACTSTORE_CACHE_DIR", None)
        else:
            os.environ["ARTIFACTSTORE_CACHE_DIR"] = before


# -- the server ------------------------------------------------------------------------


@dataclass
class Server:
    """``artifactstore ui`` in a child process."""

    process: subprocess.Popen[str]
    url: str
    start_s: float

    def peak_rss(self) -> int:
        """The process's peak resident set (``VmHWM``), in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


@contextmanager
def served(root: Path, client: Path | None = None) -> Iterator[Server]:
    """The UI of the build at ``root`` on 127.0.0.1 (any free port), stopped on exit;
    ``client`` is the per-user cache it uses (default: the build's, its catalog synced)."""
    env = {**os.environ, "ARTIFACTSTORE_CACHE_DIR": str(client or root / "client"),
           "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "artifactstore", "ui", "--store", str(root / "store"),
            "--project", PROJECT, "--host", "127.0.0.1", "--port", "0", "--json"]
    t0 = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"the UI did not start: {process.communicate()[1][-2000:]}")
        server = Server(process, json.loads(line)["url"], time.perf_counter() - t0)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- one page load in the browser --------------------------------------------------------

#: injected before the page's own scripts: notes when data-ready turns true
_READY_PROBE: Final = """
(() => {
  const seen = () => {
    if (document.body && document.body.dataset.ready === 'true' && !window.__readyAt) {
      window.__readyAt = performance.now();
    }
  };
  new MutationObserver(seen).observe(document, {attributes: true, subtree: true,
                                                attributeFilter: ['data-ready']});
})();
"""

#: what the Performance API says of the last navigation
_TIMINGS: Final = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const server = (nav.serverTiming || []).find(t => t.name === 'handler');
  return {
    server_ms: server ? server.duration : null,
    ttfb_ms: nav.responseStart,
    response_end_ms: nav.responseEnd,
    dom_content_loaded_ms: nav.domContentLoadedEventEnd,
    load_ms: nav.loadEventEnd,
    fcp_ms: paint ? paint.startTime : null,
    ready_ms: window.__readyAt || null,
    html_bytes: nav.decodedBodySize,
  };
}"""


def load(page: Any, url: str) -> dict[str, Any]:
    """Open ``url`` in ``page`` (a SealedPage), wait for data-ready; its timings."""
    page.open(url)
    page.wait_for(READY, timeout=120)
    page.wait_for(PAINTED, timeout=120)  # the paint entry may come after data-ready
    result: dict[str, Any] = page.evaluate(_TIMINGS)
    return result


def fetch_json(url: str) -> dict[str, Any]:
    """The JSON twin: its size and the server's handler time."""
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        body = answer.read()
        timing = answer.headers.get("Server-Timing", "")
    seconds = time.perf_counter() - t0
    dur = next((float(p.split("=", 1)[1]) for p in timing.split(";") if p.startswith("dur=")),
               None)
    return {"bytes": len(body), "server_ms": dur, "seconds": seconds}


def measure_page(browser: Any, root: Path, path: str, warm: int,
                 check: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """``path`` (under the server's URL) on a fresh server: one cold load, ``warm`` more."""
    from artifactstore.testing.browser import SealedPage

    with served(root) as server, SealedPage(browser) as page:
        page.page.add_init_script(_READY_PROBE)
        base = server.url.rstrip("/")
        cold = load(page, base + path)
        seen = check(page) if check is not None else {}
        warms = [load(page, base + path) for _ in range(warm)]
        twin = fetch_json(base + "/api" + path)
        errors = list(page.errors)
        rss = server.peak_rss()
        server.stop()
    return {"path": path, "server_start_s": server.start_s, "cold": cold, "warm": warms,
            "warm_median": medians(warms), "json": twin, "peak_rss": rss,
            "console_errors": errors, **seen}


def medians(loads: list[dict[str, Any]]) -> dict[str, float | None]:
    keys = loads[0].keys() if loads else ()
    out: dict[str, float | None] = {}
    for key in keys:
        values = [x[key] for x in loads if x[key] is not None]
        out[key] = statistics.median(values) if values else None
    return out


def _table_facts(page: Any) -> dict[str, Any]:
    facts: dict[str, Any] = page.evaluate("""() => ({
        rows: document.querySelectorAll('#runs tbody tr').length,
        columns: document.querySelectorAll('#runs thead th').length})""")
    return facts


def _chart_facts(page: Any) -> dict[str, Any]:
    facts: dict[str, Any] = page.evaluate("""() => ({
        charts: document.querySelectorAll('.chart').length,
        drawn: [...document.querySelectorAll('.chart canvas')]
            .filter(c => c.width > 0 && c.height > 0).length})""")
    return facts


def measure(root: Path, warm: int, browser: Any = None) -> dict[str, Any]:
    """Both pages, each on a fresh server, in one headless Chromium (``browser``, else
    one launched here: Playwright's sync API runs one instance per thread)."""
    from artifactstore.testing.browser import chromium

    if browser is None:
        with chromium() as launched:
            return measure(root, warm, launched)
    run_id = chosen_run(root)
    pages: dict[str, Any] = {}
    pages["runs_table"] = measure_page(browser, root, f"/p/{PROJECT}/", warm, _table_facts)
    pages["run_page"] = measure_page(browser, root, f"/p/{PROJECT}/runs/{run_id}", warm,
                                     _chart_facts)
    pages["run_page"]["run_id"] = run_id
    return pages


def empty_catalog(root: Path) -> dict[str, Any]:
    """A server on an empty per-user cache (another machine, or a cleared cache): its
    start includes the catalog's first sync of every run; then the runs table's JSON."""
    client = Path(tempfile.mkdtemp(prefix="artifactstore-ui-client-"))
    try:
        with served(root, client) as server:
            first = fetch_json(server.url.rstrip("/") + f"/api/p/{PROJECT}/")
            rss = server.peak_rss()
            server.stop()
    finally:
        shutil.rmtree(client, ignore_errors=True)
    return {"server_start_s": server.start_s, "runs_table_json": first, "peak_rss": rss}


def chosen_run(root: Path) -> str:
    """The run the run page shows: the middle one by start time."""
    import artifactstore

    with client_cache(root / "client"):
        store = artifactstore.open(str(root / "store"), PROJECT, create=False)
        try:
            runs = store.runs()
        finally:
            store.close()
    if not runs:
        raise SystemExit("the built project has no runs; use --rebuild")
    return str(runs[len(runs) // 2].run_id)


# -- report ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    facts = machine_facts(("artifactstore", "starlette", "uvicorn", "jinja2", "playwright"))
    chromium = None
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        chromium = subprocess.run(["chromium", "--version"], capture_output=True, text=True,
                                  check=False, timeout=60).stdout.strip() or None
    return {**facts, "chromium": chromium}


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def table(result: dict[str, Any]) -> str:
    """The page loads as a Markdown table (milliseconds from navigation start)."""
    head = ("page", "load", "server (handler) ms", "first byte ms", "first paint ms",
            "data-ready ms", "HTML KB", "JSON twin KB")
    lines = ["| " + " | ".join(head) + " |", "| --- | --- |" + " ---: |" * 6]
    names = {"runs_table": "runs table", "run_page": "run page"}
    for key, label in names.items():
        page = result["pages"][key]
        warm_n = len(page["warm"])
        for which, t in (("cold", page["cold"]), (f"warm (median of {warm_n})",
                                                  page["warm_median"])):
            lines.append("| " + " | ".join((
                label, which, _ms(t["server_ms"]), _ms(t["ttfb_ms"]), _ms(t["fcp_ms"]),
                _ms(t["ready_ms"]), f"{(t['html_bytes'] or 0) / 1000:,.0f}",
                f"{page['json']['bytes'] / 1000:,.0f}")) + " |")
    return "\n".join(lines)


def verdict(result: dict[str, Any]) -> tuple[bool, str]:
    """Whether every load (cold and warm median) was ready in under the target."""
    worst = 0.0
    for page in result["pages"].values():
        for t in (page["cold"], page["warm_median"]):
            ready = t["ready_ms"]
            worst = max(worst, math.inf if ready is None else ready / 1000)
    ok = worst < TARGET_S
    return ok, (f"target: each page ready in < {TARGET_S:.0f} s (cold and warm): "
                f"{'met' if ok else 'MISSED'} (slowest {worst:.3f} s)")


def summary_lines(result: dict[str, Any]) -> list[str]:
    p, b = result["params"], result["build"]
    info = result["machine"]
    table_page, run_page = result["pages"]["runs_table"], result["pages"]["run_page"]
    return [
        f"artifactstore web UI at scale, {result['date']}; {info['cpu']}, {info['cores']} "
        f"cores, {info['ram_gib']} GiB RAM, {info['os']}, python {info['python']}, "
        f"{info['chromium'] or 'chromium ?'}" + (f"; git {info['git']}" if info["git"] else ""),
        f"project: {p['runs']:,} runs x {p['steps']:,} steps x {p['metrics']} metrics "
        f"({p['runs'] * p['steps']:,} rows); store {b['store_bytes'] / 1e9:.2f} GB; "
        f"{'reused build of ' + result['built'] if result['reused'] else 'built now'}: "
        f"{b['seconds']:.0f} s, run.log {b['rows_per_s']:,.0f} rows/s",
        f"runs table: {table_page.get('rows', '?')} rows x {table_page.get('columns', '?')} "
        f"columns; run page {run_page['run_id']}: {run_page.get('charts', '?')} charts, "
        f"{run_page.get('drawn', '?')} canvases drawn",
        f"server: started in {table_page['server_start_s']:.2f} s; peak RSS "
        f"{table_page['peak_rss'] / 2**20:.0f} MiB (runs table server), "
        f"{run_page['peak_rss'] / 2**20:.0f} MiB (run page server); console errors: "
        f"{len(table_page['console_errors']) + len(run_page['console_errors'])}",
        f"empty local catalog (first sync at start): server started in "
        f"{result['empty_catalog']['server_start_s']:.2f} s, then the runs table's "
        f"JSON in {result['empty_catalog']['runs_table_json']['seconds'] * 1000:.0f}"
        f" ms; peak RSS {result['empty_catalog']['peak_rss'] / 2**20:.0f} MiB",
        f"load average before/after: {result['load_average']['before'][0]:.2f} / "
        f"{result['load_average']['after'][0]:.2f}",
    ]


# -- main --------------------------------------------------------------------------------


def default_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "artifactstore-bench" / "ui"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench ui",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                   help=f"runs in the project (default {DEFAULT_RUNS})")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"run.log rows per run (default {DEFAULT_STEPS})")
    p.add_argument("--metrics", type=int, default=DEFAULT_METRICS,
                   help=f"metrics per row (default {DEFAULT_METRICS})")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the generated values")
    p.add_argument("--warm", type=int, default=DEFAULT_WARM,
                   help=f"warm loads per page after the cold one (default {DEFAULT_WARM})")
    p.add_argument("--cache", type=Path, default=None,
                   help="folder of the cached builds (default "
                        "$XDG_CACHE_HOME/artifactstore-bench/ui)")
    p.add_argument("--rebuild", action="store_true",
                   help="build the project again even when a complete build matches")
    p.add_argument("--build-only", action="store_true", help="build (or reuse), do not serve")
    p.add_argument("--json", type=Path, default=None,
                   help="also write the results as JSON to this file")
    args = p.parse_args(argv)
    for name in ("runs", "steps", "metrics", "warm"):
        if getattr(args, name) < (0 if name == "warm" else 1):
            p.error(f"--{name} must be {'>= 0' if name == 'warm' else 'positive'}")
    args.cache = args.cache or default_cache()
    return args


def main(argv: list[str] | None = None, browser: Any = None) -> int:
    """``browser``: an open Playwright Chromium to use (tests), else one is launched."""
    args = parse_args(argv)
    params = Params(args.runs, args.steps, args.metrics, args.seed)
    started = datetime.datetime.now(datetime.UTC)
    built_before = (args.cache / params.folder / "build.json").is_file() and not args.rebuild
    root, done = cached_build(params, args.cache, rebuild=args.rebuild,
                              log=lambda m: print(m, flush=True))
    build_figures = done["build"]
    print(f"build: {build_figures['seconds']:.0f} s, run.log {build_figures['rows_per_s']:,.0f}"
          f" rows/s ({build_figures['log_seconds']:.0f} s in run.log for "
          f"{build_figures['rows']:,} rows)", flush=True)
    if args.build_only:
        return 0
    load_before = os.getloadavg()
    pages = measure(root, args.warm, browser)
    cold_catalog = empty_catalog(root)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "params": asdict(params),
        "settings": {"warm": args.warm, "target_s": TARGET_S, "build": str(root),
                     "server": "python -m artifactstore ui (child process, 127.0.0.1)",
                     "browser": "headless system Chromium via Playwright, 1280x800"},
        "reused": built_before,
        "built": done["date"],
        "build": build_figures,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "pages": pages,
        "empty_catalog": cold_catalog,
    }
    ok, text = verdict(result)
    result["target_met"] = ok
    print()
    print("\n".join(summary_lines(result)))
    print()
    print(table(result))
    print()
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
