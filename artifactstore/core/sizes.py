"""Byte counts for people: ``human_size(3 << 20) == "3.0 MiB"`` (binary units)."""

from __future__ import annotations

__all__ = ["human_size"]

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(size: int) -> str:
    """``size`` bytes as ``"512 B"``, ``"1.5 KiB"`` … ``"2.0 TiB"``."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"
