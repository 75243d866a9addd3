"""Issue 15.6: a version digest is a content identity (docs/design.md §11.1).

The expected digest is computed here from the folder's bytes with the ``blake3``
package, not through our tree or content-digest code, and also by the script
that design §11.1 gives third parties.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import blake3
import pytest
from cli_calls import cli_json

import artifactstore
from artifactstore.cli import main
from artifactstore.records.versions import NewVersion

DESIGN = Path(__file__).parent.parent / "docs" / "design.md"


def make_folder(root: Path) -> Path:
    folder = root / "data"
    (folder / "sub" / "deep").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "a-b.txt").write_bytes(b"sorts between a.csv and a/ by bytes\n")
    (folder / "empty").write_bytes(b"")
    (folder / "sub" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "sub" / "run.sh").chmod(0o755)
    (folder / "sub" / "deep" / "big.bin").write_bytes(os.urandom(3_000_000))
    (folder / "sub" / "deep" / "ro.txt").write_text("read only\n")
    (folder / "sub" / "deep" / "ro.txt").chmod(0o444)
    return folder


def expected_digest(folder: Path) -> str:
    """The content digest of ``folder`` by the spec's words, from its bytes only."""
    lines = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            full = Path(dirpath) / name
            rel = full.relative_to(folder).as_posix().encode()
            mode = full.stat().st_mode & 0o777
            lines.append((rel, b"f %03o %s %s\0" % (
                mode, blake3.blake3(full.read_bytes()).hexdigest().encode(), rel)))
    listing = b"artifactstore-content-v1\n" + b"".join(line for _, line in sorted(lines))
    return blake3.blake3(listing).hexdigest()


def design_script() -> str:
    """The recompute script that design §11.1 gives third parties."""
    section = DESIGN.read_text().split("### 11.1 Content digest", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "design §11.1 must hold a python script"
    return found.group(1)


def init(url: str, *flags: str) -> None:
    assert main(["init", url, "--quiet", *flags]) == 0


def test_same_files_same_digest_in_any_store_project_and_visibility(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(tmp_path)
    want = expected_digest(folder)
    public, private = str(tmp_path / "public"), str(tmp_path / "private")
    init(public, "--public")
    init(private)
    places = [(public, "default"), (public, "second"), (private, "default"),
              (private, "other")]
    for url, project in places:
        args = ("--store", url, "--project", project)
        code, logged = cli_json(capsys, "log", "ds", str(folder), "--type", "dataset", *args)
        assert (code, logged["digest"]) == (0, want), (url, project)
        code, shown = cli_json(capsys, "show", "ds:v0", *args)
        assert (code, shown["digest"]) == (0, want)
        code, listed = cli_json(capsys, "ls", "ds", *args)
        assert [v["digest"] for v in listed["versions"]] == [want]
        with artifactstore.open(url, project=project, create=False) as store:
            assert store.artifact("ds:v0").digest == want
            # Identical content still creates no new version, and keeps the digest.
            again = store.log_artifact(folder, name="ds", type="dataset")
            assert (again.created, again.version, again.digest) == (False, "v0", want)
    # The third-party script of design §11.1 finds the same digest.
    script = tmp_path / "recompute.py"
    script.write_text(design_script())
    out = subprocess.run([sys.executable, str(script), str(folder)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == [want]


def test_digest_is_kept_in_the_encrypted_record(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    url = str(tmp_path / "private")
    init(url)
    with artifactstore.open(url) as store:
        version = store.log_artifact(folder, name="ds", type="dataset")
        assert version.record.content is not None
        assert version.record.content.hex == expected_digest(folder)
    raw = b"".join(p.read_bytes() for p in Path(url).rglob("*") if p.is_file())
    assert bytes.fromhex(expected_digest(folder)) not in raw  # sealed, not in the clear


def test_digest_changes_with_bytes_mode_or_path(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    url = str(tmp_path / "store")
    init(url, "--public")
    with artifactstore.open(url) as store:
        seen = {store.log_artifact(folder, name="ds", type="dataset").digest}
        (folder / "a.csv").chmod(0o600)
        seen.add(store.log_artifact(folder, name="ds", type="dataset").digest)
        (folder / "a.csv").write_text("x,y\n1,3\n")
        seen.add(store.log_artifact(folder, name="ds", type="dataset").digest)
        (folder / "a.csv").rename(folder / "c.csv")
        last = store.log_artifact(folder, name="ds", type="dataset")
        seen.add(last.digest)
        assert len(seen) == 4
        assert last.digest == expected_digest(folder)


def test_record_without_content_gets_it_from_its_tree(tmp_path: Path) -> None:
    """A record written before §11.1 (no ``content``) shows the same digest, computed."""
    folder = make_folder(tmp_path)
    url = str(tmp_path / "store")
    init(url, "--public")
    with artifactstore.open(url) as store:
        new = store.log_artifact(folder, name="ds", type="dataset").record
        # What an older client wrote: the same record fields, no content digest.
        old, created = store.refs.commit_version(NewVersion(
            "old", type="dataset", manifest=new.manifest, digest=new.digest,
            size=new.size, files=new.files))
        assert created
        assert old.content is None
    with artifactstore.open(url, create=False) as store:
        version = store.artifact("old:v0")
        assert version.record.content is None
        assert version.digest == expected_digest(folder)


def test_verify_names_a_record_whose_content_digest_its_files_do_not_have(
        tmp_path: Path) -> None:
    """A writer (a member, signed) records a content digest its files do not have."""
    from artifactstore.core.digest import Digest
    from artifactstore.maintenance.verify import verify_store

    folder = make_folder(tmp_path)
    url = str(tmp_path / "store")
    init(url, "--public")
    with artifactstore.open(url) as store:
        new = store.log_artifact(folder, name="ds", type="dataset").record
        store.refs.commit_version(NewVersion(
            "liar", type="dataset", manifest=new.manifest, digest=new.digest,
            size=new.size, files=new.files, content=Digest(bytes(32))))
    report = verify_store(url, read_data=False, cache_dir=tmp_path / "cache")
    assert not report.ok
    assert [(d.object, d.problem) for d in report.damage] == [
        ("liar:v0", "names a content digest its files do not have")]
    assert [a.ref for a in report.affected] == ["liar:v0"]
