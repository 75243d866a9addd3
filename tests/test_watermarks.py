"""Issue 14 point 4: high-water marks notice a store that shows less than a client saw.

A rollback (the newest version record or alias event moved away) is replayed on a
folder and on S3 (moto), in public and private projects, through the CLI: the client
that saw the newer state refuses with exit 5, a fresh client answers the older state
(it cannot know), and putting the record back heals the first client. The marks store
itself gets a Hypothesis state machine and a race of real processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cli_calls import cli
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from artifactstore.backends import Backend, LocalBackend, open_backend
from artifactstore.core.errors import IntegrityError
from artifactstore.local.watermarks import MarkedBackend, Marks, marks_for, with_marks
from artifactstore.maintenance.projects import create_project
from artifactstore.testing.stores import init_quick_store


@pytest.fixture
def url(local_or_s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "me"))
    return local_or_s3_url


class Client:
    """The CLI as one machine: its own cache folder (so its own marks)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                 cache: Path, url: str) -> None:
        self._capsys, self._monkeypatch, self._cache, self._url = capsys, monkeypatch, cache, url

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self._monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(self._cache))
        return cli(self._capsys, *argv, "--store", self._url, "--project", "p")

    def get(self, ref: str, out: Path) -> tuple[int, bytes | str]:
        code, _, err = self("get", ref, "--dir", str(out))
        return code, (out / "f.bin").read_bytes() if code == 0 else err


def _moved(backend: Backend, key: str) -> bytes:
    data = backend.get(key)
    backend.delete(key)
    return data


