"""human_size: the one way byte counts are written for people."""

from __future__ import annotations

import pytest
from artifactstore.core.sizes import human_size


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (3 << 20, "3.0 MiB"), (5 << 30, "5.0 GiB"),
    (3 << 40, "3.0 TiB"), (1 << 50, "1024.0 TiB"),
])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text
