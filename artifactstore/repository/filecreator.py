"""Creating a download's small files in helper processes: the kernel's work without
the GIL's hand-overs.

A restore of 20,000 small files makes 60,000 system calls to create, write and
close them. On a writer thread each call gives up the GIL and must take it back
from the main thread, which is busy with the next files' Python: under that
contention a thread making system calls waits up to the switch interval (5 ms)
for each, so the writer's pace was set by the main thread's, not by the disk
(docs/benchmarks.md, "Images restore, round four"). A :class:`FileCreator` sends
each file (its target, mode and checked bytes) down a pipe to one of its processes
(:mod:`._createchild`, standard library only, started isolated with ``-I -S``),
which makes those calls with no GIL to share. A folder's files go to one process
(the kernel creates a file with its folder locked, so two processes in one folder
would mostly wait for each other), the next folder's to the next: where creating a
file is slow (ext4 without a journal skips recently freed inodes, one by one, with
the folder locked) two folders are created at once.

The main thread hands a bundle of files over with one ``writev`` (the pipes are
non-blocking; what does not fit waits in a list, :data:`PENDING_BYTES` at most
across the processes, and the main thread waits in ``select`` beyond that).

The same guarantees as a writer thread's (module filewriter): only bytes already
checked against their digest are sent; each file is created new with
``O_EXCL|O_NOFOLLOW`` at a target the caller checked; a failure (as ``OSError``, or
IntegrityError for a name the manifest holds twice) is raised by a later
:meth:`FileCreator.submit` or by leaving the ``with``, which waits for the processes
(or, when the download failed, ends them) first: nothing is written into the folder
after the download gave up on it. When a process cannot be started, :meth:`start`
returns False and the caller keeps its writer thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import struct
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from artifactstore.core.errors import IntegrityError

if TYPE_CHECKING:  # imported when the processes start: a small download never needs it
    import subprocess

__all__ = ["PENDING_BYTES", "FileCreator"]

_CHILD = Path(__file__).with_name("_createchild.py")
_HEADER = struct.Struct("<IIQ")
#: bytes submitted and not yet in a pipe, at most (one bigger file alone may exceed it)
PENDING_BYTES = 8 << 20
#: bytes after which submitted files are handed over (one writev per process)
_BUNDLE_BYTES = 256 << 10
#: buffers per writev, at most (IOV_MAX is 1024 on Linux; 3 buffers a file)
_IOV = 900
#: each pipe's capacity, where the system lets it be set (Linux: F_SETPIPE_SZ)
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031


class _Lane:
    """One helper process and what waits for its pipe."""

    __slots__ = ("fd", "paths", "pending", "process")

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        self.process = process
        self.fd = process.stdin.fileno()
        os.set_blocking(self.fd, False)
        with contextlib.suppress(OSError, ImportError):
            import fcntl

            fcntl.fcntl(self.fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        #: buffers submitted and not yet written to the pipe, in order
        self.pending: list[bytes | memoryview] = []
        #: the manifest path of every record sent or pending, for errors
        self.paths: list[str] = []

    def push(self) -> int:
        """Write what the pipe takes now; returns the bytes written (0 when full)."""
        try:
            done = os.writev(self.fd, self.pending[:_IOV])
        except BlockingIOError:
            return 0
        written = done
        pending = self.pending
        i = 0
        while i < len(pending) and done >= len(pending[i]):
            done -= len(pending[i])
            i += 1
        if done:
            pending[i] = memoryview(pending[i])[done:]
        del pending[:i]
        return written

    def end(self) -> BaseException | None:
        """Close the pipe and wait; the process's failure, or None when it wrote every file."""
        process = self.process
        assert process.stdin is not None
        assert process.stdout is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        with process.stdout:
            report = process.stdout.read().decode("utf-8", "replace").strip()
        process.wait()
        return _failure_of(report, process.returncode, self.paths)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class FileCreator:
    """Creates files in ``processes`` helper processes (module docstring)."""

    def __init__(self, processes: int = 2) -> None:
        self._count = processes
        self._lanes: list[_Lane] = []
        self._lane: _Lane | None = None  # the lane of the folder being submitted
        self._turn = 0
        self._folder: str | None = None
        self._bundle = 0  # bytes submitted since the last hand-over
        self._pending = 0  # bytes submitted and not yet in a pipe

    def start(self) -> bool:
        """Start the processes; False (none left running) when they cannot run here."""
        # POSIX only: non-blocking pipes and ``select`` on them (elsewhere, the writer
        # thread). ``sys.executable`` must be a Python interpreter: in a program that
        # embeds Python (uWSGI, Blender, a frozen application) it names the program,
        # which must not be started with these arguments.
        if (os.name != "posix" or not _CHILD.is_file()
                or not os.path.basename(sys.executable or "").startswith("python")):
            return False
        import subprocess

        try:
            for _ in range(self._count):
                self._lanes.append(_Lane(subprocess.Popen(
                    [sys.executable, "-I", "-S", str(_CHILD)], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, close_fds=True)))
        except OSError:
            for lane in self._lanes:
                lane.kill()
            self._lanes = []
            return False
        return True

    def __enter__(self) -> FileCreator:
        return self

    def submit(self, target: str, mode: int, data: bytes, path: str) -> None:
        """Create ``target`` (``path`` in the manifest, its folder before the last ``/``)
        with ``mode`` and ``data``, which the caller checked; raises an earlier file's
        failure."""
        folder = path.rpartition("/")[0]
        lane = self._lane
        if folder != self._folder or lane is None:
            self._folder = folder
            lane = self._lane = self._lanes[self._turn % len(self._lanes)]
            self._turn += 1
        name = os.fsencode(target)
        lane.pending += (_HEADER.pack(len(name), mode, len(data)), name, data)
        lane.paths.append(path)
        size = len(data) + len(name) + _HEADER.size
        self._bundle += size
        self._pending += size
        if self._bundle >= _BUNDLE_BYTES:
            self.flush()

    def flush(self, limit: int = PENDING_BYTES) -> None:
        """Hand over what the pipes take now, then wait until at most ``limit`` bytes
        are left pending."""
        self._bundle = 0
        self._push()
        while self._pending > limit:
            waiting = [lane.fd for lane in self._lanes if lane.pending]
            select.select([], waiting, [])
            self._push()

    def _push(self) -> None:
        for lane in self._lanes:
            if lane.pending:
                try:
                    self._pending -= lane.push()
                except BrokenPipeError:  # the process stopped: it says why
                    raise (lane.end() or OSError(errno.EPIPE, "the file-writing process "
                                                 "ended early")) from None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._lanes:
            return
        if kind is None:
            try:
                self.flush(0)
            except BaseException:
                for lane in self._lanes:
                    lane.kill()
                raise
            failures = [lane.end() for lane in self._lanes]
            failure = next((f for f in failures if f is not None), None)
            if failure is not None:
                raise failure
            return
        # The download failed: the processes end now, so that nothing more is written
        # into a folder the caller is about to clean up.
        for lane in self._lanes:
            lane.kill()


def _failure_of(report: str, code: int | None, paths: list[str]) -> BaseException | None:
    line = report.splitlines()[-1] if report else ""
    words = line.split(" ", 4)
    if words[:1] == ["ok"] and code == 0 and len(words) == 2:
        if words[1] == str(len(paths)):
            return None
        return OSError(errno.EIO, f"the file-writing process wrote {words[1]} of "
                       f"{len(paths)} files")
    if words[:1] == ["error"] and len(words) == 5:
        index, number, target = int(words[1]), int(words[2]), words[3]
        filename = os.fsdecode(bytes.fromhex(target)) if target != "-" else None
        path = paths[index] if 0 <= index < len(paths) else filename
        if number == errno.EEXIST:  # the manifest names one file twice (O_EXCL refused)
            return IntegrityError(f"{path} collides with another path of the manifest: "
                                  "the store is damaged; run 'artifactstore verify'")
        if number:
            return OSError(number, words[4], filename)
    return OSError(errno.EIO, f"the file-writing process ended ({code}) without finishing: "
                   f"{line or 'no report'}")
