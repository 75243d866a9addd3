"""A million files and one huge file (issue 20), side by side with ``cp -r`` in the same run.

    python -m bench files [--files 1000000] [--folders 1000] [--big-gib 20] [--out DIR]

**Many files.** A deterministic tree of ``--files`` files of 1-8 KiB of random bytes in
``--folders`` folders (``d0000/f0000000.bin``...) is generated, then timed, each command
in a fresh process through the suite's launcher (``bench/suite/launch.py``: wall time and
the command's own peak RSS): ``cp -r`` of the tree; ``artifactstore log`` of it into a
fresh local store (``init`` defaults: a private, encrypted project); the same ``log``
again with nothing changed (the stat cache's case); a ``log`` after changing a few files of
one folder; ``ls NAME``, ``show REF FOLDER`` and ``diff V1 V3 FOLDER`` of that one folder;
and ``get`` of v1 into an empty folder (empty client cache), checked against the source
(every file's size; every file's bytes when ``--verify all``, else every 97th file's).
``cp -r`` and the restore both create the whole tree into fresh folders of the same file
system before anything is deleted (ext4's recently-deleted inode scan, bench/README.md;
deleting the copy of a million files in between also took over 15 minutes here).

**One huge file.** ``--big-gib N`` (0: skipped): a sparse file of N GiB where each MiB
holds 64 KiB of random bytes and a hole (so the disk holds about N/16 GiB of it, and the
store about as much: zero chunks dedup), logged, listed with ``show`` (the chunk list of
such a file has about 16 chunk-list parts per GiB) and restored with ``get``; the restored
file is checked by streaming it against the generator (BLAKE3 of both), then deleted.

Results: a Markdown table on stdout and ``--json``; the load average before and after.
Data lives under ``--out`` (default a temp dir) and is deleted at the end unless ``--keep``.
The logic at a tiny scale is tested in tests/test_bench_files.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LAUNCHER = Path(__file__).resolve().parent / "suite" / "launch.py"
MIB = 1 << 20
BIG_DATA_PER_MIB = 64 << 10  # random bytes at the start of each MiB of the huge file
CHANGED_FOLDER = 7  # the folder whose files v3 changes


@dataclass(frozen=True)
class Measure:
    """One timed command: what it was, wall seconds, peak RSS in bytes."""

    step: str
    seconds: float
    max_rss: int
    note: str = ""
    cpu: float = 0.0  # user + system seconds of the command (less noisy than wall time)


def file_size(index: int, seed: int) -> int:
    """1-8 KiB, deterministic per file."""
    return 1024 + (index * 2654435761 + seed) % (7 * 1024 + 1)


def folder_of(index: int, folders: int) -> str:
    return f"d{index % folders:04d}"


def relative_path(index: int, folders: int) -> str:
    return f"{folder_of(index, folders)}/f{index:07d}.bin"


def file_bytes(index: int, seed: int) -> bytes:
    return random.Random(seed * 1_000_003 + index).randbytes(file_size(index, seed))


def generate_tree(root: Path, files: int, folders: int, seed: int = 20) -> int:
    """Write the tree (idempotent: a complete tree is kept); returns its bytes."""
    marker = root.parent / f"{root.name}.complete"
    total = sum(file_size(i, seed) for i in range(files))
    if marker.exists() and marker.read_text() == f"{files} {folders} {seed}":
        return total
    shutil.rmtree(root, ignore_errors=True)
    for f in range(min(folders, files)):
        (root / f"d{f:04d}").mkdir(parents=True)
    for i in range(files):
        (root / relative_path(i, folders)).write_bytes(file_bytes(i, seed))
    marker.write_text(f"{files} {folders} {seed}")
    return total


def change_folder(root: Path, files: int, folders: int, seed: int) -> list[str]:
    """Rewrite 10 files of one folder and add one: the change v3 records."""
    folder = CHANGED_FOLDER % folders
    changed = [relative_path(i, folders) for i in range(folder, files, folders)][:10]
    for path in changed:
        (root / path).write_bytes(b"changed " + path.encode())
    added = f"d{folder:04d}/new.bin"
    (root / added).write_bytes(b"added")
    return [*changed, added]


def big_blocks(mib: int, seed: int) -> Iterator[bytes | int]:
    """The huge file as data blocks (bytes) and holes (an int: that many zero bytes)."""
    rng = random.Random(seed)
    for _ in range(mib):
        yield rng.randbytes(BIG_DATA_PER_MIB)
        yield MIB - BIG_DATA_PER_MIB


def write_big(path: Path, mib: int, seed: int) -> None:
    with open(path, "wb") as f:
        for block in big_blocks(mib, seed):
            if isinstance(block, int):
                f.seek(block, os.SEEK_CUR)
            else:
                f.write(block)
        f.truncate()


def big_digest(mib: int, seed: int) -> bytes:
    from blake3 import blake3

    hasher, zeros = blake3(), bytes(MIB - BIG_DATA_PER_MIB)
    for block in big_blocks(mib, seed):
        hasher.update(zeros if isinstance(block, int) else block)
    digest: bytes = hasher.digest()
    return digest


def file_digest(path: Path) -> bytes:
    from blake3 import blake3

    hasher = blake3()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            hasher.update(chunk)
    digest: bytes = hasher.digest()
    return digest


def check_restore(src: Path, out: Path, files: int, folders: int, every: int) -> str:
    """'' when ``out`` matches ``src`` (sizes of all, bytes of every ``every``-th file)."""
    found = sum(len(names) for _, _, names in os.walk(out))
    expected = sum(len(n) for _, _, n in os.walk(src))
    if found != expected:
        return f"{found} files restored, {expected} expected"
    for i in range(files):
        a, b = src / relative_path(i, folders), out / relative_path(i, folders)
        if a.stat().st_size != b.stat().st_size:
            return f"{b} has the wrong size"
        if i % every == 0 and a.read_bytes() != b.read_bytes():
            return f"{b} differs"
    return ""


class Runner:
    """Runs commands through the launcher with a private HOME; collects measures."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.home = work / "home"
        self.measures: list[Measure] = []
        #: the package tree the commands import (``--ab``'s "before"), None: installed
        self.pythonpath: str | None = None

    def env(self) -> dict[str, str]:
        h = self.home
        env = {**os.environ, "HOME": str(h), "XDG_CACHE_HOME": str(h / ".cache"),
               "XDG_CONFIG_HOME": str(h / ".config"), "XDG_DATA_HOME": str(h / ".local/share"),
               "LC_ALL": "C.UTF-8"}
        if self.pythonpath is not None:
            env["PYTHONPATH"] = self.pythonpath
        return env

    def run(self, step: str, args: list[str], *, note: str = "") -> str:
        report = self.work / "measured"
        report.unlink(missing_ok=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([sys.executable, "-I", "-S", str(LAUNCHER), str(report), *args],
                              env=self.env(), capture_output=True, text=True, cwd=self.work,
                              stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError(f"{step}: {' '.join(args[:4])} exited {proc.returncode}: "
                               f"{proc.stderr[-2000:]}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        rss, seconds = report.read_text().split()
        self.measures.append(Measure(step, float(seconds), int(rss), note, cpu))
        return proc.stdout

    def tool(self, step: str, args: list[str], *, note: str = "") -> str:
        return self.run(step, [sys.executable, "-m", "artifactstore", *args], note=note)


def run_files(r: Runner, files: int, folders: int, seed: int, every: int) -> None:
    src, store = r.work / "src", str(r.work / "store")
    size = generate_tree(src, files, folders, seed)
    os.sync()
    note = f"{files} files, {size / MIB:.0f} MiB"
    r.run("cp -r", ["/bin/cp", "-r", str(src), str(r.work / "cp")], note=note)
    r.tool("init", ["init", store, "-q"])
    v1 = json.loads(r.tool("log", ["--json", "log", "many", str(src), "--store", store, "-q"],
                           note=note))["ref"]
    v2 = json.loads(r.tool("re-log unchanged",
                           ["--json", "log", "many", str(src), "--store", store, "-q"]))["ref"]
    changed = change_folder(src, files, folders, seed)
    (r.work / "src.complete").unlink()  # the tree is no longer the generated one
    v3 = json.loads(r.tool("log after a change", ["--json", "log", "many", str(src),
                                                  "--store", store, "-q"],
                           note=f"{len(changed)} files of one folder"))["ref"]
    folder = f"d{CHANGED_FOLDER % folders:04d}"
    r.tool("ls NAME", ["ls", "many", "--store", store])
    listed = r.tool("show REF FOLDER", ["--json", "show", v1, folder, "--store", store])
    shown = len(json.loads(listed)["files"])
    diffed = r.tool("diff V1 V3 FOLDER", ["--json", "diff", v1, v3, folder, "--store", store])
    changes = len(json.loads(diffed)["changes"])
    if changes != len(changed):
        raise RuntimeError(f"diff found {changes} changes, {len(changed)} made")
    out = r.work / "restore"
    r.tool("get (restore v1)", ["get", v1, "--dir", str(out), "--store", store, "-q"],
           note=f"{v2} is {v1}'s tree again; show listed {shown}")
    # v1 is the generated tree: regenerate the changed files before checking
    for path in changed:
        index = int(path.rsplit("f", 1)[-1].split(".")[0]) if "new" not in path else -1
        if index >= 0:
            (src / path).write_bytes(file_bytes(index, seed))
    (src / changed[-1]).unlink()
    (r.work / "src.complete").write_text(f"{files} {folders} {seed}")
    problem = check_restore(src, out, files, folders, every)
    if problem:
        raise RuntimeError(f"restore differs: {problem}")


def run_shared(r: Runner, src: Path, folders: int, every: int) -> None:
    """The many-files steps on an existing tree that must stay unchanged (``--source``
    without ``--ab``): ``log``, unchanged re-``log``, ``ls``/``show`` of one folder,
    ``get`` of the version into an empty folder (empty client cache) checked against
    ``src``, and ``cp -r`` of ``src`` in the same window. No change step (it would write
    into ``src``). Both copies stay until the end (see the module's note on deleting)."""
    store = str(r.work / "store")
    files = sum(len(names) for _, _, names in os.walk(src))
    note = f"{files} files"
    r.tool("init", ["init", store, "-q"])
    log = ["--json", "log", "many", str(src), "--store", store, "-q"]
    v1 = json.loads(r.tool("log", log, note=note))["ref"]
    r.tool("re-log unchanged", log)
    folder = f"d{CHANGED_FOLDER % folders:04d}"
    r.tool("ls NAME", ["ls", "many", "--store", store])
    r.tool("show REF FOLDER", ["--json", "show", v1, folder, "--store", store])
    shutil.rmtree(r.home / ".cache", ignore_errors=True)  # an empty client cache
    out = r.work / "restore"
    r.tool("get (restore v1)", ["get", v1, "--dir", str(out), "--store", store, "-q"],
           note="empty client cache")
    problem = check_restore(src, out, files, folders, every)
    if problem:
        raise RuntimeError(f"restore differs: {problem}")
    r.run("cp -r", ["/bin/cp", "-r", str(src), str(r.work / "cp")], note=note)


def run_ab(r: Runner, src: Path, before: Path, rounds: int, folders: int) -> None:
    """``log``, unchanged re-``log`` and a re-``log`` after a change of one folder, of the
    package tree ``before`` (PYTHONPATH) and of this one, alternately, ``rounds`` times,
    each in a fresh store and HOME; beside one ``cp -r`` of ``src``. The commands log
    the copy (``src`` is only read: it may be a shared tree), whose changed files are
    put back after each variant."""
    tree = r.work / "cp"
    files = sum(len(names) for _, _, names in os.walk(src))
    r.run("cp -r", ["/bin/cp", "-r", str(src), str(tree)], note=f"{files} files")
    folder = tree / f"d{CHANGED_FOLDER % folders:04d}"
    originals = sorted(folder.iterdir())[:10]
    for round_no in range(rounds):
        # Both by PYTHONPATH, and the commands run from ``work``: a package in the
        # current folder would come first on ``-m``'s path.
        variants = (("before", str(before)), ("after", str(Path(__file__).resolve().parents[1])))
        for name, path in variants[1:] if str(before) == "none" else variants:
            r.pythonpath, r.home = path, r.work / f"home-{name}"
            store = r.work / f"store-{name}"
            for old in (r.home, store):
                shutil.rmtree(old, ignore_errors=True)
            tag = f"[{name} {round_no + 1}]"
            r.tool(f"init {tag}", ["init", str(store), "-q"])
            log = ["--json", "log", "many", str(tree), "--store", str(store), "-q"]
            r.tool(f"log {tag}", log)
            r.tool(f"re-log unchanged {tag}", log)
            kept = {p: p.read_bytes() for p in originals}
            for p in originals:
                p.write_bytes(b"changed " + p.name.encode())
            (folder / "new.bin").write_bytes(b"added")
            r.tool(f"log after 11 changes {tag}", log)
            for p, data in kept.items():
                p.write_bytes(data)
            (folder / "new.bin").unlink()
            shutil.rmtree(store, ignore_errors=True)
    r.pythonpath = None


def run_big(r: Runner, mib: int, seed: int) -> None:
    folder = r.work / "big"
    folder.mkdir(exist_ok=True)
    path = folder / "huge.bin"
    write_big(path, mib, seed)
    os.sync()
    store = str(r.work / "bigstore")
    note = f"{mib / 1024:g} GiB sparse ({BIG_DATA_PER_MIB >> 10} KiB data per MiB)"
    r.tool("big: init", ["init", store, "-q"])
    ref = json.loads(r.tool("big: log", ["--json", "log", "huge", str(path), "--store", store,
                                         "-q"], note=note))["ref"]
    r.tool("big: show", ["show", ref, "--store", store])
    out = r.work / "bigout"
    r.tool("big: get", ["get", ref, "--dir", str(out), "--store", store, "-q"])
    restored = out / "huge.bin"
    if file_digest(restored) != big_digest(mib, seed):
        raise RuntimeError("the restored huge file differs")
    restored.unlink()


def table(measures: list[Measure]) -> str:
    by = {m.step: m for m in measures}
    lines = ["| step | seconds | CPU s | peak RSS MiB | vs cp | note |",
             "| --- | --- | --- | --- | --- | --- |"]
    for m in measures:
        base = None if m.step.startswith("big") else by.get("cp -r")
        ratio = f"{m.seconds / base.seconds:.2f}x" if base and base.seconds else ""
        lines.append(f"| {m.step} | {m.seconds:.2f} | {m.cpu:.2f} | {m.max_rss / MIB:.0f} "
                     f"| {ratio} | {m.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench files", description=__doc__.split("\n\n")[0])
    p.add_argument("--files", type=int, default=1_000_000,
                   help="files of the generated tree (default 1,000,000; 0: no many-files case)")
    p.add_argument("--folders", type=int, default=1000,
                   help="folders the files are spread over (default 1,000)")
    p.add_argument("--big-gib", type=float, default=0, help="huge-file case, GiB (0: skip)")
    p.add_argument("--seed", type=int, default=20,
                   help="seed of the generated bytes and sizes (default 20)")
    p.add_argument("--verify", choices=("all", "sample"), default="sample",
                   help="check every restored file's bytes, or every 97th (default sample; "
                   "every file's size is always checked)")
    p.add_argument("--out", type=Path, default=None, help="work dir (kept with --keep)")
    p.add_argument("--keep", action="store_true", help="keep the generated source tree")
    p.add_argument("--json", type=Path, default=None,
                   help="also write the measures, load and machine facts to this JSON file")
    p.add_argument("--ab", type=Path, default=None, metavar="BEFORE",
                   help="only the log steps, of the package tree BEFORE and of this one, "
                   "alternately (see run_ab); 'none': of this one only")
    p.add_argument("--source", type=Path, default=None,
                   help="an existing tree of the generator, only read: with --ab the tree "
                   "the log steps copy; without, log/re-log/ls/show/get of it beside cp -r "
                   "(see run_shared)")
    p.add_argument("--rounds", type=int, default=2,
                   help="with --ab: how many times each package tree runs (default 2)")
    p.add_argument("--pythonpath", type=Path, default=None, metavar="TREE",
                   help="without --ab: run the commands with the package in TREE "
                   "(PYTHONPATH; e.g. a `git archive` of another commit), not the installed one")
    args = p.parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="million-"))
    work.mkdir(parents=True, exist_ok=True)
    for old in ("cp", "store", "restore", "home", "bigstore", "bigout", "big"):
        shutil.rmtree(work / old, ignore_errors=True)
    r = Runner(work)
    load = [Path("/proc/loadavg").read_text().split()[0]]
    started = time.time()
    try:
        if args.ab is not None:
            src = args.source
            if src is None:
                src = work / "src"
                generate_tree(src, args.files, args.folders, args.seed)
            run_ab(r, src, args.ab, args.rounds, args.folders)
        elif args.source is not None:
            r.pythonpath = None if args.pythonpath is None else str(args.pythonpath)
            run_shared(r, args.source, args.folders, 1 if args.verify == "all" else 97)
        elif args.files:
            r.pythonpath = None if args.pythonpath is None else str(args.pythonpath)
            run_files(r, args.files, args.folders, args.seed,
                      1 if args.verify == "all" else 97)
        if args.big_gib:
            # the disk holds one case at a time
            for old in ("cp", "store", "restore", "home", *(() if args.keep else ("src",))):
                shutil.rmtree(work / old, ignore_errors=True)
            run_big(r, round(args.big_gib * 1024), args.seed)
    finally:
        load.append(Path("/proc/loadavg").read_text().split()[0])
        print(table(r.measures))
        from bench.machine import machine_facts

        facts = machine_facts(["msgpack", "blake3", "zstandard"])
        print(f"load average before/after: {load[0]} / {load[1]}; "
              f"{time.time() - started:.0f} s in all; {facts}")
        if args.json:
            args.json.write_text(json.dumps({"measures": [asdict(m) for m in r.measures],
                                             "load": load, "machine": facts}, indent=1))
        for old in ("cp", "store", "restore", "bigstore", "bigout", "big", "home",
                    "home-before", "home-after", "store-before", "store-after"):
            shutil.rmtree(work / old, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
