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


def test_each_folder_runs_on_one_thread_and_the_next_folder_on_the_next() -> None:
    done: dict[str, list[tuple[str, int]]] = {}
    lock = threading.Lock()

    def job(folder: str, i: int) -> None:
        with lock:
            done.setdefault(threading.current_thread().name, []).append((folder, i))

    with FileWriter(threads=2, pending=1 << 20) as writer:
        for folder in ("a", "b", "c", "d"):
            for i in range(2 * BUNDLE_JOBS + 3):
                writer.submit(partial(job, folder, i), 100, folder)
    # every folder whole on one thread, in order; consecutive folders on both threads
    threads_of = {folder: {name for name, jobs in done.items() if (folder, 0) in jobs}
                  for folder in "abcd"}
    assert all(len(names) == 1 for names in threads_of.values())
    assert threads_of["a"] != threads_of["b"]
    assert threads_of["b"] != threads_of["c"]
    for jobs in done.values():
        for folder in "abcd":
            ran = [i for f, i in jobs if f == folder]
            assert ran in ([], list(range(2 * BUNDLE_JOBS + 3)))


def test_tiny_folders_share_a_bundle() -> None:
    names: list[str] = []

    def job() -> None:
        names.append(threading.current_thread().name)

    with FileWriter(threads=2) as writer:
        for i in range(BUNDLE_JOBS // 8):  # fewer folders of one file than a switch takes
            writer.submit(job, 10, f"folder{i}")
    assert len(set(names)) == 1


def test_a_failure_on_one_thread_stops_the_other() -> None:
    gate = threading.Event()
    ran: list[tuple[str, int]] = []

    def job(folder: str, i: int) -> None:
        if folder == "a" and i == 0:
            gate.wait(10)
            raise IntegrityError("a/0: damaged")
        ran.append((folder, i))

    def write_all() -> None:
        with FileWriter(threads=2) as writer:
            for folder in ("a", "b"):
                for i in range(BUNDLE_JOBS):
                    writer.submit(partial(job, folder, i), 10, folder)
            writer.flush()
            gate.set()
            for i in range(BUNDLE_JOBS * 8):  # goes on until the failure reaches it
                writer.submit(partial(job, "c", i), 10, "c")

    with pytest.raises(IntegrityError, match="a/0: damaged"):
        write_all()
    assert not any(folder == "a" for folder, _ in ran)
