"""Imports point down only, one layer per folder, checked on the source with ``ast``.

Layers, lowest first (docs/architecture.md); a module may import its own layer and
lower layers, and the modules of one layer import each other without a cycle:

1. core: ``artifactstore.core.*`` (errors, digest, chunking, encoding, crypto, ...).
   No network or process I/O: besides the standard library (without its network and
   process modules) they import only :data:`FOUNDATION_THIRD_PARTY`.
2. backends: ``artifactstore.backends.*``. Also knows nothing of hashing, crypto or
   msgpack (backends hold keys and bytes only).
3. objects, 4. model, 5. records, 6. local, 7. repository, 8. runs, 9. lineage,
10. maintenance, 11. transfer: ``artifactstore.<folder>.*``.
12. api: the package ``artifactstore`` itself and ``artifactstore.api.*``.
13. demo: ``artifactstore.demo.*`` (the demo drives the API like a user).
14. ui: ``artifactstore.ui.*`` (pages and charts, read through the API like a user).
15. cli: ``artifactstore.cli.*`` and ``artifactstore.__main__``.

``artifactstore.testing.*`` may import any layer but cli, and nothing else may import
it. Every module must belong to a layer: a module outside these folders fails this
test. Every ``import`` counts, including those inside functions and
``if TYPE_CHECKING:`` blocks.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "artifactstore"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE

#: the layer folders, lowest first
FOLDERS = ("core", "backends", "objects", "model", "media", "records", "local", "repository",
           "runs", "lineage", "maintenance", "transfer", "api", "integrations", "demo", "ui",
           "server", "cli")

# (layer, exact module names, name prefixes): a module is in a layer if its name is
# listed, or is a prefix plus ".submodule".
LAYERS: list[tuple[str, set[str], set[str]]] = [
    (folder, {f"{PACKAGE}.{folder}"}, {f"{PACKAGE}.{folder}"}) for folder in FOLDERS
]
LAYERS[FOLDERS.index("api")][1].add(PACKAGE)
LAYERS[FOLDERS.index("cli")][1].add(f"{PACKAGE}.__main__")
FOUNDATIONS = "core"
#: modules this long need a reason at their top (a docstring paragraph "Length: ...")
LONG_MODULE = 500
RANK = {name: rank for rank, (name, _, _) in enumerate(LAYERS)}
TESTING = f"{PACKAGE}.testing"

FOUNDATION_THIRD_PARTY = {"blake3", "pyfastcdc", "msgpack", "cryptography", "typing_extensions"}
STDLIB_IO = {
    "asyncio", "ftplib", "http", "imaplib", "multiprocessing", "poplib",
    "select", "selectors", "smtplib", "socket", "socketserver", "ssl", "subprocess", "urllib",
}  # fmt: skip
BACKEND_FORBIDDEN = {
    f"{PACKAGE}.core.digest", f"{PACKAGE}.core.encoding", f"{PACKAGE}.core.crypto",
    f"{PACKAGE}.core.chunking",
    "blake3", "msgpack", "cryptography", "pyfastcdc",
}  # fmt: skip


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the absolute module name imported
    line: int


def layer_of(module: str) -> str | None:
    """The layer of an artifactstore module, "testing", or None if unassigned."""
    if module == TESTING or module.startswith(TESTING + "."):
        return "testing"
    for name, exact, prefixes in LAYERS:
        if module in exact or any(module.startswith(p + ".") for p in prefixes):
            return name
    return None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    """Whether ``name`` is a module or package in the source tree under ``root``."""
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    base = root / relative
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_in(path: Path, root: Path) -> list[Import]:
    """Every import in a file, resolved to absolute module names."""
    module = module_name(path, root)
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                if node.level - 1 >= len(parts):
                    raise AssertionError(
                        f"{path}:{node.lineno}: relative import beyond the package"
                    )
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                # "from pkg import name" imports pkg.name when that is a module.
                candidate = f"{base}.{alias.name}"
                own = base == PACKAGE or base.startswith(PACKAGE + ".")
                target = candidate if own and is_module(candidate, root) else base
                found.append(Import(module, target, node.lineno))
    return found


def check(root: Path) -> list[str]:
    """Return one message per layering violation in the package at ``root``."""
    return _check_imports(root) + _check_cycles(root) + _check_lengths(root)


def _check_imports(root: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        where = path.relative_to(root.parent)
        layer = layer_of(module)
        if layer is None:
            problems.append(f"{where}: module {module} has no layer; add it to LAYERS")
            continue
        for imp in dict.fromkeys(imports_in(path, root)):  # one report per line and target
            target, top = imp.target, imp.target.split(".")[0]
            at = f"{where}:{imp.line}: {module} ({layer})"
            if top == PACKAGE:
                problems += _check_internal(at, layer, target)
            elif layer == FOUNDATIONS:
                if top in STDLIB_IO:
                    problems.append(f"{at} imports {target}: foundations do no I/O")
                elif top not in sys.stdlib_module_names and top not in FOUNDATION_THIRD_PARTY:
                    problems.append(
                        f"{at} imports {target}: foundations import only the standard "
                        f"library and {sorted(FOUNDATION_THIRD_PARTY)} (no I/O)"
                    )
            if layer == "backends" and any(
                target == name or target.startswith(name + ".") for name in BACKEND_FORBIDDEN
            ):
                problems.append(f"{at} imports {target}: backends know nothing of hashing")
    return problems


def _check_internal(at: str, layer: str, target: str) -> list[str]:
    target_layer = layer_of(target)
    if target_layer is None:
        return [f"{at} imports {target}, which has no layer"]
    if target_layer == "testing":
        return [] if layer == "testing" else [f"{at} imports {target}: only tests use testing"]
    if layer == "testing":
        return [f"{at} imports {target}: testing must not import the cli"] * (target_layer == "cli")
    if RANK[target_layer] > RANK[layer]:
        return [f"{at} imports {target} ({target_layer}): imports must point down"]
    return []


def _check_cycles(root: Path) -> list[str]:
    """One message per import cycle among the modules of one layer (lazy imports too)."""
    graph: dict[str, set[str]] = {}
    for file in sorted(root.rglob("*.py")):
        module = module_name(file, root)
        layer = layer_of(module)
        graph[module] = {
            imp.target for imp in imports_in(file, root)
            if imp.target != module and layer is not None and layer_of(imp.target) == layer
            and not module.startswith(imp.target + ".")  # a package's own __init__
        }
    problems: list[str] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target):]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    problems.append(f"{PACKAGE}/ import cycle in layer {layer_of(module)}: "
                                    + " -> ".join([*cycle, target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return problems


def _check_lengths(root: Path) -> list[str]:
    """Modules over :data:`LONG_MODULE` lines say why at their top."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > LONG_MODULE and "Length:" not in doc:
            problems.append(f"{path.relative_to(root.parent)}: {lines} lines and no "
                            "'Length:' paragraph at its top saying why it is one module")
    return problems


