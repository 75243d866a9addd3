"""Judging a project's records: is this the project its members made? (design §13.1, §18)

Vocabulary:

- **finding**: one object of ``projects/<p>/`` (present or missing) that is wrong,
  with what it affects: a forged, unsigned or badly signed record; a member event,
  key epoch or slot not signed by a member; a **contradiction** (a "public" record
  over key epochs, a recovery object or encrypted refs; member event 0 beside a
  genesis); a **gap** (a missing member event, key epoch or slot that other objects
  name or that the rules require).
- **judged listing** (:func:`judged_listing`): the keys of ``projects/<p>/`` the checks
  read: ``members/``, ``keys/`` and, unless the record says the project is encrypted,
  ``recovery`` and the name tags (``artifacts/n-…``). Nothing else of the project
  (versions, runs, journal, bundles, lifecycle, packs, index) can contradict the record,
  so nothing else is listed: a first contact costs four list requests, not one per 1,000
  keys of the project (design §13.5). A project without record is judged on one
  listing of all of it (``repository/access.py``).
- :func:`contradictions` judges from the judged listing (what a first contact can
  afford); :func:`check_project` reads every project object too (verify and audit).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from artifactstore.backends import Backend
from artifactstore.core.errors import ArtifactStoreError, NotFoundError
from artifactstore.objects.envelope import Kind
from artifactstore.records.projects import Member, ProjectInfo, ProjectKeys
from artifactstore.records.versions import read_ref, seq_of

__all__ = ["Finding", "check_project", "contradictions", "judged_listing"]

_TAG: Final = re.compile(r"artifacts/n-[0-9a-f]{32}/")
_EPOCH: Final = re.compile(r"keys/([0-9]{10})/(info|slots/([^/]+))")


@dataclass(frozen=True, slots=True)
class Finding:
    """An object of a project that is wrong (or missing), and what that affects."""

    key: str
    problem: str
    affects: str

    def __str__(self) -> str:
        return f"{self.key} {self.problem}; {self.affects}"


def judged_listing(backend: Backend, project: str, *, encrypted: bool = False) -> list[str]:
    """The keys of ``projects/<project>/`` that :func:`contradictions` and the member and
    key-epoch checks judge (see the module docstring), sorted.

    ``encrypted``: the record says private or team: the downgrade's evidence (recovery,
    name tags) is not looked for, only member event 0 and key epoch 0.
    """
    prefix = f"projects/{project}/"
    parts = [f"{prefix}members/", f"{prefix}keys/"]
    if not encrypted:
        parts.append(f"{prefix}artifacts/n-")
    found: list[str] = []
    for part in parts:
        found.extend(backend.list(part))
    if not encrypted:
        recovery = f"{prefix}recovery"
        found.extend(k for k in backend.list(recovery) if k == recovery)
    return sorted(found)


def _encrypted_parts(project: str, listed: Iterable[str]) -> list[str]:
    """Keys that only a private or team project has: key epochs, recovery, name tags."""
    prefix = f"projects/{project}/"
    found = []
    for key in listed:
        rest = key[len(prefix):]
        if rest.startswith("keys/") or rest == "recovery" or _TAG.match(rest):
            found.append(key)
    return found


def contradictions(project: str, info: ProjectInfo | None,
                   listed: Iterable[str]) -> list[Finding]:
    """What the judged listing of ``projects/<project>/`` (or a listing of all of it)
    shows against its record."""
    prefix = f"projects/{project}/"
    listed = list(listed)
    record = f"{prefix}project"
    if info is None:
        past = [k for k in listed if k.startswith(f"{prefix}members/")]
        past += _encrypted_parts(project, listed)
        if past:
            return [Finding(record, "is missing", f"{past[0]} and {len(past) - 1} more objects "
                            "show a project with members: its record was deleted; nothing "
                            "may be written until it is restored from a backup")]
        return []
    found = []
    if not info.encrypted:
        for key in _encrypted_parts(project, listed)[:1]:
            # Why: this is the downgrade of issue 14: a record saying "public" over a
            # private project would make clients write names and contents in plaintext.
            found.append(Finding(record, "says the project is public but "
                                 f"{key} exists (only private projects have it)",
                                 "it was replaced (a downgrade attack?): do not write; "
                                 "restore the record from a backup"))
    zero = f"{prefix}members/{0:010d}"
    if info.genesis is not None:
        if zero in listed:
            found.append(Finding(zero, "exists beside the genesis in the project record",
                                 "it was planted; delete it"))
        info0 = f"{prefix}keys/{0:010d}/info"
        if info0 in listed:
            found.append(Finding(info0, "exists beside the genesis in the project record",
                                 "it was planted; delete it"))
    elif zero not in listed:
        found.append(Finding(zero, "is missing (member event 0 of a project of the old "
                             "layout)", "nobody is a member: nobody can write or add members; "
                             "restore it from a backup"))
    return found


def check_project(backend: Backend, project: str) -> list[Finding]:
    """Every finding about ``project``'s records (reads each of them once)."""
    return _Check(backend, project).run()


