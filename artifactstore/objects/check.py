"""Checking one key domain: its index against its packs, and optionally the packs' bytes.

Implements docs/design.md, "Verify and repair". Vocabulary: *damage* is one
broken object (a pack, an index object, a blob no pack holds) together with the
blobs a reader can no longer get because of it; the version layer maps those
blobs back to the versions and files they belong to. Damage is collected, not
raised, so one report names every broken object.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from artifactstore.core.digest import Digest
from artifactstore.objects.scan import DomainScan

__all__ = ["Damage", "DomainReport", "check_domain"]


@dataclass(frozen=True, slots=True)
class Damage:
    """One broken object: ``kind`` ``pack``, ``index object``, ``blob`` (one no index
    lists) or ``version``; ``object`` its key or id; ``blobs`` (raw ids) are what
    readers lose because of it."""

    kind: str
    object: str
    problem: str
    detail: str = ""
    domain: str = ""
    blobs: frozenset[bytes] = field(default=frozenset(), repr=False)

    def __str__(self) -> str:
        return f"{self.kind} {self.object} {self.problem}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "object": self.object, "problem": self.problem,
                "detail": self.detail,
                "domain": self.domain, "blobs": len(self.blobs)}


class DamageSummary:
    """``ok`` and ``damaged`` for a report with a ``damage`` list."""

    damage: list[Damage]

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def damaged(self) -> list[str]:
        """One line per broken object."""
        return [str(d) for d in self.damage]


@dataclass
class DomainReport(DamageSummary):
    """What checking one domain found."""

    domain: str
    packs: int = 0  # on the backend
    index_objects: int = 0  # readable ones
    blobs: int = 0  # listed by them
    packs_checked: int = 0  # re-hashed
    blobs_checked: int = 0
    bytes_checked: int = 0
    #: packs no index object lists: an interrupted write's garbage, not damage
    unindexed_packs: list[str] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)


def check_domain(scan: DomainScan, read: Collection[Digest] = (),
                 progress: Callable[[int], None] | None = None) -> DomainReport:
    """Index objects readable, every indexed pack present; re-hash the packs in ``read``.

    Only packs that exist and are indexed are re-hashed; ``progress`` gets the
    bytes of each pack read.
    """
    report = DomainReport(scan.domain, len(scan.packs), scan.index_objects, len(scan.index))
    for key, why in sorted(scan.damaged_indexes.items()):
        report.damage.append(Damage(
            "index object", key, "cannot be read (what it listed is unreachable until "
            "'artifactstore repair index' rebuilds it from the packs)", why, scan.domain))
    for pack_id in sorted(scan.entries):
        if pack_id not in scan.packs:
            report.damage.append(_damage(scan, pack_id, "is missing (an index object lists it)",
                                         frozenset(scan.entries[pack_id])))
    report.unindexed_packs = [key for pack_id, key in sorted(scan.packs.items())
                              if pack_id not in scan.entries]
    for pack_id in sorted(read):
        if pack_id not in scan.packs or pack_id not in scan.entries:
            continue
        checked = scan.check_pack(pack_id)
        report.packs_checked += 1
        report.blobs_checked += checked.blobs
        report.bytes_checked += checked.size
        if checked.problem:
            report.damage.append(_damage(scan, pack_id, checked.problem, checked.bad,
                                         checked.detail))
        if progress is not None:
            progress(checked.size)
    return report


def _damage(scan: DomainScan, pack_id: Digest, problem: str, blobs: frozenset[bytes],
            detail: str = "") -> Damage:
    # Only blobs a reader fetches from this pack are lost: a copy in another pack
    # that the index prefers still reads.
    lost = frozenset(raw for raw in blobs if scan.reads_from(pack_id, raw))
    return Damage("pack", scan.pack_key(pack_id), problem, detail, scan.domain, lost)
