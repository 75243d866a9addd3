"""A run's config as scripts use it (W&B's ``run.config``): a mapping that also reads and
writes by attribute (``run.config.lr``), checked on every change so that it can always
be stored, and that knows whether it changed after the run started: a changed config is
recorded by the run's ``end`` event (docs/design.md §12.2)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from artifactstore.records.runs import check_encodable

__all__ = ["RunConfig"]


class RunConfig(MutableMapping[str, Any]):
    """``config["lr"]``, ``config.lr``, ``config.update({...})``, ``dict(config)``."""

    __slots__ = ("_data", "_start")

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        data = check_encodable("config", initial or {})
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_start", dict(data))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        checked = check_encodable("config", {key: value})  # a bad value changes nothing
        self._data.update(checked)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"the run's config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"RunConfig({self._data!r})"

    def update(self, other: Any = (), /, allow_val_change: bool | None = None,
               **more: Any) -> None:
        """Set several keys at once (``allow_val_change`` is W&B's and changes nothing
        here: every value may change, and the end of the run records the last)."""
        del allow_val_change
        merged = dict(other, **more)
        self._data.update(check_encodable("config", merged))

    def setdefaults(self, defaults: Mapping[str, Any]) -> None:
        """Set the keys of ``defaults`` that are not set yet (W&B's ``setdefaults``)."""
        self.update({k: v for k, v in defaults.items() if k not in self._data})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)

    @property
    def changed(self) -> bool:
        """Whether it differs from the config the run started with."""
        return bool(self._data != self._start)
