"""Run D of "A million files, round two": the final code's log and unchanged re-logs of
the shared million-file tree (only read), through the suite's launcher."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, "/tmp/stream-after2")  # the frozen tree of the measured commit
from bench.files_scale import Runner


def main() -> None:
    work = Path("/tmp/stream-1m-final")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    r = Runner(work)
    r.pythonpath = "/tmp/stream-after2"
    load = [Path("/proc/loadavg").read_text().split()[0]]
    store, src = str(work / "store"), "/tmp/million-1m/src"
    log = ["--json", "log", "many", src, "--store", store, "-q"]
    r.tool("init", ["init", store, "-q"])
    r.tool("log", log)
    r.tool("re-log unchanged", log)
    r.tool("re-log unchanged (2)", log)
    load.append(Path("/proc/loadavg").read_text().split()[0])
    out = {"measures": [asdict(m) for m in r.measures], "load": load}
    Path("/tmp/stream-1m-final.json").write_text(json.dumps(out, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
