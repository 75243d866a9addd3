"""The download's writer thread (repository/filewriter.py): jobs run in order, a
failure reaches the caller, and nothing runs after the download failed."""

from __future__ import annotations

import threading
from functools import partial

import pytest

from artifactstore.core.errors import IntegrityError
from artifactstore.repository.filewriter import BUNDLE_JOBS, FileWriter


def test_jobs_run_in_order_on_another_thread_within_the_budget() -> None:
    done: list[int] = []
    threads: set[str] = set()

    def job(i: int) -> None:
        threads.add(threading.current_thread().name)
        done.append(i)

    with FileWriter(pending=1000) as writer:
        for i in range(3 * BUNDLE_JOBS + 5):
            writer.submit(partial(job, i), 100)
    assert done == list(range(3 * BUNDLE_JOBS + 5))
    assert threads == {"artifactstore-write_0"}


def test_a_failed_job_is_raised_and_the_jobs_after_it_are_skipped() -> None:
    ran: list[int] = []

    def job(i: int) -> None:
        if i == 3:
            raise IntegrityError("f3: damaged")
        ran.append(i)

    def write_all() -> None:
        with FileWriter() as writer:
            for i in range(BUNDLE_JOBS * 4):
                writer.submit(partial(job, i), 10)

    with pytest.raises(IntegrityError, match="f3: damaged"):
        write_all()
    assert ran == [0, 1, 2]


def test_a_failure_of_the_caller_skips_the_jobs_not_started() -> None:
    gate = threading.Event()
    ran: list[int] = []

    def job(i: int) -> None:
        gate.wait(10)
        ran.append(i)

    def fail_after_two_bundles() -> None:
        with FileWriter() as writer:
            for i in range(BUNDLE_JOBS * 2):  # two bundles: the first starts and waits
                writer.submit(partial(job, i), 10)
            gate.set()
            raise KeyError("the download failed")

    with pytest.raises(KeyError):
        fail_after_two_bundles()
    assert ran == list(range(len(ran)))
    assert len(ran) <= BUNDLE_JOBS