class _Check:
    def __init__(self, backend: Backend, project: str) -> None:
        self.backend = backend
        self.project = project
        self.prefix = f"projects/{project}/"
        self.keys = ProjectKeys(backend, project, None)
        self.findings: list[Finding] = []
        #: fingerprints of everyone validly added at some point (removed ones included)
        self.ever: set[str] = set()
        self.next_seq = 0

    def note(self, key: str, problem: str, affects: str) -> None:
        self.findings.append(Finding(key, problem, affects))

    def run(self) -> list[Finding]:
        listed = judged_listing(self.backend, self.project)
        try:
            info = self.keys.info()
        except ArtifactStoreError as exc:
            self.note(f"{self.prefix}project", "cannot be trusted", f"{exc}; nothing may be "
                      "written to the project until it is restored from a backup")
            return self.findings
        self.findings += contradictions(self.project, info, listed)
        if info is None:
            return self.findings
        trusted, current, named = self._members(info)
        self._epochs(info, listed, trusted, current, named)
        return self.findings

    def _members(self, info: ProjectInfo) -> tuple[set[bytes], list[Member], set[int]]:
        """Replay the member events, noting each gap and each event signed by a non-member."""
        genesis = info.genesis
        current = [] if genesis is None else list(genesis.members)
        self.ever = {m.fingerprint for m in current}
        trusted = {m.ed25519 for m in [info.creator, *current]}
        named: set[int] = {0} if genesis is not None and genesis.key_id is not None else set()
        seqs = self.keys.member_seqs()
        first = 0 if genesis is None else 1
        self.next_seq = max(seqs, default=first - 1) + 1
        for missing in sorted(set(range(first, max(seqs, default=first - 1) + 1)) - set(seqs)):
            self.note(f"{self.prefix}members/{missing:010d}", "is missing",
                      f"the member events after it ({len(seqs)} present) replay without it: "
                      "who was added or removed there is unknown; restore it from a backup")
        for seq in seqs:
            if seq < first:
                continue  # a member event 0 beside a genesis: a contradiction, noted above
            key = f"{self.prefix}members/{seq:010d}"
            try:
                _, action, member, epoch, signature = self.keys.member_event(seq)
            except ArtifactStoreError as exc:
                self.note(key, "cannot be read", f"{exc}")
                continue
            signers = [info.creator] if seq == 0 else current
            if signature.signer not in {m.ed25519 for m in signers}:
                self.note(key, "is not signed by a member", "it was planted: its "
                          f"{action} of {member.fingerprint} is ignored; delete it")
                continue
            if epoch is not None:
                named.add(epoch)
            if action == "add" and member not in current:
                current.append(member)
                trusted.add(member.ed25519)
                self.ever.add(member.fingerprint)
            elif action == "remove" and member in current:
                current.remove(member)
        return trusted, current, named

    def _epochs(self, info: ProjectInfo, listed: list[str], trusted: set[bytes],
                current: list[Member], named: set[int]) -> None:
        infos: set[int] = set()
        slots: dict[int, set[str]] = {}
        for key in listed:
            m = _EPOCH.fullmatch(key[len(self.prefix):])
            epoch = None if m is None else seq_of(m.group(1))
            if m is None or epoch is None:
                continue
            if m.group(3) is None:
                infos.add(epoch)
            else:
                slots.setdefault(epoch, set()).add(m.group(3))
        genesis = info.genesis
        if genesis is not None and genesis.key_id is not None:
            infos.add(0)
            slots.setdefault(0, set()).update(genesis.slots)
        if not info.encrypted:
            return  # a public record over key objects is a contradiction, noted already
        named |= set(slots)
        if info.genesis is None:
            named.add(0)  # an old-layout private project starts with epoch 0
        for epoch in sorted(set(range(max(named | infos, default=-1) + 1)) - infos):
            what = "slots name it" if epoch in slots else "later epochs follow it"
            self.note(f"{self.prefix}keys/{epoch:010d}/info", "is missing",
                      f"{what}: data of key epoch {epoch} cannot be checked or read; "
                      "restore it from a backup")
        for epoch in sorted(infos):
            if epoch == 0 and genesis is not None:
                continue  # in the record, signed by the creator
            key = f"{self.prefix}keys/{epoch:010d}/info"
            self._signed(key, Kind.KEY_EPOCH, trusted, "a key epoch whose key its author "
                         "knows: members would encrypt new data for them; delete it")
        for epoch, fingerprints in sorted(slots.items()):
            for fingerprint in sorted(fingerprints):
                if epoch == 0 and genesis is not None and fingerprint in genesis.slots:
                    continue
                key = f"{self.prefix}keys/{epoch:010d}/slots/{fingerprint}"
                self._signed(key, Kind.KEY_SLOT, trusted, "a slot its author wrapped; "
                             "delete it")
        if genesis is None and info.visibility != "public":
            recovery = f"{self.prefix}recovery"
            if recovery in listed:
                self._signed(recovery, Kind.KEY_SLOT, {info.creator.ed25519},
                             "a passphrase its author chose; delete it")
        ever = {m.fingerprint for m in [info.creator, *current]} | self.ever
        orphans = sorted({f for fingerprints in slots.values() for f in fingerprints} - ever)
        if orphans:
            # Slots for someone no member event adds: the newest event was deleted (which
            # leaves no gap to see), or the slots were planted.
            self.note(f"{self.prefix}members/{self.next_seq:010d}", "is missing (or slots "
                      "were planted)", f"key slots exist for {', '.join(orphans)}, whom no "
                      "member event adds; restore the event from a backup, or delete the "
                      "slots")
        holders = list(dict.fromkeys([*current, info.creator]))
        for epoch in sorted(infos):
            for member in holders:
                if member not in current and epoch != 0:
                    continue  # a removed creator needs only its slot of epoch 0
                if member.fingerprint not in slots.get(epoch, set()):
                    self.note(f"{self.prefix}keys/{epoch:010d}/slots/{member.fingerprint}",
                              "is missing", f"member {member.fingerprint} cannot open key "
                              f"epoch {epoch}; a member holding it can add the slot again "
                              "(members rm + members add) or restore it from a backup")

    def _signed(self, key: str, kind: Kind, trusted: set[bytes], planted: str) -> None:
        try:
            f = read_ref(self.backend, key, kind)
        except NotFoundError:
            return  # deleted since the listing
        except ArtifactStoreError as exc:
            self.note(key, "cannot be read", str(exc))
            return
        if f.signature.state != "valid":
            self.note(key, f"has a {f.signature.state} signature", "it was tampered with")
        elif f.signature.signer not in trusted:
            self.note(key, "is not signed by a member", f"it was planted: {planted}")
