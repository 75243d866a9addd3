"""Run one command and write its wall time and peak RSS to a report file.

    python -I -S launch.py REPORT EXE [ARG ...]

Why a launcher: on Linux a child's ``ru_maxrss`` is at least the peak RSS of the
process that started it, because ``execve`` records the old address space's
high-water mark (the parent's, after ``fork`` or ``vfork``) in the child's
accounting. Started from the benchmark process (which holds the generated data's
file lists and, in the S3 case, moto with every uploaded object), each tool would
report the benchmark's own peak. This launcher is a fresh, small interpreter
(``-I -S``, standard library ``os``/``sys``/``time`` only, about 8 MiB), so the
command it spawns reports its own peak, with that as the floor.

The report is one line: ``<ru_maxrss in bytes> <seconds>``, where seconds run from
just before the spawn to the reaped exit, so the launcher's own start is not timed.
``ru_maxrss`` covers the command's waited-for children too. The exit code is the
command's (128 + N when signal N killed it). Standard streams and the working
folder are inherited.
"""

import os
import sys
import time


def main() -> int:
    report, exe, *args = sys.argv[1:]
    t0 = time.perf_counter()
    pid = os.posix_spawn(exe, [exe, *args], os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - t0
    with open(report, "w") as f:
        f.write(f"{usage.ru_maxrss * 1024} {seconds!r}\n")  # ru_maxrss is in KiB on Linux
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
