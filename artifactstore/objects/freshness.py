"""When a writer may use its merged index without listing ``index/`` again (design §15).

Every commit session looks at the domain's condemnations (one listing, usually
empty). Index rows leave the store only by a sweep (gc, purge), and a sweep removes
rows only for blobs a condemnation names; that condemnation is visible for at least
the commit window ``W`` before the sweep and until after it. So a writer whose
condemnation looks found none and followed each other by less than ``W / 2``, back
to one made before a full listing of ``index/``, has missed no sweep since that
listing: its index (that listing plus its own writes) still holds only blobs that
are stored. It may then skip the listing, which is what made writing N versions cost
N listings of N index objects. What it gives up is deduplicating against blobs other
writers stored since (they are written again: duplicates, never a dangling
reference); a full listing still happens every ``relist_after`` seconds, after any
gap of ``W / 2`` and whenever a condemnation is seen.

All times are one process's monotonic clock: only durations are compared, never
another host's clock.
"""

from __future__ import annotations

__all__ = ["IndexFreshness"]


class IndexFreshness:
    """The chain of quiet condemnation looks behind one writer's merged index."""

    def __init__(self, commit_window: float, relist_after: float) -> None:
        self._half_window = commit_window / 2
        self._relist_after = relist_after
        self._quiet_at: float | None = None  # the last look, if it found no condemnation
        self._listed_at: float | None = None  # the last full listing's start
        self._trusted = False

    def _fresh(self, now: float) -> bool:
        return (self._quiet_at is not None and now - self._quiet_at < self._half_window
                and self._listed_at is not None and now - self._listed_at < self._relist_after)

    def may_skip(self, now: float) -> bool:
        """Whether the index needs no listing if a look now finds no condemnation."""
        return self._trusted and self._fresh(now)

    def looked(self, started: float, *, quiet: bool) -> None:
        """A listing of the condemnations began at ``started``; ``quiet``: it found none."""
        if not quiet or not self._fresh(started):
            self._trusted = False
        self._quiet_at = started if quiet else None

    def listed(self, started: float) -> None:
        """A full listing of ``index/`` began at ``started`` (and was merged)."""
        self._listed_at = started
        if self._quiet_at is not None and started - self._quiet_at < self._half_window:
            self._trusted = True  # a quiet look just before it anchors the chain

    def trusted(self) -> bool:
        """After a look: the index needs no listing (the chain holds)."""
        return self._trusted
