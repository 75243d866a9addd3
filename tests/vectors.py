"""Load the external test vectors kept in ``tests/data/vectors``.

They are copies of published reference data (origins in its README.md, licences in
LICENSES.md), checked against SHA256SUMS on every read. A missing or modified vector
file fails the test that needs it (never a skip): these vectors are what ties our
formats to results nobody on the team produced.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS_DIR = REPO_ROOT / "tests" / "data" / "vectors"


def vectors_dir() -> Path:
    """Return the vectors folder, failing the test if it is missing."""
    if not (VECTORS_DIR / "SHA256SUMS").is_file():
        pytest.fail(
            f"external test vectors not found at {VECTORS_DIR}: the checkout is incomplete "
            "(tests/data/vectors/SHA256SUMS must exist)"
        )
    return VECTORS_DIR


@functools.cache
def _checksums() -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in (vectors_dir() / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def read_bytes(name: str) -> bytes:
    """Return a vector file's bytes after checking it against SHA256SUMS."""
    path = vectors_dir() / name
    if not path.is_file():
        pytest.fail(f"test vector file {path} is missing")
    data = path.read_bytes()
    expected = _checksums().get(name)
    if expected is None:
        pytest.fail(f"test vector file {name} is not listed in {VECTORS_DIR / 'SHA256SUMS'}")
    if hashlib.sha256(data).hexdigest() != expected:
        pytest.fail(f"test vector file {path} does not match its SHA256SUMS entry")
    return data


def load_json(name: str) -> Any:
    """Return a checked vector file parsed as JSON."""
    return json.loads(read_bytes(name))
