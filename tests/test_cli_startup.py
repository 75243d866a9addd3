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
        _ = artifactstore.no_such_name  # type: ignore[attr-defined]


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
    for argv in (["ls", "data"], ["show", "data:v0", "a"], ["diff", "data:v0", "data:v1", "a"],
                 ["--help"], ["ls", "--help"]):
        code, modules = _imported_by([*argv, "--store", store, "-q"]
                                     if "--help" not in argv else argv, env)
        assert code == 0, argv
        heavy = [m for m in HEAVY if m in modules]
        if argv == ["--help"]:  # lists every command: each command module is imported
            heavy = [m for m in heavy if not m.startswith("artifactstore.cli.")]
        assert heavy == [], argv


def test_lineage_formats_are_the_graph_s() -> None:
    from artifactstore.cli.lineage import FORMATS
    from artifactstore.lineage.graph import EXPORT_FORMATS

    assert FORMATS == EXPORT_FORMATS
