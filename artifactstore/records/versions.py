"""Version records (docs/design.md §10.1): the commit point of a version.

Vocabulary:

- **version record**: the immutable fact "version N of artifact A in project P
  is manifest M with content digest D", stored once under
  ``projects/<P>/artifacts/<A>/versions/<N, 10 digits>`` with ``put_if_absent``
  and never overwritten. Writing it is the commit point of a version.
- **tree digest** (the record's ``digest`` field): the id of the version's root
  tree; two versions of one project with the same tree digest hold identical files.
- **content digest** (``content``): the version's identity from its files alone,
  equal in every store, project and visibility (design §11.1, ``contentid``).
  Records written before it have none (``None``); readers compute it from the tree.
- **version log**: the records of one artifact, in number order.

A writer lists the log and creates number N+1; if another writer created it
first, it reads the winner and tries the next number, so two writers never share
a number (design §4). Records never change, so a :class:`VersionLog` caches
every record it has read or written.

This module also holds the helpers the alias log shares: key prefixes, times,
the default writer name and the typed field readers for stored maps.

Length: version records and the record fields every log shares (``Fields``), which
the other record modules import; one format, one module.
"""

from __future__ import annotations

import getpass
import os
import platform
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from artifactstore.backends import Backend
from artifactstore.backends.base import capable
from artifactstore.core import encoding
from artifactstore.core.digest import Digest
from artifactstore.core.errors import (
    ConfigurationError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    ReadOnlyError,
)
from artifactstore.model.names import (
    MAX_VERSION,
    NAME_RE,
    validate_artifact_name,
    validate_project_name,
    version_label,
)
from artifactstore.objects.envelope import Kind
from artifactstore.records import journal
from artifactstore.records.codec import PLAIN, UNSIGNED, RecordCodec, Signature

__all__ = ["NewVersion", "VersionLog", "VersionRecord", "artifact_prefix", "version_key"]

_SEQ_KEY: Final = re.compile(r"[0-9]{10}")
_TYPE: Final = re.compile(NAME_RE)
NONCE_SIZE: Final = 16


# -- shared helpers ------------------------------------------------------------------


def artifacts_prefix(project: str) -> str:
    """``projects/<project>/artifacts/``: every artifact of a project lives below."""
    return f"projects/{project}/artifacts/"


def artifact_prefix(project: str, artifact: str) -> str:
    """``projects/<project>/artifacts/<artifact>/``."""
    return f"{artifacts_prefix(project)}{artifact}/"


def version_key(project: str, artifact: str, number: int) -> str:
    """The key of version ``number``'s record."""
    return f"{artifact_prefix(project, artifact)}versions/{number:010d}"


_VERSION_KEY: Final = re.compile(r"projects/[^/]+/artifacts/[^/]+/versions/[0-9]{10}")


def is_version_key(key: str) -> bool:
    """Whether ``key`` names a version record (create-only; re-encryption aside)."""
    return _VERSION_KEY.fullmatch(key) is not None


def seq_of(name: str) -> int | None:
    """The number a 10-digit key segment holds, or None for a foreign name.

    Foreign names under a log prefix are ignored, so a later format can add
    side objects (signatures) next to the records.
    """
    return int(name) if _SEQ_KEY.fullmatch(name) else None


def now() -> str:
    """The current time, ISO-8601 UTC with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_writer() -> str:
    """``user@host``, for records that do not name their writer."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        user = "unknown"
    return f"{user}@{platform.node() or 'localhost'}"


def require_atomic_create(backend: Backend) -> None:
    """Refuse to write refs through a backend whose ``put_if_absent`` can race.

    Why: version numbers and alias sequence numbers are claimed with
    ``put_if_absent``; without an atomic create two writers could both "win" the
    same number and one version or alias move would be silently lost.
    """
    if capable(backend, "read_only"):
        raise ReadOnlyError(
            f"the store at {backend.url} is opened read-only (a web location, or "
            "read-only by request); open it writable (s3://, gs://, a folder) to change it"
        )
    if not backend.supports_atomic_create:
        raise ConfigurationError(
            f"the backend at {backend.url} has no atomic create (put-if-absent), so "
            "concurrent writers could overwrite each other's versions; use a local "
            "folder, s3:// or gs:// store to write"
        )


