"""Pins: what this machine has seen of a project, like SSH's ``known_hosts`` (design §13.5).

Vocabulary:

- **pin** (``<known_dir>/<project>/pin``, 0600, JSON, written atomically): the digest
  of the project record's stored bytes, its visibility, its creator's fingerprint, the
  store id, the highest key epoch seen and when it was first seen. Written on the first
  open of a project with a record (after the full consistency check), raised when a
  new key epoch is seen.
- **pin check**: on every later open, a record that differs, disappeared or changed
  visibility, or a project showing fewer key epochs than pinned, is refused
  (IntegrityError): a storage admin could otherwise swap the project under a client
  (docs/security.md, "downgrade"). It compares what the open reads anyway: no request.
- **re-pin**: ``artifactstore project trust`` forgets the project's folder (pin and
  high-water marks) and pins what the store says now, after a human checked.

The folder ``<known_dir>/<project>/`` is shared with the high-water marks; memory
stores keep no pins.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artifactstore.core.errors import IntegrityError
from artifactstore.records.projects import ProjectInfo

__all__ = ["Pin", "PinBook"]

_FILE = "pin"


@dataclass(frozen=True, slots=True)
class Pin:
    """What a project looked like when this machine first saw it."""

    record: str  # BLAKE3 hex of the record's stored bytes
    visibility: str
    creator: str  # fingerprint
    store_id: str
    epoch: int  # highest key epoch seen; -1 for a public project
    first_seen: str
    #: the identity found a member when last checked (public projects skip listing the
    #: member events for it: design §13.5 says what that leaves unnoticed)
    writer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class PinBook:
    """The pin of one project of one store on this machine."""

    def __init__(self, folder: Path, project: str, store_id: str) -> None:
        self.folder = folder / project  # shared with the high-water marks
        self.project = project
        self.store_id = store_id

    def load(self) -> Pin | None:
        try:
            raw = json.loads((self.folder / _FILE).read_text())
            return Pin(**raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            # A damaged pin protects nothing; say so rather than trust the store blindly.
            raise IntegrityError(f"the pin of project {self.project!r} in {self.folder} is "
                                 "damaged; check the project, then run 'artifactstore "
                                 f"project trust {self.project}'") from None

    def save(self, info: ProjectInfo, epoch: int, first_seen: str | None = None,
             writer: str | None = None) -> Pin:
        pin = Pin(info.digest, info.visibility, info.creator.fingerprint, self.store_id,
                  epoch, first_seen or datetime.now(UTC).isoformat(timespec="seconds"),
                  writer)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-pin-", dir=self.folder)
        try:
            with os.fdopen(fd, "w") as out:  # mkstemp makes it 0600
                json.dump(pin.as_dict(), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.folder / _FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return pin

    def forget(self) -> None:
        """Delete the project's folder: the pin and the high-water marks (a re-trust)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def changes(self, pin: Pin, info: ProjectInfo | None, epoch: int | None) -> list[str]:
        """What differs between ``pin`` and the project as the store shows it now
        (``epoch``: the highest key epoch listed, None when not listed)."""
        if info is None:
            return ["its project record disappeared"]
        found = []
        if info.visibility != pin.visibility:
            found.append(f"its visibility changed from {pin.visibility} to {info.visibility}")
        if info.creator.fingerprint != pin.creator:
            found.append(f"its creator changed from {pin.creator} to "
                         f"{info.creator.fingerprint}")
        if info.digest != pin.record and not found:
            found.append("its project record was replaced")
        if epoch is not None and epoch < pin.epoch:
            found.append(f"it shows key epochs up to {epoch}, {pin.epoch} were seen")
        return found

    def check(self, info: ProjectInfo | None, epoch: int | None) -> Pin | None:
        """Refuse a project that differs from its pin; returns the pin (None: first
        contact), raised to ``epoch`` when a newer key epoch is seen."""
        pin = self.load()
        if pin is None:
            return None
        if info is None and pin.store_id != self.store_id:
            # The store at this URL was deleted and made again (a new config, no project
            # yet): the pin described another store. Whoever creates the project now
            # goes through the first-contact checks (claim rules, design §13.1).
            self.forget()
            return None
        changed = self.changes(pin, info, epoch)
        if changed:
            # Why: a silent change of the record is how a storage admin would downgrade a
            # private project to plaintext or swap its members (docs/security.md).
            raise IntegrityError(
                f"project {self.project!r} is not the one this machine pinned on "
                f"{pin.first_seen}: {'; '.join(changed)}; if a member did this on purpose, "
                f"run 'artifactstore project trust {self.project}'")
        if info is not None and epoch is not None and epoch > pin.epoch:
            return self.save(info, epoch, pin.first_seen, pin.writer)
        return pin
