"""Refs: the versions and aliases of a project's artifacts (docs/design.md §10).

:class:`Refs` is the one entry point the layers above use. It writes version
records (:mod:`.versions`) and alias events (:mod:`.aliases`), both immutable and
created with ``put_if_absent`` only, and derives mutable state from them: the
latest version is the highest-numbered record, an alias's target is that of its
last event. Reading works on any backend; writing needs one with an atomic
create (``supports_atomic_create``), otherwise ``ConfigurationError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from artifactstore.backends import Backend
from artifactstore.core.digest import Digest
from artifactstore.core.errors import InvalidInputError, NotFoundError
from artifactstore.model.names import (
    LATEST,
    parse_version_label,
    validate_alias,
    validate_artifact_name,
    validate_project_name,
    validate_selector,
    version_label,
)
from artifactstore.records.aliases import AliasEvent, AliasLog, ProtectedAliasError
from artifactstore.records.codec import PLAIN, RecordCodec
from artifactstore.records.lifecycle import LifecycleLog, LifecycleState
from artifactstore.records.versions import NewVersion, VersionLog, VersionRecord, default_writer

__all__ = ["AliasEvent", "NewVersion", "ProtectedAliasError", "Refs", "VersionRecord"]


class Refs:
    """Version records and aliases of one project on one backend.

    Records and events are cached in memory (they never change); listings are
    not, so versions and alias moves by other writers are always seen.
    """

    def __init__(self, backend: Backend, project: str, codec: RecordCodec = PLAIN) -> None:
        self._backend = backend
        self._project = validate_project_name(project)
        #: how this project's refs are signed and sealed (records.py)
        self.codec = codec
        self._versions = VersionLog(backend, project, codec)
        self._aliases = AliasLog(backend, project, codec)
        #: deletions, restores, purges and retention (lifecycle.py)
        self.lifecycle = LifecycleLog(backend, project, codec)

    @property
    def project(self) -> str:
        """The project's name."""
        return self._project

    @property
    def backend(self) -> Backend:
        """The backend records are read through (with this client's high-water marks and
        local record copies, repository/opening.py)."""
        return self._backend

    # -- versions ---------------------------------------------------------------------

    def commit_version(
        self, new: NewVersion, *, guard: Callable[[], None] | None = None
    ) -> tuple[VersionRecord, bool]:
        """Commit ``new`` as the next version of ``new.artifact``; returns ``(record, created)``.

        If the latest version already has tree digest ``new.digest``, nothing is
        written and ``(latest, False)`` is returned; this also makes a retried
        commit idempotent. Otherwise the next free number is claimed with
        ``put_if_absent``; concurrent writers get distinct numbers. The
        ``type`` must equal that of the artifact's earlier versions
        (InvalidInputError). ``created_by`` defaults to ``user@host``. Deleted
        versions are skipped when finding the latest one, but keep their numbers.
        ``guard`` is called right before the record is created (the commit point):
        the object store's last check that every blob is still there (design §15).
        """
        validate_artifact_name(new.artifact)
        if new.created_by is None:
            new = replace(new, created_by=default_writer())
        return self._versions.commit(
            new, deleted=self.lifecycle.state().deleted_numbers(new.artifact), guard=guard)

    def artifacts(self, *, include_deleted: bool = False) -> list[str]:
        """Names of the project's artifacts with a live version (or any), sorted."""
        names = self._versions.artifacts()
        if include_deleted:
            return names
        state = self.lifecycle.state()
        if not state.deleted:
            return names
        return [n for n in names
                if set(self._versions.numbers(n)) - state.deleted_numbers(n)]

    def versions(self, artifact: str, *, include_deleted: bool = False) -> list[VersionRecord]:
        """Every live version of ``artifact`` (every one with ``include_deleted``), ascending."""
        numbers = self._versions.numbers(validate_artifact_name(artifact))
        if not include_deleted:
            gone = self.lifecycle.state().deleted_numbers(artifact)
            numbers = [n for n in numbers if n not in gone] if numbers else numbers
            if not numbers and gone:
                raise self._all_deleted(artifact)
        if not numbers:
            raise self._versions.missing(artifact)
        return [self._versions.read(artifact, n) for n in numbers]

    def version(
        self, artifact: str, number: int, *, include_deleted: bool = False
    ) -> VersionRecord:
        """Version ``number`` of ``artifact``; NotFoundError naming ``artifact:vN``.

        A deleted version is NotFound too (the message says how to restore it)
        unless ``include_deleted``.
        """
        if include_deleted:
            return self._record_of(artifact, number)
        return self._live_version(artifact, number)[0]

    def _record_of(self, artifact: str, number: int) -> VersionRecord:
        try:
            return self._versions.read(validate_artifact_name(artifact), number)
        except NotFoundError:
            pass
        numbers = self._versions.numbers(artifact)
        if not numbers:
            raise self._versions.missing(artifact) from None
        raise NotFoundError(
            f"version {artifact}:{version_label(number)} not found in project "
            f"{self._project!r}; the latest is {artifact}:{version_label(numbers[-1])} "
            f"(see 'artifactstore ls {artifact}')"
        )

    def _live_version(self, artifact: str, number: int) -> tuple[VersionRecord, LifecycleState]:
        record = self._record_of(artifact, number)
        state = self.lifecycle.state()
        tombstone = state.tombstone(artifact, number)
        if tombstone is None:
            return record, state
        how = ("it was purged and cannot be restored" if tombstone.action == "purge"
               else f"restore it with 'artifactstore restore {artifact}:{record.label}'")
        raise NotFoundError(
            f"version {artifact}:{record.label} was deleted on {tombstone.at[:19]} by "
            f"{tombstone.by}; {how}"
        )

    def latest(self, artifact: str) -> VersionRecord:
        """The newest live version of ``artifact`` (deleted ones are skipped)."""
        return self._latest(artifact)[0]

    def _latest(self, artifact: str) -> tuple[VersionRecord, LifecycleState]:
        numbers = self._versions.numbers(validate_artifact_name(artifact))
        if not numbers:
            raise self._versions.missing(artifact)
        state = self.lifecycle.state()
        gone = state.deleted_numbers(artifact)
        live = [n for n in numbers if n not in gone]
        if not live:
            raise self._all_deleted(artifact)
        return self._versions.read(artifact, live[-1]), state

    def reencrypt_version(self, record: VersionRecord, manifest: Digest,
                          digest: Digest) -> VersionRecord:
        """Overwrite ``record`` under the current key epoch (``project rekey --reencrypt``)."""
        return self._versions.reencrypt(record, manifest, digest, default_writer())

    def lifecycle_state(self) -> LifecycleState:
        """The replayed lifecycle log (a fresh listing)."""
        return self.lifecycle.state()

    def version_numbers(self, artifact: str) -> list[int]:
        """Every version number with a record, deleted ones included (a fresh listing)."""
        return self._versions.numbers(validate_artifact_name(artifact))

    def resolve(self, artifact: str, selector: str) -> VersionRecord:
        """The version ``selector`` names: ``latest``, ``vN`` or an alias."""
        return self.resolve_judged(artifact, selector)[0]

    def resolve_judged(self, artifact: str, selector: str
                       ) -> tuple[VersionRecord, LifecycleState]:
        """:meth:`resolve`, and the lifecycle state (one fresh listing) that found the
        version live: a download that follows at once meets the tombstones through it
        instead of listing them again."""
        if selector == LATEST:
            return self._latest(artifact)
        number = parse_version_label(selector)
        if number is not None:
            return self._live_version(artifact, number)
        validate_artifact_name(artifact)
        validate_selector(selector)
        event = self._aliases.last(artifact, selector)
        if event is None or event.target is None:
            self._require_artifact(artifact)
            state = "was removed" if event is not None else "does not exist"
            raise NotFoundError(
                f"alias {artifact}:{selector} {state} in project {self._project!r}; "
                f"use {artifact}:latest or {artifact}:vN, or set the alias"
            )
        return self._live_version(artifact, event.target)

    # -- aliases ----------------------------------------------------------------------

    def set_alias(
        self,
        artifact: str,
        alias: str,
        number: int,
        *,
        force: bool = False,
        protect: bool | None = None,
        by: str | None = None,
    ) -> AliasEvent:
        """Point ``alias`` at version ``number``, appending an event.

        ``protect`` True/False protects/unprotects the alias, None keeps its
        protection. A protected alias refuses to move or be unprotected without
        ``force`` (ProtectedAliasError). Setting the target and protection it
        already has writes nothing and returns the current last event.
        """
        validate_alias(alias)
        self.version(artifact, number)  # the target must exist

        def decide(last: AliasEvent | None) -> tuple[int | None, bool, bool] | None:
            current = None if last is None else last.target
            guarded = last is not None and last.protected
            protected = guarded if protect is None else protect
            if current == number and protected == guarded:
                return None
            if guarded and not force:
                raise self._protected(artifact, alias, current,
                                      "move" if current != number else "unprotect")
            return number, protected, guarded

        return self._aliases.append(artifact, alias, self._by(by), decide)

    def set_protection(
        self, artifact: str, alias: str, protect: bool, *, by: str | None = None
    ) -> AliasEvent:
        """Protect (``protect`` True) or unprotect ``alias`` where it points now.

        Asking for it is the explicit act ``force`` stands for elsewhere, so an
        unprotect is recorded as forced. The target is the one of the last event
        (re-read on a lost race), so a concurrent move is never undone. NotFoundError
        if the alias is not set; the state it already has writes nothing.
        """
        validate_artifact_name(artifact)
        validate_alias(alias)

        def decide(last: AliasEvent | None) -> tuple[int | None, bool, bool] | None:
            if last is None or last.target is None:
                self._require_artifact(artifact)
                raise NotFoundError(
                    f"alias {artifact}:{alias} is not set in project {self._project!r}; "
                    f"set it first with 'artifactstore alias set {artifact}:vN {alias}'"
                )
            if last.protected == protect:
                return None
            return last.target, protect, last.protected

        return self._aliases.append(artifact, alias, self._by(by), decide)

    def remove_alias(
        self, artifact: str, alias: str, *, force: bool = False, by: str | None = None
    ) -> AliasEvent:
        """Remove ``alias``, appending an event with target None.

        NotFoundError if the alias is not set; a protected alias needs ``force``.
        """
        validate_artifact_name(artifact)
        validate_alias(alias)

        def decide(last: AliasEvent | None) -> tuple[int | None, bool, bool] | None:
            if last is None or last.target is None:
                raise NotFoundError(
                    f"alias {artifact}:{alias} is not set in project {self._project!r}; "
                    "nothing to remove"
                )
            if last.protected and not force:
                raise self._protected(artifact, alias, last.target, "remove")
            return None, False, last.protected

        return self._aliases.append(artifact, alias, self._by(by), decide)

    def alias_history(self, artifact: str, alias: str) -> list[AliasEvent]:
        """Every event of ``alias``, oldest first (``seq`` 0, 1, …)."""
        validate_artifact_name(artifact)
        validate_alias(alias)
        history = self._aliases.history(artifact, alias)
        if not history:
            self._require_artifact(artifact)
            raise NotFoundError(
                f"alias {artifact}:{alias} has never been set in project {self._project!r}; "
                f"set it with 'artifactstore alias set {artifact}:vN {alias}'"
            )
        return history

    def alias_event(self, artifact: str, alias: str, seq: int) -> AliasEvent:
        """Event ``seq`` of ``alias`` (with its signature)."""
        return self._aliases.read(validate_artifact_name(artifact), validate_alias(alias), seq)

    def aliases(self, artifact: str) -> dict[str, int]:
        """Current alias -> version number; removed aliases are absent."""
        validate_artifact_name(artifact)
        last_seqs = self._aliases.last_seqs(artifact)
        if not last_seqs:
            self._require_artifact(artifact)
        return self._targets(artifact, last_seqs)

    def aliases_of(self, record: VersionRecord) -> list[str]:
        """The aliases pointing at ``record`` now, sorted, with ``latest`` first when it
        is the newest live version (three listings: aliases, versions, lifecycle)."""
        return self.aliases_by_version(record.artifact).get(record.number, [])

    def aliases_by_version(self, artifact: str) -> dict[int, list[str]]:
        """Version number -> the aliases pointing at it now, as :meth:`aliases_of` gives
        them, for every version of ``artifact`` at once (the same three listings)."""
        current = self._targets(artifact, self._aliases.last_seqs(artifact))
        found: dict[int, list[str]] = {}
        for alias, number in sorted(current.items()):
            found.setdefault(number, []).append(alias)
        try:
            newest = self.latest(artifact).number
        except NotFoundError:
            return found  # every version deleted: no latest
        found.setdefault(newest, []).insert(0, LATEST)
        return found

    def _targets(self, artifact: str, last_seqs: Mapping[str, int]) -> dict[str, int]:
        current: dict[str, int] = {}
        for alias, seq in sorted(last_seqs.items()):
            target = self._aliases.read(artifact, alias, seq).target
            if target is not None:
                current[alias] = target
        return current

    # -- helpers ----------------------------------------------------------------------

    def _all_deleted(self, artifact: str) -> NotFoundError:
        return NotFoundError(
            f"every version of {artifact!r} in project {self._project!r} was deleted; "
            f"'artifactstore ls {artifact} --deleted' lists them, 'artifactstore restore' "
            "brings one back"
        )

    def _require_artifact(self, artifact: str) -> None:
        if not self._versions.numbers(artifact):
            raise self._versions.missing(artifact)

    def _protected(
        self, artifact: str, alias: str, target: int | None, action: str
    ) -> ProtectedAliasError:
        where = "" if target is None else f" (it points at {version_label(target)})"
        return ProtectedAliasError(
            f"alias {artifact}:{alias} is protected{where}; pass force=True "
            f"(--force) to {action} it, or lift the protection first with "
            f"'artifactstore alias unprotect {artifact}:{alias}'"
        )

    @staticmethod
    def _by(by: str | None) -> str:
        if by is None:
            return default_writer()
        if not isinstance(by, str) or not by:
            raise InvalidInputError(f"by must be a non-empty str, got {by!r:.60}")
        return by