# --- the real package ----------------------------------------------------------------


def test_package_imports_point_down() -> None:
    assert PACKAGE_DIR.is_dir()
    problems = check(PACKAGE_DIR)
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_every_layer_is_a_folder_and_nothing_sits_beside_them() -> None:
    checked = {module_name(p, PACKAGE_DIR) for p in PACKAGE_DIR.rglob("*.py")}
    assert {f"{PACKAGE}.core.{m}" for m in ("errors", "digest", "chunking", "encoding")} <= checked
    for folder in FOLDERS:
        assert (PACKAGE_DIR / folder / "__init__.py").is_file(), folder
    flat = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py"], f"modules outside the layer folders: {flat}"


# --- the checker itself, on a synthetic package --------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    package = root / PACKAGE
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


CLEAN = {
    "__init__.py": "from artifactstore.api.facade import Store\nimport artifactstore.core.errors\n",
    "core/__init__.py": "",
    "core/errors.py": "import os\nfrom typing import Final\n",
    "core/digest.py": (
        "import blake3\nfrom .errors import X\nfrom artifactstore.core import errors\n"
    ),
    "core/encoding.py": "import msgpack\nfrom . import digest\n",
    "backends/__init__.py": "",
    "backends/base.py": "from ..core.errors import E\nfrom . import memory\n",
    "backends/memory.py": "import threading\n",
    "objects/__init__.py": "",
    "objects/packs.py": (
        "from artifactstore.backends.base import B\nfrom ..core.encoding import pack\n"
    ),
    "model/__init__.py": "def f():\n    from artifactstore.objects.packs import P\n",
    "repository/__init__.py": "",
    "repository/project.py": "from artifactstore.objects import packs\nfrom ..model import x\n",
    "repository/ingest.py": "from .project import Project\n",
    "maintenance/__init__.py": "",
    "maintenance/gc.py": "from artifactstore.repository.project import Project\n",
    "api/__init__.py": "",
    "api/facade.py": "from artifactstore.maintenance import gc\n",
    "cli/__init__.py": "import artifactstore\nfrom artifactstore.api.facade import Store\n",
    "cli/util.py": "from artifactstore.cli import main\n",
    "testing/__init__.py": (
        "from artifactstore.api.facade import Store\nimport artifactstore.backends\n"
    ),
}


