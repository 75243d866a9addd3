"""What a command imports (cli/main.py COMMANDS, the package's lazy names): a read-only
command imports its own module and the layers it reads through, not the collector, the
lineage graph, the server or tqdm; the whole parser still answers help and errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import artifactstore
from artifactstore.cli.main import COMMANDS, _command, _parser

#: imported by none of ls, show, diff, --help (each costs start-up time)
HEAVY = ("artifactstore.maintenance.gc", "artifactstore.lineage.queries",
         "artifactstore.lineage.graph", "artifactstore.transfer.publish",
         "artifactstore.runs.run", "artifactstore.api.session", "artifactstore.cli.login",
         "artifactstore.cli.server", "networkx", "tqdm", "http.server")
#: imported by no command on a local store, log included: no HTTP client, no cloud SDK,
#: no config parser without a config file, no key serialization (only new keys need it)
LOCAL = ("urllib.request", "http.client", "email", "ssl", "socket", "tomllib", "s3fs",
         "aiohttp", "aiobotocore", "botocore", "fsspec",
         "cryptography.hazmat.primitives.serialization")
#: imported by none of ls, show, diff, get (reads never chunk); log chunks
CHUNKER = ("pyfastcdc",)
#: imported by no ``get`` of a version: a restore's start-up is serial, before its
#: first read (the catalog and its SQLite file, the run records, the listings, the
#: profiles a first write declares, the fault-injecting backend of the tests)
GET_HEAVY = ("artifactstore.local.catalog", "artifactstore.local.catalogread",
             "artifactstore.records.runs", "artifactstore.repository.listing",
             "artifactstore.local.profile", "artifactstore.records.profiles",
             "artifactstore.backends.faults")
#: imported by no ``log`` or read outside a run: the run machinery (its media
#: values, code state and environment capture, which start git) is for runs
RUN_HEAVY = ("artifactstore.runs.run", "artifactstore.media", "subprocess")
#: kept out of ``--help`` too: it lists every command, and no command's records
HELP_HEAVY = ("artifactstore.records.runs", "artifactstore.local.identity", "cryptography",
              "zstandard", "sqlite3")


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def test_the_table_names_every_command_once() -> None:
    assert sorted(_choices(_parser())) == sorted(COMMANDS)


@pytest.mark.parametrize("module", sorted(set(COMMANDS.values())))
def test_a_command_builds_the_parser_of_its_module_only(module: str) -> None:
    mine = [c for c, m in COMMANDS.items() if m == module]
    for command in mine:
        assert sorted(_choices(_parser(command))) == sorted(mine)


@pytest.mark.parametrize(("argv", "found"), [
    (["ls"], "ls"),
    (["--store", "/s", "--json", "show", "x:v1", "a"], "show"),
    (["--store=/s", "-q", "diff", "a", "b"], "diff"),
    (["--sto", "ls", "show", "x"], "show"),  # argparse takes --sto for --store
    (["--project", "p", "alias", "set"], "alias"),
    (["-h", "ls"], None),
    (["--help"], None),
    (["bogus"], None),
    ([], None),
])
def test_the_command_is_found_before_parsing(argv: list[str], found: str | None) -> None:
    assert _command(argv) == found


def test_lazy_package_names_are_the_real_ones() -> None:
    from artifactstore.api.facade import Store, open
    from artifactstore.repository.version import ArtifactVersion

    assert artifactstore.Store is Store
    assert artifactstore.open is open
    assert artifactstore.ArtifactVersion is ArtifactVersion
    assert artifactstore.artifact.__name__ == "artifactstore.api.artifact"
    assert set(artifactstore.__all__) <= set(dir(artifactstore))
    with pytest.raises(AttributeError):
        _ = artifactstore.no_such_name


def _imported_by(argv: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run the CLI on ``argv`` in a fresh interpreter: its exit code and every module
    it imported."""
    code = (
        "import json, sys\nfrom artifactstore.cli.main import main\n"
        "try:\n    code = main(sys.argv[1:])\nexcept SystemExit as exc:\n"
        "    code = exc.code\n"
        "print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                          text=True, env=env, check=False, timeout=120)
    result = json.loads(done.stderr.strip().splitlines()[-1])
    return result[0], result[1]


def test_read_only_commands_import_only_what_they_read(tmp_path: Path) -> None:
    import os

    source = tmp_path / "src"
    (source / "a").mkdir(parents=True)
    (source / "a" / "f.txt").write_text("one")
    env = {**os.environ, "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache")}
    store = str(tmp_path / "store")
    with artifactstore.open(store, create=True, cache_dir=tmp_path / "cache") as s:
        s.log_artifact(str(source), name="data", type="dataset")
        (source / "a" / "f.txt").write_text("two")
        s.log_artifact(str(source), name="data", type="dataset")
    (source / "a" / "f.txt").write_text("three")
    for argv in (["ls", "data"], ["show", "data:v0", "a"], ["diff", "data:v0", "data:v1", "a"],
                 ["get", "data:v1", "--dir", str(tmp_path / "out")], ["log", "data", str(source)],
                 ["--help"], ["ls", "--help"], ["runs", "--help"]):
        code, modules = _imported_by([*argv, "--store", store, "-q"]
                                     if "--help" not in argv else argv, env)
        assert code == 0, argv
        kept_out = LOCAL + (HEAVY + CHUNKER if argv[0] != "log" else ()) + (
            HELP_HEAVY if "--help" in argv else ()) + (GET_HEAVY if argv[0] == "get" else ()) + (
            RUN_HEAVY if argv[0] in ("log", "get", "ls", "show", "diff") else ())
        heavy = [m for m in kept_out if m in modules]
        if argv == ["--help"]:  # lists every command: each command module is imported
            heavy = [m for m in heavy if not m.startswith("artifactstore.cli.")]
        assert heavy == [], argv
    assert "pyfastcdc" in modules_of_log(store, source, env)


