"""docs/design.md against the code: the kind table (§4) and the key table (§1).

The kind table must list exactly the members of ``Kind``, with their values. The key
table must name every key the code writes: a store is driven through what writes
keys (a run with metrics and outputs, aliases, a delete, a gc, a private project
with a new member and a new key epoch) and every key listed afterwards must match a
row; every row must be matched by some key, except the rows the test names as not
produced, each with its reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import artifactstore
from artifactstore.backends import open_backend
from artifactstore.local.identity import load_or_create_identity
from artifactstore.local.profile import save_declared_profile
from artifactstore.maintenance.projects import add_member, create_project, rekey_project
from artifactstore.objects.envelope import Kind
from artifactstore.objects.gcrecords import LOCK_KEY, GcLock
from artifactstore.testing import BackendSpec
from artifactstore.testing.stores import init_quick_store

REPO_ROOT = Path(__file__).resolve().parent.parent
DESIGN = REPO_ROOT / "docs" / "design.md"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"

#: rows of the §1 table no store in this test produces, and why
NOT_PRODUCED = {
    "projects/<p>/recovery": "the old project layout: read, never written any more",
    # written by the team server process, not the library (tests/test_server_*.py)
    "server/tokens/<id>": "the team server's API tokens",
    "server/revoked/<id>": "the team server's token revocations",
    "server/audit/<ms:015d>-<random>": "the team server's audit log",
}


def section(number: int) -> str:
    """The text of ``## <number>.`` up to the next top-level section."""
    text = DESIGN.read_text(encoding="utf-8")
    start = re.search(rf"^## {number}\. .*$", text, re.MULTILINE)
    assert start is not None, f"docs/design.md has no section {number}"
    end = re.search(r"^## ", text[start.end():], re.MULTILINE)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def documented_kinds() -> dict[str, int]:
    rows = re.findall(r"^\| `0x([0-9A-Fa-f]{2})` \| `([A-Z_]+)` \|", section(4), re.MULTILINE)
    kinds: dict[str, int] = {}
    for value, name in rows:
        assert name not in kinds, f"kind {name} is listed twice in design §4"
        kinds[name] = int(value, 16)
    return kinds


def documented_keys() -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", section(1), re.MULTILINE)


def key_pattern(template: str) -> re.Pattern[str]:
    """``projects/<p>/members/<seq:010d>`` -> a regex where each ``<...>`` is one segment
    (ten digits for a ``:010d`` one)."""
    parts = re.split(r"(<[^>]+>)", template)
    regex = "".join(
        ("[0-9]{10}" if p.endswith(":010d>") else "[^/]+") if p.startswith("<") else re.escape(p)
        for p in parts
    )
    return re.compile(regex)


def test_the_kind_table_lists_every_kind_with_its_value() -> None:
    documented = documented_kinds()
    in_code = {kind.name: kind.value for kind in Kind}
    assert sorted(set(in_code) - set(documented)) == [], "kinds missing from design §4"
    assert sorted(set(documented) - set(in_code)) == [], "design §4 lists kinds the code lacks"
    assert documented == in_code


def test_the_kind_table_parser_sees_the_whole_table() -> None:
    # A table the regex stopped matching would make the comparison above vacuous.
    assert len(documented_kinds()) >= 19
    assert documented_kinds()["GC_RECORD"] == 0x2B


def test_key_patterns_match_whole_segments() -> None:
    pattern = key_pattern("projects/<p>/members/<seq:010d>")
    assert pattern.fullmatch("projects/lab/members/0000000001")
    assert not pattern.fullmatch("projects/lab/members/1")
    assert not pattern.fullmatch("projects/lab/x/members/0000000001")


@contextmanager
def person(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> Iterator[str]:
    """Act as ``name`` (their own config folder, so their own identity)."""
    with monkeypatch.context() as m:
        m.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / f"person-{name}"))
        yield load_or_create_identity().public.to_line()