def test_checker_accepts_a_clean_tree(tmp_path: Path) -> None:
    assert check(write_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("core/digest.py", "import fsspec\n", "fsspec: foundations import only"),
        ("core/digest.py", "import boto3.session\n", "boto3.session: foundations import only"),
        (
            "core/encoding.py",
            "from urllib.request import urlopen\n",
            "urllib.request: foundations do no I/O",
        ),
        ("core/chunking.py", "import socket\n", "socket: foundations do no I/O"),
        ("core/digest.py", "from artifactstore.backends.base import B\n", "must point down"),
        ("core/digest.py", "import artifactstore\n", "imports artifactstore (api)"),
        ("core/digest.py", "from artifactstore import __version__\n", "artifactstore (api)"),
        (
            "backends/s3.py",
            "from ..objects import packs\n",
            "artifactstore.objects.packs (objects)",
        ),
        ("backends/s3.py", "import blake3\n", "backends know nothing of hashing"),
        ("backends/s3.py", "from artifactstore.core.encoding import pack\n",
         "backends know nothing"),
        ("objects/packs.py", "from artifactstore.api.facade import Store\n", "must point down"),
        ("objects/refs.py", "from .. import cli\n", "artifactstore.cli (cli)"),
        ("model/__init__.py", "def f():\n    import artifactstore.cli\n", "must point down"),
        (
            "repository/project.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from artifactstore.cli import main\n",
            "must point down",
        ),
        ("repository/project.py", "def f():\n    from artifactstore.maintenance import gc\n",
         "(maintenance): imports must point down"),
        ("repository/project.py", "def f():\n    from . import ingest\n",
         "import cycle in layer repository"),
        ("objects/packs.py", "from artifactstore.testing import fake\n", "only tests use testing"),
        ("testing/__init__.py", "from artifactstore.cli import main\n", "must not import the cli"),
        ("helpers.py", "", "artifactstore.helpers has no layer"),
        ("objects/packs.py", "from artifactstore.helpers import h\n", "which has no layer"),
        ("model/long.py", "x = 1\n" * 501, "501 lines and no 'Length:' paragraph"),
    ],
)
def test_checker_reports_violations(tmp_path: Path, name: str, source: str, expected: str) -> None:
    problems = check(write_tree(tmp_path, {**CLEAN, name: source}))
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith(f"{PACKAGE}/")


def test_a_long_module_with_its_reason_passes(tmp_path: Path) -> None:
    source = '"""A long module.\n\nLength: one format, one reader."""\n' + "x = 1\n" * 600
    assert check(write_tree(tmp_path, {**CLEAN, "model/long.py": source})) == []