def test_a_warm_ls_and_lineage_import_no_version_reader_nor_graph(tmp_path: Path) -> None:
    """``ls`` (names) and ``lineage REF --json`` answer from the catalog: no version
    reader, no tree model, no networkx (issue 20's warm commands on 20,000 versions)."""
    import os

    (tmp_path / "f.txt").write_text("one")
    env = {**os.environ, "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache")}
    store = str(tmp_path / "store")
    with artifactstore.open(store, create=True, cache_dir=tmp_path / "cache") as s:
        s.log_artifact(str(tmp_path / "f.txt"), name="data", type="dataset")
    for argv in (["ls"], ["lineage", "data:v0", "--json"]):
        code, modules = _imported_by([*argv, "--store", store], env)
        assert code == 0, argv
        assert [m for m in ("artifactstore.repository.version", "artifactstore.model.tree",
                            "networkx") if m in modules] == [], argv


def test_reading_entries_does_not_load_the_systems_media_types() -> None:
    """The private media-type table is made by the first guess (a log), not at import:
    making one reads the system's mime.types files, which a restore never needs."""
    code = ("import mimetypes, artifactstore.model.entries as e\n"
            "before = mimetypes.inited\n"
            "assert e.guess_media_type('a/b.csv') == 'text/csv'\n"
            "print(before, mimetypes.inited)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.split() == ["False", "True"]


def modules_of_log(store: str, source: Path, env: dict[str, str]) -> list[str]:
    """What ``log`` of a changed file imports (it chunks: pyfastcdc is loaded on use)."""
    (source / "a" / "f.txt").write_text("four")
    code, modules = _imported_by(["log", "data", str(source), "--store", store, "-q"], env)
    assert code == 0
    return modules


def test_help_texts_name_the_records_constants() -> None:
    """The CLI's copies (kept so that ``--help`` does not import the records) are equal."""
    from artifactstore.cli.identity import PASSPHRASE_ENV
    from artifactstore.cli.runs import STATUSES
    from artifactstore.local.identity import PASSPHRASE_ENV as identity_env
    from artifactstore.records.runs import STATUSES as run_statuses

    assert run_statuses == STATUSES
    assert identity_env == PASSPHRASE_ENV


@pytest.mark.parametrize("path", ["/tmp/a", "/tmp/a%20b/c", "/x/%C3%A9t%C3%A9", "/%2F", "/a+b"])
def test_file_urls_decode_as_the_standard_library_does(path: str) -> None:
    from urllib.request import url2pathname

    from artifactstore.backends import _url2pathname

    assert _url2pathname(path) == url2pathname(path)



def test_lineage_formats_are_the_graph_s() -> None:
    from artifactstore.cli.lineage import FORMATS
    from artifactstore.lineage.graph import EXPORT_FORMATS

    assert FORMATS == EXPORT_FORMATS


def test_the_program_exits_with_mains_code_and_its_objects_frozen(tmp_path: Path) -> None:
    """``python -m artifactstore`` (``cli.run``) exits with what ``main`` returned, its
    output complete, after moving the objects left out of the collector's final walk;
    ``main`` called in a process that goes on leaves the collector as it was."""
    import gc
    import os

    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, "
            "file=sys.stderr))\n"
            "from artifactstore.cli import run\nrun()\n")
    env = {**os.environ, "ARTIFACTSTORE_CACHE_DIR": str(tmp_path / "cache")}
    missing = str(tmp_path / "no-store")
    done = subprocess.run([sys.executable, "-c", code, "--json", "ls", "--store", missing],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    from artifactstore.core.errors import StoreNotFoundError

    assert done.returncode == StoreNotFoundError.exit_code != 0  # as main returned it
    assert json.loads(done.stdout)["exit_code"] == StoreNotFoundError.exit_code
    assert "frozen True" in done.stderr
    store = str(tmp_path / "store")
    done = subprocess.run([sys.executable, "-m", "artifactstore", "--json", "init", store],
                          capture_output=True, text=True, env=env, check=False, timeout=120)
    assert done.returncode == 0
    assert json.loads(done.stdout)
    from artifactstore.cli import main

    before = gc.get_freeze_count()
    assert main(["ls", "--store", store, "-q"]) == 0
    assert gc.get_freeze_count() == before