def write_everything(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drive every kind of write the library makes into the store at ``url``."""
    init_quick_store(url)
    data = tmp_path / "data"
    data.mkdir()
    bob = person_line(monkeypatch, tmp_path, "bob")
    with person(monkeypatch, tmp_path, "alice"):
        save_declared_profile("Alice", "alice@example.org")  # profiles/ in both projects
        with artifactstore.open(url, project="pub", cache_dir=tmp_path / "c1") as store:
            with store.run(job_type="train", capture_code=False, heartbeat=0.05) as run:
                run.log({"loss": 0.5})
                (data / "a.txt").write_text("first")
                run.log_artifact(data, name="model", type="model", aliases=["prod"])
                (data / "a.txt").write_text("second")
                run.log_artifact(data, name="model", type="model")
                heartbeat = f"projects/pub/runs/{run.id}/heartbeat"
                wait_for_key(url, heartbeat)
            store.delete("model:v1")
            store.gc(grace=0, wait=False)  # condemns v1's blobs, sweeps later
        create_project("lab", url, visibility="private")
        with artifactstore.open(url, project="lab", cache_dir=tmp_path / "c2") as store:
            store.log_artifact(data, name="secret", type="dataset", aliases=["raw"])
        add_member("lab", bob, url)
        rekey_project("lab", url)
        with artifactstore.open(url, project="pub", cache_dir=tmp_path / "c3") as store:
            store.bundle_records()  # issue 20: record bundles (design §12.9)


def person_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> str:
    with person(monkeypatch, tmp_path, name) as line:
        return line


def wait_for_key(url: str, key: str, timeout: float = 30.0) -> None:
    """Poll until ``key`` exists (a run's first heartbeat), failing after ``timeout``."""
    backend = open_backend(url)
    try:
        deadline = time.monotonic() + timeout
        while not backend.exists(key):
            assert time.monotonic() < deadline, f"{key} never appeared"
            time.sleep(0.01)
    finally:
        backend.close()


def test_every_key_the_code_writes_is_in_the_key_table(
        memory_spec: BackendSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = memory_spec.url
    write_everything(url, tmp_path, monkeypatch)
    backend = open_backend(url)
    try:
        lock = GcLock(backend)
        lock.acquire()  # the lock lives only while a sweeper works: hold it to list it
        try:
            keys = sorted(backend.list(""))
        finally:
            lock.release()
    finally:
        backend.close()
    assert LOCK_KEY in keys
    templates = documented_keys()
    patterns = {t: key_pattern(t) for t in templates}
    unlisted = [k for k in keys if not any(p.fullmatch(k) for p in patterns.values())]
    assert unlisted == [], "keys written but missing from design §1"
    assert len(templates) >= 17, templates  # the parser still reads the whole table
    unused = [t for t, p in patterns.items()
              if t not in NOT_PRODUCED and not any(p.fullmatch(k) for k in keys)]
    assert unused == [], "design §1 rows no key matched"
    assert set(NOT_PRODUCED) <= set(templates)
    # The private project's names are tags and its blobs have their own domain (§1 notes).
    assert any(re.fullmatch(r"projects/lab/artifacts/n-[0-9a-f]{32}/versions/[0-9]{10}", k)
               for k in keys)
    assert len({k.split("/")[1] for k in keys if k.startswith("objects/")}) >= 2


def cited_modules() -> set[str]:
    """Module paths the two documents cite: ``artifactstore/x/y.py`` anywhere, and
    ``x/y.py`` (relative to the package) in the architecture page."""
    cited = set(re.findall(r"`(artifactstore/[A-Za-z0-9_/]+\.py)`",
                           DESIGN.read_text(encoding="utf-8")))
    text = ARCHITECTURE.read_text(encoding="utf-8")
    cited |= set(re.findall(r"`(artifactstore/[A-Za-z0-9_/]+\.py)`", text))
    cited |= {f"artifactstore/{m}" for m in re.findall(r"`([a-z_]+/[A-Za-z0-9_]+\.py)`", text)
              if not m.startswith("tests/")}
    return cited


def test_the_docs_cite_modules() -> None:
    assert len(cited_modules()) >= 30


def test_every_module_the_docs_cite_exists() -> None:
    missing = sorted(m for m in cited_modules() if not (REPO_ROOT / m).is_file())
    assert missing == []


def test_every_layer_folder_the_architecture_names_exists() -> None:
    folders = re.findall(r"^\| `([a-z]+)/` \|", ARCHITECTURE.read_text(encoding="utf-8"),
                         re.MULTILINE)
    assert len(folders) == 17  # media/ and ui/ came with issue 17, server/ with 18,
    # integrations/ with 19
    missing = [f for f in folders if not (REPO_ROOT / "artifactstore" / f).is_dir()]
    assert missing == []
