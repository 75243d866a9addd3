"""Issue 14 point 4: verify reports records the store lost, gc does not make the loss final.

Records are taken away from real stores (a folder, S3 on the moto server), in public and
private projects; ``verify`` (a client with its own cache, so no high-water mark speaks
first) must name each with what it affects, and gc must refuse and free nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from artifactstore.maintenance.projects import create_project
from cli_calls import cli, cli_json

from artifactstore.backends import Backend, open_backend
from artifactstore.testing.stores import init_quick_store


@pytest.fixture
def url(local_or_s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / "writer-cache"))
    monkeypatch.setenv("ARTIFACTSTORE_CONFIG_DIR", str(tmp_path / "me"))
    return local_or_s3_url


def _history(url: str, visibility: str, tmp_path: Path,
             capsys: pytest.CaptureFixture[str]) -> None:
    """data v0..v2; alias prod -> v2, v1, v2 (events 0-2); lifecycle events 0-2."""
    init_quick_store(url)
    create_project("p", url, visibility=visibility)
    for i in range(3):
        f = tmp_path / f"data-{i}.bin"
        f.write_bytes(os.urandom(40_000))
        assert cli(capsys, "log", "data", str(f), "--store", url, "--project", "p")[0] == 0
    for target in ("v2", "v1", "v2"):
        assert cli(capsys, "alias", "set", f"data:{target}", "prod", "--store", url,
                   "--project", "p")[0] == 0
    for ttl in ("30d", "60d", "none"):
        assert cli(capsys, "retention", ttl, "--store", url, "--project", "p")[0] == 0


def _key(backend: Backend, suffix: str) -> str:
    """The one key of project p ending in ``suffix`` (private keys hold tags, not names)."""
    found = [k for k in backend.list("projects/p/") if k.endswith(suffix)]
    assert len(found) == 1, (suffix, found)
    return found[0]


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as another machine: no marks, no catalog of its own."""
    monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / f"other-{os.urandom(3).hex()}"))


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_verify_names_each_missing_record_and_what_it_affects(
        url: str, visibility: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _history(url, visibility, tmp_path, capsys)
    backend = open_backend(url)

    def verify(*options: str) -> tuple[int, str, str]:
        # Each time a machine that never saw the store: its marks would speak first.
        monkeypatch.setenv("ARTIFACTSTORE_CACHE_DIR", str(tmp_path / os.urandom(4).hex()))
        return cli(capsys, "verify", "--store", url, "--project", "p", *options)

    code, out, _ = verify("--json")
    report = json.loads(out)
    assert code == 0, report
    assert report["missing"] == []
    cases = [  # (key suffix, what verify calls it, a word of what it affects)
        ("/versions/0000000001", "version record data:v1", "event 1 of alias prod"),
        ("/versions/0000000002", "version record data:v2", "event 2 of alias prod"),
        ("/0000000001", "event 1 of alias data:prod", "set the alias to v1"),
        ("lifecycle/0000000001", "lifecycle event 1", "retention"),
    ]
    for suffix, what, affects in cases:
        key = (_key(backend, suffix) if "versions" in suffix or "lifecycle" in suffix
               else next(k for k in backend.list("projects/p/artifacts/")
                         if "/aliases/" in k and k.endswith(suffix)))
        data = backend.get(key)
        backend.delete(key)
        try:
            code, out, _ = verify("--json")
            report = json.loads(out)
            assert code == 5, (what, report)
            assert report["ok"] is False
            found = {m["what"]: m for m in report["missing"]}
            assert what in found, (what, report["missing"])
            assert found[what]["key"] == key
            assert any(affects in line for line in found[what]["affects"]), found[what]
            code, out, err = verify()
            assert code == 5
            assert what in out
            assert err.count("\n") == 1
            assert what in err
        finally:
            backend.put(key, data)
    code, out, _ = verify("--json")
    assert code == 0, out
    backend.close()


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_gc_refuses_while_a_version_record_is_missing_and_frees_nothing(
        url: str, visibility: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        fresh_cache: None) -> None:
    _history(url, visibility, tmp_path, capsys)
    backend = open_backend(url)
    key = _key(backend, "/versions/0000000000")  # data:v0: no alias, no other record names it
    backend.delete(key)
    before = {k: backend.stat(k).size for k in backend.list("objects/")}
    code, out, err = cli(capsys, "gc", "--grace", "0", "--store", url, "--project", "p")
    assert code == 5, out + err
    assert err.count("\n") == 1
    assert "version record data:v0" in err
    assert "--accept-missing-records" in err
    code, out, err = cli(capsys, "gc", "--grace", "0", "--dry-run", "--store", url,
                         "--project", "p")
    assert code == 5
    assert {k: backend.stat(k).size for k in backend.list("objects/")} == before
    assert not [k for k in backend.list("gc/") if "/condemned/" in k]  # nothing condemned

    code, result = cli_json(capsys, "gc", "--grace", "0", "--accept-missing-records",
                            "--store", url, "--project", "p")
    assert code == 0, result
    assert any("version record data:v0" in line for line in result["missing_records"])
    assert result["bytes_freed"] > 0  # the lost version's data was freed, as asked
    assert {k: backend.stat(k).size for k in backend.list("objects/")} != before
    backend.close()
