"""Projects in the layout written before the genesis (design §13.1, "old layout").

Before issue 14 a project was created as separate objects: the record, member event
0 (the creator), for private/team projects the recovery object and member event 1
(with a passphrase), key epoch 0's info and one slot per initial member. Stores made
then must keep reading and working; nothing in the package writes this layout any
more, so tests make it here, the way that code did.
"""

from __future__ import annotations

import os

from artifactstore.core.crypto import ScryptParams, generate_key
from artifactstore.objects.envelope import Kind
from artifactstore.records.projects import Member, ProjectKeys, recovery_keys
from artifactstore.records.versions import now

__all__ = ["create_old_layout"]


def create_old_layout(keys: ProjectKeys, visibility: str, creator: Member, *,
                      passphrase: str | None = None,
                      scrypt: ScryptParams | None = None) -> dict[int, bytes]:
    """Create ``keys``' project as the old code did; returns the epoch keys."""
    project = keys._project
    assert keys._create(Kind.PROJECT, f"projects/{project}/project", {
        "visibility": visibility, "created_at": now(), "creator": creator.as_body()})
    keys._info = None
    keys._append_member("add", creator, epoch=None if visibility == "public" else 0)
    if visibility == "public":
        return {}
    epoch_key = generate_key()
    members = [creator]
    if passphrase is not None:
        params, salt = scrypt or ScryptParams(), os.urandom(32)
        recovery = recovery_keys(passphrase, params, salt).member
        keys._create(Kind.KEY_SLOT, f"projects/{project}/recovery", {
            "scrypt": {"log_n": params.log_n, "r": params.r, "p": params.p},
            "salt": salt, "member": recovery.as_body()})
        keys._append_member("add", recovery, epoch=0)
        members.append(recovery)
    keys._write_epoch(0, epoch_key, members)
    return {0: epoch_key}