class Fields:
    """Typed reads from a decoded map; any mismatch is an IntegrityError naming the key."""

    def __init__(self, body: object, key: str, signature: Signature = UNSIGNED) -> None:
        if type(body) is not dict:
            raise IntegrityError(f"ref {key} is malformed: its payload is not a map")
        self._body: dict[Any, Any] = body
        self._key = key
        #: who signed the record, and whether it verified (records.py)
        self.signature = signature

    def _bad(self, name: str, expected: str) -> IntegrityError:
        if name not in self._body:
            return IntegrityError(f"ref {self._key} is malformed: field {name!r} is missing")
        return IntegrityError(
            f"ref {self._key} is malformed: field {name!r} is "
            f"{type(self._body[name]).__name__}, expected {expected}"
        )

    def text(self, name: str) -> str:
        value = self._body.get(name)
        if type(value) is not str:
            raise self._bad(name, "str")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self._body.get(name)
        if value is not None and type(value) is not str:
            raise self._bad(name, "str or nil")
        return value

    def count(self, name: str) -> int:
        value = self._body.get(name)
        if type(value) is not int or value < 0:
            raise self._bad(name, "int >= 0")
        return value

    def opt_count(self, name: str) -> int | None:
        value = self._body.get(name)
        if value is not None and (type(value) is not int or value < 0):
            raise self._bad(name, "int >= 0 or nil")
        return value

    def flag(self, name: str) -> bool:
        value = self._body.get(name)
        if type(value) is not bool:
            raise self._bad(name, "bool")
        return value

    def digest(self, name: str) -> Digest:
        value = self._body.get(name)
        if type(value) is not bytes or len(value) != 32:
            raise self._bad(name, "32-byte bin")
        return Digest(value)

    def opt_digest(self, name: str) -> Digest | None:
        return None if self._body.get(name) is None else self.digest(name)

    def mapping(self, name: str) -> dict[str, Any]:
        value = self._body.get(name)
        if type(value) is not dict or any(type(k) is not str for k in value):
            raise self._bad(name, "map with str keys")
        return value

    def raw_bytes(self, name: str) -> bytes:
        value = self._body.get(name)
        if type(value) is not bytes:
            raise self._bad(name, "bin")
        return value

    def opt_mapping(self, name: str) -> dict[str, Any] | None:
        return None if self._body.get(name) is None else self.mapping(name)

    def items(self, name: str) -> list[Any]:
        value = self._body.get(name)
        if type(value) is not list:
            raise self._bad(name, "array")
        return value

    def number(self, name: str) -> float:
        value = self._body.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._bad(name, "number")
        return float(value)

    def opt_number(self, name: str) -> float | None:
        return None if self._body.get(name) is None else self.number(name)

    def expect_segment(self, segment: str, key: str) -> None:
        """The key must hold ``segment`` (the tag of the record's own name)."""
        if f"/{segment}/" not in key:
            raise IntegrityError(
                f"ref {key} is misplaced: it names another artifact or alias; "
                "run 'artifactstore verify'"
            )

    def expect(self, name: str, value: object) -> None:
        """The field must equal ``value``: the record must describe the key it is stored at.

        Why: a valid record copied under another key (another artifact, number
        or alias) would otherwise be served as that version.
        """
        if self._body.get(name) != value or type(self._body.get(name)) is not type(value):
            raise IntegrityError(
                f"ref {self._key} is misplaced: its {name} is {self._body.get(name)!r:.60}, "
                f"the key says {value!r}; run 'artifactstore verify'"
            )


def read_ref(backend: Backend, key: str, kind: Kind, codec: RecordCodec = PLAIN) -> Fields:
    """Get, open and decode the ref at ``key`` (NotFoundError if absent)."""
    body, signature = codec.open(kind, key, backend.get(key))
    return Fields(body, key, signature)


# -- version records -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One committed version: ``artifact:v<number>`` is ``manifest`` with content ``digest``.

    ``metadata`` is read-only (a mapping proxy); records are shared from a cache.
    """

    project: str
    artifact: str
    number: int
    type: str
    manifest: Digest
    digest: Digest
    size: int
    files: int
    created_at: str
    created_by: str
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    run: str | None = None
    signature: Signature = field(default=UNSIGNED, hash=False, compare=False)
    #: the content digest (design §11.1); None in records written before it
    content: Digest | None = None

    @property
    def label(self) -> str:
        """``"v3"``."""
        return version_label(self.number)

    @property
    def ref(self) -> str:
        """``"name:v3"``."""
        return f"{self.artifact}:{self.label}"


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What a writer asks to commit as the next version of ``artifact``: the fields of
    its :class:`VersionRecord` but those the version log decides (project, number,
    time, signature). ``created_by`` None stands for ``user@host`` (``Refs`` fills it
    in); :meth:`VersionLog.commit` checks every field before it writes.
    """

    artifact: str
    _: KW_ONLY
    type: str
    manifest: Digest
    #: the tree digest
    digest: Digest
    size: int
    files: int
    description: str | None = None
    metadata: Mapping[str, Any] | None = field(default=None, hash=False)
    run: str | None = None
    created_by: str | None = None
    #: the content digest (design §11.1)
    content: Digest | None = None