def _one_key(backend: Backend, part: str, suffix: str) -> str:
    found = [k for k in backend.list("projects/p/artifacts/") if part in k and k.endswith(suffix)]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_a_client_that_saw_more_refuses_a_rollback_a_fresh_one_cannot_know(
        url: str, visibility: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    init_quick_store(url)
    create_project("p", url, visibility=visibility)
    seen = Client(capsys, monkeypatch, tmp_path / "cache-a", url)

    def fresh() -> Client:  # a machine that never saw the store
        return Client(capsys, monkeypatch, tmp_path / f"cache-{os.urandom(4).hex()}", url)

    contents = [os.urandom(5_000) for _ in range(2)]
    for data in contents:
        folder = tmp_path / f"in-{len(data)}-{data[:4].hex()}"
        folder.mkdir()
        (folder / "f.bin").write_bytes(data)
        assert seen("log", "data", str(folder / "f.bin"))[0] == 0
    assert seen("alias", "set", "data:v0", "prod")[0] == 0
    assert seen("alias", "set", "data:v1", "prod")[0] == 0
    backend = open_backend(url)
    out = iter(tmp_path / f"out-{i}" for i in range(100))

    # The newest version record is withheld (v1 moved away): the store looks like before v1.
    key = _one_key(backend, "/versions/", "0000000001")
    record = _moved(backend, key)
    for argv in (("get", "data:latest", "--dir", str(next(out))), ("ls", "data"), ("ls",)):
        code, stdout, err = seen(*argv)
        assert code == 5, (argv, stdout, err)
        assert err.count("\n") == 1
        assert "data:v1" in err  # named, private projects included (not by its tag)
        assert "withheld or deleted" in err
        assert "artifactstore project trust p" in err
    assert fresh().get("data:latest", next(out)) == (0, contents[0])  # it cannot know
    backend.put(key, record)
    assert seen.get("data:latest", next(out)) == (0, contents[1])

    # The alias's newest event is withheld: prod looks like it still points at v0.
    key = _one_key(backend, "/aliases/", "0000000001")
    event = _moved(backend, key)
    code, failed = seen.get("data:prod", next(out))
    assert code == 5
    assert isinstance(failed, str)
    assert "event 1 of data:prod" in failed
    assert fresh().get("data:prod", next(out)) == (0, contents[0])
    backend.put(key, event)
    assert seen.get("data:prod", next(out)) == (0, contents[1])
    backend.close()


def test_records_created_or_read_raise_the_marks_other_listings_pass(tmp_path: Path) -> None:
    inner = LocalBackend(tmp_path / "store", create=True)
    marks = Marks(tmp_path / "known" / "p" / "marks.sqlite")
    backend = MarkedBackend(inner, "p", marks)
    assert backend.put_if_absent("projects/p/artifacts/d/versions/0000000003", b"x")
    assert not backend.put_if_absent("projects/p/artifacts/d/versions/0000000003", b"y")
    assert backend.put_if_absent("projects/p/lifecycle/0000000000", b"x")
    backend.put("projects/q/lifecycle/0000000009", b"x")  # another project: not ours
    assert {log: seq for log, (seq, _) in marks.read().items()} == {
        "artifacts/d/versions/": 3, "lifecycle/": 0}
    assert oct(marks.path.stat().st_mode & 0o777) == "0o600"
    inner.put("projects/p/artifacts/e/versions/0000000007", b"x")
    assert backend.get("projects/p/artifacts/e/versions/0000000007") == b"x"  # read: seen
    assert marks.read()["artifacts/e/versions/"][0] == 7
    inner.delete("projects/p/artifacts/d/versions/0000000003")
    assert list(backend.list("objects/")) == []  # not a log: passes through
    assert list(backend.list("projects/q/")) == ["projects/q/lifecycle/0000000009"]
    for prefix in ("projects/p/artifacts/d/versions/", "projects/p/artifacts/",
                   "projects/p/arti", "projects/", ""):
        with pytest.raises(IntegrityError, match="saw d:v3"):
            list(backend.list(prefix))
    assert list(backend.list("projects/p/lifecycle/")) == ["projects/p/lifecycle/0000000000"]


def test_memory_stores_keep_no_marks(tmp_path: Path) -> None:
    assert marks_for(tmp_path, "memory://x", "p") is None
    backend = open_backend("memory://marks-none")
    assert with_marks(backend, "p", tmp_path) is backend
    assert not (tmp_path / "known").exists()


LOGS = st.sampled_from(["artifacts/a/versions/", "artifacts/b/versions/",
                        "artifacts/a/aliases/prod/", "lifecycle/"])


class MarksMachine(RuleBasedStateMachine):
    """Marks against a dict model: each log's mark is the max ever raised to; never lower."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="marks-sm-"))  # each example its own file
        self.marks = Marks(self.root / "known" / "marks.sqlite")
        self.model: dict[str, int] = {}

    def teardown(self) -> None:
        shutil.rmtree(self.root)

    @rule(seen=st.dictionaries(LOGS, st.integers(0, 10**10 - 1), max_size=4))
    def raise_to(self, seen: dict[str, int]) -> None:
        self.marks.raise_to(seen)
        for log, seq in seen.items():
            self.model[log] = max(seq, self.model.get(log, -1))

    @rule()
    def reopen(self) -> None:  # another process opening the same file
        self.marks = Marks(self.marks.path)

    @invariant()
    def only_grow(self) -> None:
        assert {log: seq for log, (seq, _) in self.marks.read().items()} == self.model


TestMarksMachine = MarksMachine.TestCase
TestMarksMachine.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)

_RACER = """
import random, sys
from pathlib import Path
from artifactstore.local.watermarks import Marks
marks, seed = Marks(Path(sys.argv[1])), int(sys.argv[2])
rng = random.Random(seed)
numbers = list(range(300))
rng.shuffle(numbers)
for n in numbers:
    marks.raise_to({"lifecycle/": n, f"artifacts/a{n % 3}/versions/": n + seed})
"""


def test_two_processes_raising_the_same_marks_keep_the_max(tmp_path: Path) -> None:
    path = tmp_path / "known" / "p" / "marks.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(path), str(seed)],
                              stderr=subprocess.PIPE) for seed in (0, 1000)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    found = {log: seq for log, (seq, _) in Marks(path).read().items()}
    assert found == {"lifecycle/": 299, "artifacts/a0/versions/": 1297,
                     "artifacts/a1/versions/": 1298, "artifacts/a2/versions/": 1299}
