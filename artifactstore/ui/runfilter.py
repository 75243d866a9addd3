"""Filtering the runs table by the values of its columns (``?where=`` of the runs page).

Vocabulary:

- **condition**: ``<column> <op> <value>``, for example ``config.lr>=0.01``,
  ``config.optimizer=adam``, ``summary.loss<0.5``, ``name~resnet``, ``tags=sweep``;
  several are separated by commas and must all hold. ``op`` is one of ``=``, ``!=``,
  ``<``, ``<=``, ``>``, ``>=`` and ``~`` (contains, ignoring case).
- **comparing**: a value that reads as a number is compared as one with a number cell
  (``0.010`` equals ``0.01``); otherwise cells are compared as text (``true``, ``false``
  and ``none`` match the JSON words of a bool or missing cell). A list cell (``tags``)
  matches ``=`` when it holds the value and ``~`` when one of its items contains it.
  A run without a value in the column matches only ``!=``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from artifactstore.core.errors import InvalidInputError

__all__ = ["Condition", "matches", "parse_conditions"]

_CONDITION: Final = re.compile(r"^\s*(?P<column>[^\s<>=!~]+)\s*(?P<op>!=|<=|>=|=|<|>|~)"
                               r"\s*(?P<value>.*?)\s*$")
_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_WORDS: Final = {True: "true", False: "false", None: "none"}
MAX_CONDITIONS: Final = 20


@dataclass(frozen=True, slots=True)
class Condition:
    column: str
    op: str
    value: str

    @property
    def number(self) -> float | None:
        try:
            found = float(self.value)
        except ValueError:
            return None
        return found if math.isfinite(found) else None

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.value}"


def parse_conditions(text: str | None, columns: Sequence[str]) -> list[Condition]:
    """The conditions of ``text`` (comma-separated), each on one of ``columns``."""
    if not text or not text.strip():
        return []
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) > MAX_CONDITIONS:
        raise InvalidInputError(f"at most {MAX_CONDITIONS} conditions in where=")
    found = []
    for part in parts:
        match = _CONDITION.match(part)
        if match is None:
            raise InvalidInputError(f"cannot read the condition {part.strip()!r:.80}: write "
                                    "COLUMN OP VALUE with OP one of = != < <= > >= ~, "
                                    "e.g. config.lr>=0.01")
        condition = Condition(match["column"], match["op"], match["value"])
        if condition.column not in columns:
            raise InvalidInputError(f"no column {condition.column!r:.80} to filter on: use "
                                    f"one of {', '.join(columns)[:300]}")
        if condition.op in _ORDER and condition.number is None:
            raise InvalidInputError(f"{condition}: {condition.op} compares numbers; "
                                    "use = or ~ for text")
        found.append(condition)
    return found


def _holds(condition: Condition, cell: Any) -> bool:
    if cell is None:
        return condition.op == "!="
    if isinstance(cell, list):
        items = [str(_WORDS.get(i, i)) if isinstance(i, bool) or i is None else str(i)
                 for i in cell]
        if condition.op == "~":
            return any(condition.value.lower() in i.lower() for i in items)
        inside = condition.value in items
        return inside if condition.op == "=" else (not inside if condition.op == "!=" else False)
    number = condition.number
    is_number = isinstance(cell, int | float) and not isinstance(cell, bool)
    if condition.op in _ORDER:
        return is_number and number is not None and bool(_ORDER[condition.op](cell, number))
    if is_number and number is not None and condition.op in ("=", "!="):
        return bool(cell == number) == (condition.op == "=")
    text = _WORDS[cell] if isinstance(cell, bool) else str(cell)
    if condition.op == "~":
        return condition.value.lower() in text.lower()
    return (text == condition.value) == (condition.op == "=")


def matches(row: Mapping[str, Any], conditions: Sequence[Condition]) -> bool:
    """Whether the table row ``row`` meets every condition."""
    return all(_holds(c, row.get(c.column)) for c in conditions)