def encode_version(record: VersionRecord, nonce: bytes, key: str,
                   codec: RecordCodec = PLAIN) -> bytes:
    """The envelope bytes of ``record``.

    ``nonce`` (random, per commit) makes every record's bytes unique, so a
    retried create that finds the key taken can tell its own record (the
    response was lost) from another writer's with the same fields.
    """
    return codec.seal(Kind.VERSION, key, _version_body(record, nonce))


def _version_body(record: VersionRecord, nonce: bytes) -> dict[str, Any]:
    return {
        "project": record.project,
        "artifact": record.artifact,
        "number": record.number,
        "type": record.type,
        "manifest": record.manifest.raw,
        "digest": record.digest.raw,
        "size": record.size,
        "files": record.files,
        "created_at": record.created_at,
        "created_by": record.created_by,
        "description": record.description,
        "metadata": dict(record.metadata),
        "run": record.run,
        "nonce": nonce,
    } | ({} if record.content is None else {"content": record.content.raw})


def decode_version(
    backend: Backend, key: str, project: str, artifact: str | None, number: int,
    codec: RecordCodec = PLAIN,
) -> VersionRecord:
    """Read and check the record at ``key``; it must name ``project/artifact:v<number>``.

    With ``artifact`` None (a private project's key holds a tag, not the name),
    the record's name must be the one the key's segment stands for.
    """
    f = read_ref(backend, key, Kind.VERSION, codec)
    f.expect("project", project)
    if artifact is None:
        artifact = f.text("artifact")
        f.expect_segment(codec.segment(artifact), key)
    f.expect("artifact", artifact)
    f.expect("number", number)
    kind = f.text("type")
    if _TYPE.fullmatch(kind) is None:
        raise IntegrityError(f"ref {key} is malformed: invalid type {kind!r:.60}")
    return VersionRecord(
        project=project,
        artifact=artifact,
        number=number,
        type=kind,
        manifest=f.digest("manifest"),
        digest=f.digest("digest"),
        size=f.count("size"),
        files=f.count("files"),
        created_at=f.text("created_at"),
        created_by=f.text("created_by"),
        description=f.opt_text("description"),
        metadata=types.MappingProxyType(f.mapping("metadata")),
        run=f.opt_text("run"),
        signature=f.signature,
        content=f.opt_digest("content"),
    )


def _check_count(name: str, value: int) -> int:
    if type(value) is not int or value < 0:
        raise InvalidInputError(f"{name} must be an int >= 0, got {value!r:.60}")
    return value


