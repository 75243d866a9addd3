"""The name and e-mail this user's identity declares to the projects it writes in.

Vocabulary:

- **declared profile**: ``<config dir>/profile.json`` (``artifactstore identity
  declare``), ``{"format": "artifactstore-profile", "version": 1, "name", "email"}``.
  Kept beside the identity file, not in it, so changing an e-mail never rewrites the
  file that holds the private keys. Without it nothing is declared (opt-in).
- **declared mark**: ``<cache>/known/<store>/<project>/profile``, the digest of the
  profile last written to (or found in) that project from this machine, so that only
  the first write after a change costs the requests of checking the project's copy.

What is declared is shown to the project's members; in a public project, to anyone who
can read the store (``identity declare`` says so).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import ConfigurationError, IntegrityError
from artifactstore.core.privatefiles import config_dir, write_private_file
from artifactstore.records.profiles import check_profile

__all__ = ["DeclaredProfile", "declared_profile", "forget_declared_profile",
           "is_declared_in", "mark_declared_in", "profile_path", "save_declared_profile"]

_FORMAT: Final = "artifactstore-profile"
_VERSION: Final = 1
_MARK: Final = "profile"


@dataclass(frozen=True, slots=True)
class DeclaredProfile:
    name: str
    email: str | None

    @property
    def digest(self) -> str:
        """Names this declaration in the per-project marks."""
        text = json.dumps([self.name, self.email]).encode()
        return hash_bytes(text).raw[:16].hex()


def profile_path() -> Path:
    return config_dir() / "profile.json"


def declared_profile(*, path: Path | None = None) -> DeclaredProfile | None:
    """The declared profile, or None when nothing is declared."""
    path = path or profile_path()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError:
        raise _damaged(path) from None
    if (type(document) is not dict or document.get("format") != _FORMAT
            or type(document.get("name")) is not str
            or type(document.get("email")) not in (str, type(None))):
        raise _damaged(path)
    return DeclaredProfile(*check_profile(document["name"], document["email"]))


def save_declared_profile(name: str, email: str | None, *,
                          path: Path | None = None) -> DeclaredProfile:
    """Check and save what this identity declares from now on."""
    profile = DeclaredProfile(*check_profile(name, email))
    path = path or profile_path()
    document = {"format": _FORMAT, "version": _VERSION, "name": profile.name,
                "email": profile.email}
    try:
        write_private_file(path, (json.dumps(document, indent=2) + "\n").encode())
    except OSError as exc:
        raise ConfigurationError(f"cannot write {path}: {exc.strerror or exc}") from None
    return profile


def forget_declared_profile(*, path: Path | None = None) -> bool:
    """Stop declaring (what projects already hold stays there); whether one existed."""
    try:
        (path or profile_path()).unlink()
    except FileNotFoundError:
        return False
    return True


def is_declared_in(project_folder: Path, profile: DeclaredProfile) -> bool:
    """Whether this machine already wrote (or found) ``profile`` in that project."""
    with contextlib.suppress(OSError):
        return (project_folder / _MARK).read_text().strip() == profile.digest
    return False


def mark_declared_in(project_folder: Path, profile: DeclaredProfile) -> None:
    with contextlib.suppress(OSError):  # a lost mark only costs a check next time
        write_private_file(project_folder / _MARK, profile.digest.encode())


def _damaged(path: Path) -> IntegrityError:
    return IntegrityError(f"{path} is damaged; run 'artifactstore identity declare' again "
                          "or delete it")
