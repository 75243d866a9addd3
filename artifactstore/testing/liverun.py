"""A run that is still logging while a test watches it (the UI's live refresh): a
thread logs a first part, waits for :meth:`LiveRun.go_on`, logs the rest, and ends the
run at :meth:`LiveRun.finish`; whatever the thread raised is raised in the test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import artifactstore
from artifactstore.runs.run import Run

__all__ = ["LiveRun", "live_run"]

#: seconds any step may take before the test fails
PATIENCE = 60.0

Part = Callable[[Run], None]


class LiveRun:
    def __init__(self) -> None:
        self._more = threading.Event()
        self._finish = threading.Event()
        self._started = threading.Event()
        self._done = threading.Event()
        self.failed: list[BaseException] = []

    def go_on(self) -> None:
        """Let the run log its second part."""
        self._more.set()

    def finish(self) -> None:
        """End the run (finished) and wait until it has written its end."""
        self._more.set()
        self._finish.set()
        if not self._done.wait(PATIENCE):
            raise TimeoutError("the live run did not end")
        self.check()

    def check(self) -> None:
        if self.failed:
            raise self.failed[0]


@contextmanager
def live_run(url: str, name: str, first: Part, rest: Part) -> Iterator[LiveRun]:
    """Start run ``name`` in the store at ``url`` (created if missing) in a thread; yield
    once ``first`` has been logged. The run is let go when the block ends."""
    live = LiveRun()

    def train() -> None:
        try:
            with artifactstore.open(url, create=True) as writer, \
                    writer.run(name=name, job_type="train") as run:
                first(run)
                live._started.set()
                live._more.wait(PATIENCE)
                rest(run)
                live._finish.wait(PATIENCE)
        except BaseException as exc:  # the test raises it (check, finish)
            live.failed.append(exc)
        finally:
            live._started.set()
            live._done.set()

    worker = threading.Thread(target=train, daemon=True)
    worker.start()
    if not live._started.wait(PATIENCE):
        raise TimeoutError("the live run did not log its first part")
    live.check()
    try:
        yield live
    finally:
        live._more.set()
        live._finish.set()
        worker.join(PATIENCE)