class VersionLog:
    """The version records of one project: list, read (cached) and commit."""

    def __init__(self, backend: Backend, project: str, codec: RecordCodec = PLAIN) -> None:
        self._backend = backend
        self._project = validate_project_name(project)
        self._codec = codec
        self._cache: dict[tuple[str, int], VersionRecord] = {}

    def key(self, artifact: str, number: int) -> str:
        """The key of ``artifact:v<number>``'s record (a tag instead of the name if private)."""
        return version_key(self._project, self._codec.segment(artifact), number)

    def numbers(self, artifact: str) -> list[int]:
        """Version numbers with a record, ascending (a fresh listing, never cached)."""
        prefix = f"{artifact_prefix(self._project, self._codec.segment(artifact))}versions/"
        found = (seq_of(key[len(prefix) :]) for key in self._backend.list(prefix))
        return [n for n in found if n is not None]

    def artifacts(self) -> list[str]:
        """Names of artifacts with at least one version record, sorted."""
        prefix = artifacts_prefix(self._project)
        first: dict[str, int] = {}
        for key in self._backend.list(prefix):
            segment, _, rest = key[len(prefix) :].partition("/")
            section, _, last = rest.partition("/")
            number = seq_of(last)
            if section == "versions" and number is not None:
                first[segment] = min(number, first.get(segment, number))
        if not self._codec.encrypted:
            return sorted(first)
        # Keys hold tags: the names are in the (encrypted) records.
        return sorted(self.read_key(version_key(self._project, segment, number)).artifact
                      for segment, number in first.items())

    def read_key(self, key: str) -> VersionRecord:
        """The record stored at ``key`` (a listed key), checked against it."""
        rest = key[len(artifacts_prefix(self._project)):]
        _, _, tail = rest.partition("/versions/")
        number = seq_of(tail)
        if number is None:
            raise IntegrityError(f"{key} is not a version record key")
        record = decode_version(self._backend, key, self._project, None, number, self._codec)
        self._cache.setdefault((record.artifact, number), record)
        return record

    def read(self, artifact: str, number: int) -> VersionRecord:
        """The record of ``artifact:v<number>``; NotFoundError (from the backend) if absent."""
        cached = self._cache.get((artifact, number))
        if cached is not None:
            return cached
        key = self.key(artifact, number)
        record = decode_version(self._backend, key, self._project, artifact, number,
                                self._codec)
        self._cache[(artifact, number)] = record
        return record

    def commit(
        self,
        new: NewVersion,
        *,
        deleted: frozenset[int] = frozenset(),
        guard: Callable[[], None] | None = None,
    ) -> tuple[VersionRecord, bool]:
        """Create the next version unless the latest has the same content; see ``Refs``.

        ``new.created_by`` must be given; ``deleted`` numbers are not the latest
        version (their numbers stay taken); ``guard`` runs right before each create.
        """
        require_atomic_create(self._backend)
        artifact, type, digest, created_by = new.artifact, new.type, new.digest, new.created_by
        validate_artifact_name(artifact)
        if not isinstance(type, str) or _TYPE.fullmatch(type) is None:
            raise InvalidInputError(
                f"invalid artifact type {type!r:.60}: use 1-128 of A-Z a-z 0-9 . _ -, "
                "starting with a letter or digit (for example 'dataset')"
            )
        for name, value in (("manifest", new.manifest), ("digest", digest),
                            ("content", new.content)):
            if not isinstance(value, Digest) and (name != "content" or value is not None):
                raise InvalidInputError(f"{name} must be a Digest, got {value!r:.60}")
        for name, text in (("description", new.description), ("run", new.run)):
            if text is not None and not isinstance(text, str):
                raise InvalidInputError(f"{name} must be a str or None, got {text!r:.60}")
        if not isinstance(created_by, str) or not created_by:
            raise InvalidInputError(f"created_by must be a non-empty str, got {created_by!r:.60}")
        _check_count("size", new.size)
        _check_count("files", new.files)
        meta = dict(new.metadata or {})
        if any(not isinstance(k, str) for k in meta):
            raise InvalidInputError("metadata keys must be str")
        # Refuse unencodable metadata before touching the store, and keep a private
        # copy exactly as a reader will decode it (tuples become lists).
        meta = encoding.unpack(encoding.pack(meta))
        nonce = os.urandom(NONCE_SIZE)

        numbers = self.numbers(artifact)
        live = [n for n in numbers if n not in deleted]
        head = self.read(artifact, live[-1]) if live else None
        if head is None and numbers:  # every version deleted: the type still binds
            type_of = self.read(artifact, numbers[-1]).type
            if type_of != type:
                head = self.read(artifact, numbers[-1])
        number = numbers[-1] + 1 if numbers else 0
        while True:
            if head is not None:
                if head.type != type:
                    raise InvalidInputError(
                        f"artifact {artifact!r} holds versions of type {head.type!r}, not "
                        f"{type!r}; log it under another name or with type {head.type!r}"
                    )
                if head.digest == digest:
                    return head, False
            if number > MAX_VERSION:
                raise InvalidInputError(
                    f"artifact {artifact!r} has reached the last version number {MAX_VERSION}"
                )
            record = VersionRecord(
                project=self._project,
                artifact=artifact,
                number=number,
                type=type,
                manifest=new.manifest,
                digest=digest,
                size=new.size,
                files=new.files,
                created_at=now(),
                created_by=created_by,
                description=new.description,
                metadata=types.MappingProxyType(meta),
                run=new.run,
                signature=self._codec.own_signature,
                content=new.content,
            )
            # The bytes are computed once per number: a retried create compares them.
            key = self.key(artifact, number)
            data = encode_version(record, nonce, key, self._codec)
            if guard is not None:
                guard()
            if self._backend.put_if_absent(key, data):
                self._cache[(artifact, number)] = record
                journal.note(self._backend, self._project, key)
                return record, True
            # Another writer took this number: its record is the new head.
            head = self.read(artifact, number)
            number += 1

    def reencrypt(self, record: VersionRecord, manifest: Digest, digest: Digest,
                  by: str) -> VersionRecord:
        """Overwrite ``record`` in place, sealed under the codec's current epoch and
        naming the re-encrypted ``manifest`` and tree ``digest`` (design §13.4).

        The one exception to create-only refs: ``project rekey --reencrypt`` runs it
        under the gc lock. The record is signed by the rekeying member; ``reencrypted``
        keeps who signed the original and when it moved.
        """
        key = self.key(record.artifact, record.number)
        body = _version_body(record, os.urandom(NONCE_SIZE))
        body.update(manifest=manifest.raw, digest=digest.raw, reencrypted={
            "at": now(), "by": by, "from_key_id": record.signature.key_id,
            "original_signer": record.signature.signer,
        })
        self._backend.put(key, self._codec.seal(Kind.VERSION, key, body))
        self._cache.pop((record.artifact, record.number), None)
        return self.read(record.artifact, record.number)

    def missing(self, artifact: str) -> NotFoundError:
        """The error for an artifact without versions."""
        return NotFoundError(
            f"artifact {artifact!r} not found in project {self._project!r}; "
            "run 'artifactstore ls' to see the project's artifacts"
        )
