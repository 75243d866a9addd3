"""The store config object (docs/design.md §3).

Vocabulary: the *config* is the one object at the store root that says how to
read and write everything else: format version, chunker parameters, pack target,
compression and feature flags. It is created once with ``put_if_absent`` and
never changes.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from artifactstore.backends.base import Backend
from artifactstore.core import encoding
from artifactstore.core.chunking import ChunkerParams
from artifactstore.core.errors import (
    FormatError,
    InvalidInputError,
    NotFoundError,
    StoreNotFoundError,
)
from artifactstore.objects.bigchunks import BigChunks
from artifactstore.objects.deltas import DELTA_FEATURE
from artifactstore.objects.envelope import Compression, Kind, open_envelope, seal
from artifactstore.objects.layout import CONFIG_KEY

__all__ = ["FORMAT_VERSION", "JOURNAL_HEAD_FEATURE", "KNOWN_FEATURES", "StoreConfig",
           "create_or_load", "load"]

FORMAT_VERSION = 1
#: every writer of the store replaces the journal head after each entry (design §12.8,
#: records/journal.py), so readers may skip the window when the head did not change
JOURNAL_HEAD_FEATURE = "journal-head"
# Features this client implements; a store may require any of them.
KNOWN_FEATURES: frozenset[str] = frozenset({DELTA_FEATURE, JOURNAL_HEAD_FEATURE})
DEFAULT_PACK_TARGET = 16 << 20
#: seconds; a writer commits within half of it after checking its blobs, and gc
#: deletes condemned blobs no sooner than this after condemning them (design §15)
DEFAULT_COMMIT_WINDOW = 120.0


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """The decoded config object."""

    store_id: str
    created_at: str
    chunker: ChunkerParams = field(default_factory=ChunkerParams)
    pack_target: int = DEFAULT_PACK_TARGET
    compression: Compression = field(default_factory=Compression)
    mandatory_features: tuple[str, ...] = ()
    optional_features: tuple[str, ...] = ()
    format: int = FORMAT_VERSION
    commit_window: float = DEFAULT_COMMIT_WINDOW
    #: chunker and zstd policy of big compressible files (design §2.2); None: stores
    #: made before 2026-12-07 (issue 20), whose files all use ``chunker``
    big_chunks: BigChunks | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not 4096 <= self.pack_target <= 1 << 30:
            raise InvalidInputError(
                f"pack target {self.pack_target} out of range: use 4 KiB .. 1 GiB"
            )
        if not 0 < self.commit_window <= 86400:
            raise InvalidInputError(
                f"commit window {self.commit_window} s out of range: use 0 < s <= 86400"
            )

    @classmethod
    def new(
        cls,
        *,
        chunker: ChunkerParams | None = None,
        pack_target: int = DEFAULT_PACK_TARGET,
        compression: Compression | None = None,
        optional_features: tuple[str, ...] = (),
        commit_window: float = DEFAULT_COMMIT_WINDOW,
        big_chunks: BigChunks | None = BigChunks(),  # noqa: B008  # frozen: shared is fine
        delta_chunks: bool = True,
    ) -> StoreConfig:
        return cls(
            store_id=secrets.token_hex(16),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            chunker=chunker or ChunkerParams(),
            pack_target=pack_target,
            compression=compression or Compression(),
            optional_features=optional_features,
            # Why mandatory: a client without deltas cannot read such a store's chunks;
            # one without the head would write records readers skip until a full listing
            mandatory_features=((DELTA_FEATURE,) if delta_chunks and big_chunks is not None
                                else ()) + (JOURNAL_HEAD_FEATURE,),
            commit_window=float(commit_window),
            big_chunks=(BigChunks(chunker=big_chunks.chunker, compression=compression)
                        if big_chunks is not None and compression is not None
                        and compression.algorithm == "none" else big_chunks),
        )

    @property
    def delta_chunks(self) -> bool:
        """Whether writers may store delta chunks (objects/deltas.py, design §3)."""
        return DELTA_FEATURE in self.mandatory_features

    @property
    def journal_head(self) -> bool:
        """Whether readers may trust the journal head (records/journal.py, design §12.8)."""
        return JOURNAL_HEAD_FEATURE in self.mandatory_features

    @property
    def largest_chunk(self) -> int:
        """The longest chunk either chunker cuts (read windows, buffers)."""
        big = self.big_chunks.chunker.max_size if self.big_chunks is not None else 0
        return max(self.chunker.max_size, big)

    def to_bytes(self) -> bytes:
        body = {
            **self.extra,
            "format": self.format,
            "store_id": self.store_id,
            "created_at": self.created_at,
            "chunker": self.chunker.to_dict(),
            "pack_target": self.pack_target,
            "commit_window": float(self.commit_window),
            "compression": self.compression.to_dict(),
            "features": {
                "mandatory": list(self.mandatory_features),
                "optional": list(self.optional_features),
            },
        }
        if self.big_chunks is not None:  # older clients keep it as an unknown field
            body["big_chunks"] = self.big_chunks.to_dict()
        return seal(Kind.CONFIG, encoding.pack(body))

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str) -> StoreConfig:
        _, plaintext = open_envelope(
            data, expected_kind=Kind.CONFIG, raw_length=None, what=f"config of {where}"
        )
        body = encoding.unpack(plaintext, what=f"config of {where}")
        if not isinstance(body, dict):
            raise FormatError(f"config of {where} is not a map: the store is damaged")
        fmt = body.get("format")
        if fmt != FORMAT_VERSION:
            raise FormatError(
                f"store at {where} uses format {fmt!r}; this artifactstore reads format "
                f"{FORMAT_VERSION}: upgrade artifactstore to open it"
            )
        features = body.get("features") or {}
        mandatory = tuple(features.get("mandatory") or ())
        unknown = sorted(set(mandatory) - KNOWN_FEATURES)
        if unknown:
            raise FormatError(
                f"store at {where} requires features this artifactstore lacks: "
                f"{', '.join(unknown)}; upgrade artifactstore to open it"
            )
        known = {"format", "store_id", "created_at", "chunker", "pack_target",
                 "compression", "features", "commit_window", "big_chunks"}
        try:
            return cls(
                store_id=str(body["store_id"]),
                created_at=str(body["created_at"]),
                chunker=ChunkerParams.from_dict(body["chunker"]),
                pack_target=int(body["pack_target"]),
                compression=Compression.from_dict(body["compression"]),
                mandatory_features=mandatory,
                optional_features=tuple(features.get("optional") or ()),
                commit_window=float(body.get("commit_window", DEFAULT_COMMIT_WINDOW)),
                big_chunks=(BigChunks.from_dict(body["big_chunks"])
                            if "big_chunks" in body else None),
                extra={k: v for k, v in body.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, InvalidInputError) as exc:
            raise FormatError(f"config of {where} is damaged or incomplete: {exc}") from None


def load(backend: Backend, url: str | None = None) -> StoreConfig:
    """Read the config; ``StoreNotFoundError`` says how to create a store at ``url``
    (default: the backend's URL)."""
    try:
        data = backend.get(CONFIG_KEY)
    except NotFoundError:
        raise StoreNotFoundError.at(url or backend.url) from None
    return StoreConfig.from_bytes(data, where=backend.url)


def create_or_load(backend: Backend, wanted: StoreConfig) -> tuple[StoreConfig, bool]:
    """Create the config if the store has none; returns ``(config, created)``.

    An existing config is read first, so opening a store on read-only media with
    ``create`` writes nothing. Two clients initialising at once: one wins
    ``put_if_absent``, the other reads and uses the winner's config.
    """
    with contextlib.suppress(StoreNotFoundError):  # absent: created below
        return load(backend), False
    if backend.put_if_absent(CONFIG_KEY, wanted.to_bytes()):
        return wanted, True
    return load(backend), False
