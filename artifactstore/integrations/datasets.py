"""PyTorch datasets over the files of one version, read through the store.

::

    from torch.utils.data import DataLoader
    from artifactstore.integrations.datasets import VersionDataset

    data = VersionDataset("images:latest", transform=decode)      # map-style
    loader = DataLoader(data, batch_size=64, shuffle=True, num_workers=4)

Nothing is downloaded up front. The dataset lists the version's files once (its tree:
paths, sizes, digests), and each item reads its one file: from this machine's file
cache when it is there, else through the store (that file's chunks only, with range
reads, each checked), and the cache keeps it for the next epoch within its size limit
(``ARTIFACTSTORE_CACHE_MAX_BYTES``). So the cache holds at most what was read, and
memory holds one file per worker at a time.

Workers: a dataset pickles as (store URL, project, the exact version ``name:vN`` it
resolved, its file list), and each worker process opens the store on first use, so
``num_workers > 0`` works with fork and spawn alike, and ``latest`` cannot move between
workers. :class:`VersionDataset` is map-style (any sampler shuffles it);
:class:`VersionIterableDataset` streams, shuffled per epoch (``set_epoch``) when asked,
and splits its files between the ranks of a distributed job and the workers of each
loader so that every file is read exactly once per epoch.

An item is ``(path, bytes)``, or what ``transform(path, bytes)`` returns.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import artifactstore
from artifactstore.core.errors import InvalidInputError, MissingExtraError
from artifactstore.model.tree import FileEntry

try:
    import torch.distributed as _dist
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError(
        "PyTorch datasets need torch: pip install 'artifactstore[torch]'") from exc

__all__ = ["VersionDataset", "VersionIterableDataset"]

Transform = Callable[[str, bytes], Any]


@dataclass(frozen=True, slots=True)
class _Source:
    """What a worker needs to open the version on its own (all picklable)."""

    url: str
    ref: str
    #: ``Store.reopen_options``: project, cache folder, file cache, backend options
    options: tuple[tuple[str, Any], ...]


class _VersionFiles:
    """The file list of one resolved version and, per process, the opened store."""

    def __init__(self, ref: str, store: artifactstore.Store | None, url: str | None,
                 project: str | None, prefix: str | None,
                 select: Callable[[str], bool] | None) -> None:
        owned = store is None
        opened = store or artifactstore.open(url, project=project, create=False)
        try:
            version = opened.artifact(ref)
            files = [e for e in version.files() if isinstance(e, FileEntry)
                     and (prefix is None or e.path.startswith(prefix))
                     and (select is None or select(e.path))]
            self.source = _Source(opened.url, version.ref,
                                  tuple(sorted(opened.reopen_options.items())))
        finally:
            if owned:
                opened.close()
        if not files:
            raise InvalidInputError(f"{ref} holds no stored file to read"
                                    + (f" under {prefix!r}" if prefix else ""))
        #: the files' entries (paths, sizes, digests, chunks): reads need no tree lookup
        self.entries: list[FileEntry] = files
        self.paths: list[str] = [e.path for e in files]
        self._version: Any = None
        self._store: artifactstore.Store | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"source": self.source, "entries": self.entries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.source, self.entries = state["source"], state["entries"]
        self.paths = [e.path for e in self.entries]
        self._version, self._store, self._lock = None, None, threading.Lock()
        self._pid = 0

    def read(self, index: int) -> bytes:
        with self._lock:
            if self._pid != os.getpid():
                # first use in this process: a forked worker inherits its parent's
                # opened store, whose connections and event loop are not its own
                self._version = self._store = None
                self._pid = os.getpid()
            if self._version is None:
                source = self.source
                self._store = artifactstore.open(source.url, create=False,
                                                 **dict(source.options))
                self._version = self._store.artifact(source.ref)
            version = self._version
        data: bytes = version.read_bytes(self.entries[index])
        return data

    def close(self) -> None:
        with self._lock:
            if self._store is not None and self._pid == os.getpid():
                self._store.close()
            self._store, self._version = None, None


class _OverVersion:
    """What both datasets share: the version's files, the transform, the item."""

    def __init__(self, ref: str, *, store: artifactstore.Store | None = None,
                 url: str | None = None, project: str | None = None,
                 prefix: str | None = None, select: Callable[[str], bool] | None = None,
                 transform: Transform | None = None) -> None:
        self._files = _VersionFiles(ref, store, url, project, prefix, select)
        self.transform = transform

    @property
    def ref(self) -> str:
        """The exact version read (``name:vN``)."""
        return self._files.source.ref

    @property
    def paths(self) -> Sequence[str]:
        return self._files.paths

    def __len__(self) -> int:
        """Files in the dataset (in a whole epoch, for every rank and worker)."""
        return len(self._files.paths)

    def _item(self, index: int) -> Any:
        data = self._files.read(index)
        path = self._files.paths[index]
        return (path, data) if self.transform is None else self.transform(path, data)

    def close(self) -> None:
        """Close the store this process opened for reading (reopened if used again)."""
        self._files.close()


class VersionDataset(_OverVersion, Dataset[Any]):
    """Map-style: item ``i`` is the ``i``-th file in path order (``paths[i]``).

    ``ref`` is ``name``, ``name:vN``, ``name:alias`` or ``name:latest``, resolved once
    here; ``store`` an opened store (else ``url``/``project``, or the one discovery
    finds); ``prefix`` keeps the files under a folder, ``select(path)`` those it
    accepts; ``transform(path, data)`` makes the item.
    """

    def __getitem__(self, index: int) -> Any:
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of a dataset of {len(self)} files")
        return self._item(index % len(self))


class VersionIterableDataset(_OverVersion, IterableDataset[Any]):
    """Streaming: every file once per epoch, split between distributed ranks and
    loader workers (each reads only its share), in path order or, with ``shuffle``,
    in an order drawn from ``seed`` and the epoch (call :meth:`set_epoch` before each
    epoch, as with PyTorch's ``DistributedSampler``). Arguments as :class:`VersionDataset`.
    """

    def __init__(self, ref: str, *, store: artifactstore.Store | None = None,
                 url: str | None = None, project: str | None = None,
                 prefix: str | None = None, select: Callable[[str], bool] | None = None,
                 transform: Transform | None = None, shuffle: bool = False,
                 seed: int = 0) -> None:
        super().__init__(ref, store=store, url=url, project=project, prefix=prefix,
                         select=select, transform=transform)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> list[int]:
        """This epoch's order of file indexes, before it is split."""
        order = list(range(len(self._files.paths)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        return order

    def share(self) -> list[int]:
        """The file indexes this process reads this epoch: its rank's share, then its
        worker's share of that."""
        order = self.order()
        if _dist.is_available() and _dist.is_initialized():
            order = order[_dist.get_rank()::_dist.get_world_size()]
        worker = get_worker_info()
        if worker is not None:
            order = order[worker.id::worker.num_workers]
        return order

    def __iter__(self) -> Iterator[Any]:
        for index in self.share():
            yield self._item(index)
