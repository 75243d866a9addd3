"""Imports point down only (docs/architecture.md), checked on the source with ``ast``.

Layers, lowest first; a module may import its own layer and lower layers:

1. foundations: errors, digest, chunking, encoding, crypto. No I/O: besides the
   standard library (without its network and process modules) they import only
   :data:`FOUNDATION_THIRD_PARTY`.
2. backends: ``artifactstore.backends.*``. Also knows nothing of hashing, crypto
   or msgpack (docs/design.md §8: backends hold keys and bytes only).
3. objects: ``artifactstore.objects.*``.
4. model: ``artifactstore.model.*``.
5. api: the package ``artifactstore`` itself, ``repository``, ``api``, ``store``.
6. cli: ``artifactstore.cli*`` and ``artifactstore.__main__``.

``artifactstore.testing.*`` may import any layer but cli, and nothing else may
import it. Every module must belong to a layer: a new module fails this test
until it is added to :data:`LAYERS`. Every ``import`` counts, including those
inside functions and ``if TYPE_CHECKING:`` blocks.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "artifactstore"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE

API_MODULES = (
    "repository", "api", "store", "demo", "discovery", "artifact", "version", "download",
    "filecache", "references", "demo_model", "demo_data", "lineage_formats", "codestate",
    "catalog", "run", "lineage", "audit", "access", "projects", "identity", "localtree",
    "verify", "repair", "domains",
    "sync", "relog", "gc", "lifecycle", "reencrypt", "statcache", "takedown",
    "exporting", "exportreader", "importing", "publish",
    "clientstate", "pins", "watermarks", "losses",
)  # fmt: skip

# (layer, exact module names, name prefixes): a module is in a layer if its
# name is listed, or is a prefix plus ".submodule", or (cli only) starts with "cli".
LAYERS: list[tuple[str, set[str], set[str]]] = [
    (
        "foundations",
        {
            f"{PACKAGE}.{name}"
            for name in ("errors", "digest", "chunking", "encoding", "crypto", "synthetic",
                         "localproc", "heap", "privatefiles", "sizes")
        },
        set(),
    ),
    ("backends", {f"{PACKAGE}.backends"}, {f"{PACKAGE}.backends"}),
    ("objects", {f"{PACKAGE}.objects"}, {f"{PACKAGE}.objects"}),
    ("model", {f"{PACKAGE}.model"}, {f"{PACKAGE}.model"}),
    (
        "api",
        {PACKAGE} | {f"{PACKAGE}.{name}" for name in API_MODULES},
        {f"{PACKAGE}.{name}" for name in ("repository", "api", "store")},
    ),
    ("cli", {f"{PACKAGE}.__main__"}, set()),
]
RANK = {name: rank for rank, (name, _, _) in enumerate(LAYERS)}
TESTING = f"{PACKAGE}.testing"

FOUNDATION_THIRD_PARTY = {"blake3", "pyfastcdc", "msgpack", "cryptography", "typing_extensions"}
STDLIB_IO = {
    "asyncio", "ftplib", "http", "imaplib", "multiprocessing", "poplib",
    "select", "selectors", "smtplib", "socket", "socketserver", "ssl", "subprocess", "urllib",
}  # fmt: skip
BACKEND_FORBIDDEN = {
    f"{PACKAGE}.digest", f"{PACKAGE}.encoding", f"{PACKAGE}.crypto", f"{PACKAGE}.chunking",
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
    for name, exact, prefixes in LAYERS:  # listed first: "clientstate" is no cli module
        if module in exact or any(module.startswith(p + ".") for p in prefixes):
            return name
    if module.startswith(f"{PACKAGE}.cli"):
        return "cli"
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
            elif layer == "foundations":
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


# --- the real package ----------------------------------------------------------------


def test_package_imports_point_down() -> None:
    assert PACKAGE_DIR.is_dir()
    problems = check(PACKAGE_DIR)
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_foundation_modules_exist_and_are_checked() -> None:
    checked = {module_name(p, PACKAGE_DIR) for p in PACKAGE_DIR.rglob("*.py")}
    assert {f"{PACKAGE}.{m}" for m in ("errors", "digest", "chunking", "encoding")} <= checked


# --- the checker itself, on a synthetic package --------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    package = root / PACKAGE
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


CLEAN = {
    "__init__.py": "from artifactstore.repository import Store\nimport artifactstore.errors\n",
    "errors.py": "import os\nfrom typing import Final\n",
    "digest.py": "import blake3\nfrom .errors import X\nfrom artifactstore import errors\n",
    "encoding.py": "import msgpack\nfrom . import digest\n",
    "backends/__init__.py": "",
    "backends/base.py": "from ..errors import E\nfrom . import memory\n",
    "backends/memory.py": "import threading\n",
    "objects/__init__.py": "",
    "objects/packs.py": "from artifactstore.backends.base import B\nfrom ..encoding import pack\n",
    "repository.py": "from artifactstore.objects import packs\nfrom .model import x\n",
    "model/__init__.py": "def f():\n    from artifactstore.objects.packs import P\n",
    "cli.py": "import artifactstore\nfrom artifactstore.repository import Store\n",
    "cli_util.py": "from artifactstore.cli import main\n",
    "testing/__init__.py": (
        "from artifactstore.repository import Store\nimport artifactstore.backends\n"
    ),
}


def test_checker_accepts_a_clean_tree(tmp_path: Path) -> None:
    assert check(write_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("digest.py", "import fsspec\n", "fsspec: foundations import only"),
        ("digest.py", "import boto3.session\n", "boto3.session: foundations import only"),
        (
            "encoding.py",
            "from urllib.request import urlopen\n",
            "urllib.request: foundations do no I/O",
        ),
        ("chunking.py", "import socket\n", "socket: foundations do no I/O"),
        ("digest.py", "from artifactstore.backends.base import B\n", "must point down"),
        ("digest.py", "import artifactstore\n", "imports artifactstore (api)"),
        ("digest.py", "from artifactstore import __version__\n", "imports artifactstore (api)"),
        (
            "backends/s3.py",
            "from ..objects import packs\n",
            "artifactstore.objects.packs (objects)",
        ),
        ("backends/s3.py", "import blake3\n", "backends know nothing of hashing"),
        ("backends/s3.py", "from artifactstore.encoding import pack\n", "backends know nothing"),
        ("objects/packs.py", "from artifactstore.repository import Store\n", "must point down"),
        ("objects/refs.py", "from .. import cli\n", "artifactstore.cli (cli)"),
        ("model/__init__.py", "def f():\n    import artifactstore.cli\n", "must point down"),
        (
            "repository.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from artifactstore.cli import main\n",
            "must point down",
        ),
        ("objects/packs.py", "from artifactstore.testing import fake\n", "only tests use testing"),
        ("testing/__init__.py", "from artifactstore.cli import main\n", "must not import the cli"),
        ("helpers.py", "", "artifactstore.helpers has no layer"),
        ("objects/packs.py", "from artifactstore.helpers import h\n", "which has no layer"),
    ],
)
def test_checker_reports_violations(tmp_path: Path, name: str, source: str, expected: str) -> None:
    problems = check(write_tree(tmp_path, {**CLEAN, name: source}))
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert problems[0].startswith(f"{PACKAGE}/")
