"""Key layout of a store (docs/design.md §1).

Every key the object store reads or writes is built here, so the layout is
defined in one place. A *domain* is a set of blobs that may deduplicate against
each other (``plain`` for unencrypted content).
"""

from __future__ import annotations

import re

from artifactstore.core.digest import Digest
from artifactstore.core.errors import InvalidInputError

__all__ = [
    "CONFIG_KEY",
    "PLAIN_DOMAIN",
    "index_key",
    "index_prefix",
    "pack_key",
    "pack_prefix",
    "parse_id_key",
]

CONFIG_KEY = "config"
PLAIN_DOMAIN = "plain"

_DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEX_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def _domain_root(domain: str) -> str:
    if not _DOMAIN_RE.match(domain):
        raise InvalidInputError(f"invalid key domain {domain!r}")
    return f"objects/{domain}"


def pack_prefix(domain: str) -> str:
    return f"{_domain_root(domain)}/packs/"


def pack_key(domain: str, pack_id: Digest) -> str:
    hex_id = pack_id.hex
    return f"{pack_prefix(domain)}{hex_id[:2]}/{hex_id}"


def index_prefix(domain: str) -> str:
    return f"{_domain_root(domain)}/index/"


def index_key(domain: str, index_id: Digest) -> str:
    return f"{index_prefix(domain)}{index_id.hex}"


def parse_id_key(key: str) -> Digest | None:
    """The id at the end of a pack or index key, or None for a foreign key."""
    name = key.rsplit("/", 1)[-1]
    if not _HEX_ID_RE.match(name):
        return None
    return Digest.from_hex(name)
