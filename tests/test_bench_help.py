"""Every argument of the benchmark commands (``python -m bench ...``, bench/**/*.py) has
help text (the quality bar: "every argument has help text")."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_every_bench_argument_has_help() -> None:
    missing = []
    for path in sorted(BENCH.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "add_argument" \
                    and "help" not in {k.arg for k in node.keywords}:
                missing.append(f"{path.relative_to(BENCH.parent)}:{node.lineno}")
    assert len(list(BENCH.rglob("*.py"))) > 5  # the walk found the benchmarks
    assert missing == []
