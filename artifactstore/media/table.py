"""``Table``: columns and rows logged in a run (docs/design.md §12.7).

Given columns and rows, or a pandas DataFrame (``dataframe=``). Stored as one JSON
file ``{"columns": [str], "rows": [[cell]]}`` (``format: json``): cells are JSON
values (numpy scalars become numbers, NaN null) or media references; an ``Image``
(or any other media value) in a cell is stored as a media file of the same run,
and the cell holds its reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from artifactstore.core.errors import InvalidInputError
from artifactstore.media.base import (
    MediaValue,
    Rendered,
    canonical_json,
    check_caption,
    file_reference,
    plain,
)

__all__ = ["Table"]


class Table(MediaValue):
    """``Table(columns=[...], data=[[...], ...])`` or ``Table(dataframe=df)``."""

    def __init__(self, columns: Sequence[str] | None = None,
                 data: Sequence[Sequence[Any]] | None = None, *, dataframe: Any = None,
                 caption: str | None = None) -> None:
        if dataframe is not None:
            if columns is not None or data is not None:
                raise InvalidInputError("Table takes columns and data, or a dataframe")
            if not hasattr(dataframe, "columns") or not hasattr(dataframe, "itertuples"):
                raise InvalidInputError(
                    f"dataframe is a pandas DataFrame, got {type(dataframe).__name__}"
                )
            columns = [str(c) for c in dataframe.columns]
            data = [list(row) for row in dataframe.itertuples(index=False, name=None)]
        if columns is None or isinstance(columns, str):
            raise InvalidInputError("Table needs columns, a list of column names")
        self.columns = [str(c) for c in columns]
        if len(set(self.columns)) != len(self.columns):
            raise InvalidInputError("Table column names must be unique")
        self.rows: list[list[Any]] = []
        for row in data or []:
            cells = list(row)
            if len(cells) != len(self.columns):
                raise InvalidInputError(
                    f"a Table row has {len(cells)} cells for {len(self.columns)} columns"
                )
            self.rows.append(cells)
        self.caption = check_caption(caption)

    def render(self, key: str, step: int) -> Rendered:
        files: dict[str, bytes] = {}
        rows = []
        for row in self.rows:
            out = []
            for cell in row:
                if isinstance(cell, MediaValue):
                    inner = cell.render(key, step)
                    files.update(inner.files)
                    out.append(inner.reference)
                else:
                    out.append(plain(cell, "a Table cell"))
            rows.append(out)
        body = canonical_json({"columns": self.columns, "rows": rows})
        table = file_reference("table", "json", body, key, step, columns=self.columns,
                               rows=len(rows), caption=self.caption)
        files.update(table.files)
        return Rendered(table.reference, files)
