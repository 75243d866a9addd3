"""Where this machine remembers the stores it has used (docs/security.md).

Vocabulary: the **client state** of a store is what this user's machine has seen of it:
the pins of its projects (what a project's record said when first seen, like SSH's
``known_hosts``) and the high-water marks of its logs (the newest version and alias
event seen), so that a store showing less is noticed. It lives in
``<cache>/known/<location>/``, where ``<location>`` hashes the store's URL, not its store
id (the config object is the storage admin's to replace). Folders are 0700 and files
0600: names in it are the user's own. Memory stores keep none (they live in the process).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from artifactstore.core.privatefiles import private_folder

__all__ = ["known_dir"]


def known_dir(cache_root: Path, url: str) -> Path | None:
    """The client-state folder of the store whose backend URL (``backend.url``) is ``url``
    (created, 0700); None for a memory store."""
    if url.startswith("memory://"):
        return None
    where = hashlib.sha256(url.encode()).hexdigest()[:16]
    return private_folder(cache_root / "known" / where, root=cache_root)
