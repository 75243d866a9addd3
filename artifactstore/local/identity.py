"""User identities: the keys that open private projects and sign records
(docs/design.md §13.1, docs/security.md).

Vocabulary:

- **identity**: a display name, an X25519 key pair (project keys are wrapped for
  its public key, docs/design.md §13.2) and an Ed25519 key pair (signs version
  records and alias events). One per user, in the per-user config folder.
- **public identity**: the name and the two public keys; what a teammate adds to
  a project. Written as one **public line**::

      asid1<base32(x25519 || ed25519 || checksum)> <name>

  base32 is RFC 4648, lowercase, unpadded (109 characters); checksum =
  BLAKE3(b"asid1" || x25519 || ed25519)[:4], so a line damaged in copy and paste
  is rejected instead of naming some other key. The name is optional when parsing.
- **fingerprint**: BLAKE3(b"artifactstore identity v1" || x25519 || ed25519)[:16]
  as 32 hex characters; it names the identity's key slots (§13.2).
- **config folder**: ``$ARTIFACTSTORE_CONFIG_DIR``, else
  ``$XDG_CONFIG_HOME/artifactstore``, else ``~/.config/artifactstore``.

The identity file, ``<config folder>/identity.json`` (mode 0600, folder 0700)::

    {"format": "artifactstore-identity", "version": 1, "name", "created_at",
     "x25519_public": hex, "ed25519_public": hex,
     "private": {"kind": "plain", "keys": hex(x25519 private || ed25519 private)}
              | {"kind": "scrypt", "log_n", "r", "p", "salt": hex,
                 "sealed": hex(ChaCha20-Poly1305 of the same 64 bytes, crypto.py)}}

It is written whole under a temp name and then linked (create) or renamed
(``force``) into place, so racing writers never leave a mix. Reading checks that
the private keys match the public keys: a swapped public key would otherwise make
teammates wrap project keys for someone else.

Length: one file format (the identity file), its passphrase protection, its
location and its backups; splitting them would spread one format over modules.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import getpass
import json
import os
import platform
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from artifactstore.core.crypto import (
    ScryptParams,
    SigningKey,
    generate_key,
    identity_fingerprint,
    unwrap_key,
    unwrap_with_passphrase,
    wrap_key,
    wrap_with_passphrase,
    x25519_keypair,
)
from artifactstore.core.digest import hash_bytes
from artifactstore.core.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    ConfigurationError,
    FormatError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from artifactstore.core.privatefiles import CONFIG_DIR_ENV, config_dir

__all__ = [
    "CONFIG_DIR_ENV", "IDENTITY_FILE", "PASSPHRASE_ENV", "Identity", "IdentityInfo",
    "PublicIdentity", "config_dir", "create_identity", "ensure_absent", "identity_backups",
    "identity_info", "identity_path", "load_identity", "load_or_create_identity",
]  # fmt: skip

PASSPHRASE_ENV: Final = "ARTIFACTSTORE_PASSPHRASE"
IDENTITY_FILE: Final = "identity.json"
LINE_PREFIX: Final = "asid1"
NAME_MAX: Final = 128
_FORMAT: Final = "artifactstore-identity"
_VERSION: Final = 1
_KEY: Final = 32
_CHECKSUM: Final = 4
_LINE_CHARS: Final = 109  # ceil((32 + 32 + 4) * 8 / 5)
_SCRYPT_MAX_MEMORY: Final = 1 << 30  # refuse absurd costs from a damaged file
_ASK: Final = "ask your teammate to run 'artifactstore identity show' and paste the whole line"
_O_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidInputError(f"an identity name is a string, not {type(name).__name__}")
    if len(name) > NAME_MAX or not name.isprintable() or name != name.strip():
        raise InvalidInputError(
            f"identity name {name[:NAME_MAX]!r} is not usable: use at most {NAME_MAX} "
            "printable characters, without spaces at either end"
        )
    return name


def _checksum(x25519: bytes, ed25519: bytes) -> bytes:
    return hash_bytes(LINE_PREFIX.encode() + x25519 + ed25519).raw[:_CHECKSUM]


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What others need to give this identity a project key and check its signatures."""

    name: str  # may be "" for a line pasted without its name
    x25519: bytes
    ed25519: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        for label, key in (("x25519", self.x25519), ("ed25519", self.ed25519)):
            if type(key) is not bytes or len(key) != _KEY:
                raise InvalidInputError(f"an identity's {label} public key is {_KEY} bytes")

    @property
    def fingerprint(self) -> str:
        """32 hex characters naming this identity (its key slots in projects)."""
        return identity_fingerprint(self.x25519, self.ed25519)

    def __repr__(self) -> str:
        return f"PublicIdentity(name={self.name!r}, fingerprint={self.fingerprint!r})"

    def to_line(self) -> str:
        """The public line: ``asid1…`` then, if there is one, a space and the name."""
        raw = self.x25519 + self.ed25519 + _checksum(self.x25519, self.ed25519)
        encoded = base64.b32encode(raw).decode("ascii").rstrip("=").lower()
        return LINE_PREFIX + encoded + (f" {self.name}" if self.name else "")

    @classmethod
    def parse(cls, line: str) -> PublicIdentity:
        """Read a public line (name optional, surrounding whitespace ignored)."""
        parts = line.strip().split(None, 1)
        head = parts[0] if parts else ""
        if head[: len(LINE_PREFIX)].lower() != LINE_PREFIX:
            hint = " (that is a fingerprint)" if _is_hex(head, 32) else ""
            raise InvalidInputError(
                f"not an artifactstore identity{hint}: a public identity line starts with "
                f"'{LINE_PREFIX}'; {_ASK}"
            )
        body = head[len(LINE_PREFIX):].lower()
        if len(body) != _LINE_CHARS:
            raise InvalidInputError(
                f"identity has the wrong length ({len(body)} characters after "
                f"'{LINE_PREFIX}', expected {_LINE_CHARS}; was it cut?); {_ASK}"
            )
        try:
            raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        except binascii.Error:
            raise InvalidInputError(
                f"identity is damaged: it has characters that are not base32; {_ASK}"
            ) from None
        x25519, ed25519, checksum = raw[:_KEY], raw[_KEY:2 * _KEY], raw[2 * _KEY:]
        # Re-encoding also catches a change to the unused low bits of the last character.
        canonical = base64.b32encode(raw).decode("ascii").rstrip("=").lower() == body
        if checksum != _checksum(x25519, ed25519) or not canonical:
            raise InvalidInputError(
                f"identity is damaged: checksum mismatch (a character was changed); {_ASK}"
            )
        name = parts[1].strip() if len(parts) > 1 else ""
        return cls(_check_name(name), x25519, ed25519)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass(frozen=True, slots=True)
class Identity:
    """A user's identity with its private keys; the repr never shows them."""

    public: PublicIdentity
    x25519_private: bytes = field(repr=False)
    signing_key: SigningKey = field(repr=False, compare=False)
    created_at: str
    protected: bool  # the file's private keys are sealed under a passphrase


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    """The public part of an identity file, read without a passphrase."""

    public: PublicIdentity
    created_at: str
    protected: bool
    path: Path


# -- locations ---------------------------------------------------------------------------


def identity_path() -> Path:
    return config_dir() / IDENTITY_FILE


def identity_backups(*, path: Path | None = None) -> list[Path]:
    """Backups left by ``create_identity(force=True)``, oldest first."""
    path = path or identity_path()
    return sorted(path.parent.glob(f"{path.name}.bak-*"))


def _default_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        user = "unknown"
    name = "".join(c for c in f"{user}@{platform.node() or 'localhost'}" if c.isprintable())
    return name.replace(" ", "_")[:NAME_MAX]


# -- writing -----------------------------------------------------------------------------


def ensure_absent(*, path: Path | None = None) -> None:
    """AlreadyExistsError if an identity exists at ``path`` (lets a CLI refuse early)."""
    path = path or identity_path()
    if path.exists():
        raise _already_exists(path)


def _already_exists(path: Path) -> AlreadyExistsError:
    return AlreadyExistsError(
        f"identity {path} already exists; use --force to replace it (the old identity's "
        "projects will no longer open)"
    )


def create_identity(name: str | None = None, passphrase: str | None = None, *,
                    path: Path | None = None, scrypt: ScryptParams | None = None,
                    force: bool = False) -> Identity:
    """Make and save a new identity; its private keys sealed under ``passphrase`` if given.

    An existing identity is an AlreadyExistsError unless ``force``, which replaces
    it atomically and keeps the old file as ``identity.json.bak-<UTC time>``.
    """
    path = path or identity_path()
    public_name = _check_name(_default_name() if name is None else name)
    if not public_name:
        raise InvalidInputError("the identity name is empty; choose a name or leave it out")
    if not force:
        ensure_absent(path=path)  # before the (slow) scrypt; the link below decides races
    x25519_private, x25519_public = x25519_keypair()
    signing_key = SigningKey.generate()
    identity = Identity(
        PublicIdentity(public_name, x25519_public, signing_key.public_bytes), x25519_private,
        signing_key, datetime.now(UTC).isoformat(timespec="seconds"), passphrase is not None,
    )
    secret = x25519_private + signing_key.private_bytes
    private: dict[str, Any]
    if passphrase is None:
        private = {"kind": "plain", "keys": secret.hex()}
    else:
        params, salt, sealed = wrap_with_passphrase(passphrase, secret, scrypt)
        private = {"kind": "scrypt", "log_n": params.log_n, "r": params.r, "p": params.p,
                   "salt": salt.hex(), "sealed": sealed.hex()}
    document = {
        "format": _FORMAT, "version": _VERSION, "name": public_name,
        "created_at": identity.created_at, "x25519_public": x25519_public.hex(),
        "ed25519_public": signing_key.public_bytes.hex(), "private": private,
    }  # fmt: skip
    data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
    try:
        _install(path, data, force=force)
    except AlreadyExistsError:
        raise
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write identity {path}: {exc.strerror or exc}; set {CONFIG_DIR_ENV} "
            "to a writable folder"
        ) from None
    return identity


def _install(path: Path, data: bytes, *, force: bool) -> None:
    folder = path.parent
    _make_private_folder(folder)
    temp = folder / f".{path.name}.tmp-{secrets.token_hex(8)}"
    # O_EXCL with 0600: the private keys are never readable by others, not even briefly.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            _backup(path)
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)  # atomic create: exactly one racing creator wins
            except FileExistsError:
                raise _already_exists(path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    _sync_folder(folder)


def _backup(path: Path) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        backup = path.with_name(f"{path.name}.bak-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            os.link(path, backup)  # the same bytes and mode 0600, never a partial copy
            return
        except FileNotFoundError:
            return  # nothing to keep
        except FileExistsError:
            continue
    raise FileExistsError(f"too many backups of {path} in one second")


def _make_private_folder(folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        return  # the user's own folder (maybe $ARTIFACTSTORE_CONFIG_DIR): leave its mode
    folder.chmod(0o700)  # mkdir's mode is filtered through the umask


def _sync_folder(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the new name survive a crash
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- reading -----------------------------------------------------------------------------


class _Reader:
    """Typed fields of an identity file; any mismatch is an IntegrityError naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(
                f"no identity at {path}; run 'artifactstore identity create'"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read identity {path}: {exc}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise self.damaged("it is not JSON") from None
        if type(document) is not dict or document.get("format") != _FORMAT:
            raise self.damaged("it is not an artifactstore identity file")
        self.document: dict[str, Any] = document
        version = self.get("version", int)
        if version > _VERSION:
            raise FormatError(f"identity {path} has format version {version}; this "
                              f"artifactstore reads version {_VERSION}: upgrade artifactstore")
        if version < 1:
            raise self.damaged(f"unknown version {version}")

    def damaged(self, what: str) -> IntegrityError:
        return IntegrityError(
            f"identity {self.path} is damaged: {what}; restore it from a backup or run "
            "'artifactstore identity create --force'"
        )

    def get(self, key: str, kind: type[Any], within: dict[str, Any] | None = None) -> Any:
        value = (self.document if within is None else within).get(key)
        if type(value) is not kind:
            raise self.damaged(f"field {key!r} is missing or not a {kind.__name__}")
        return value

    def hex(self, key: str, within: dict[str, Any] | None = None,
            size: int | None = None) -> bytes:
        try:
            value = bytes.fromhex(self.get(key, str, within))
        except ValueError:
            raise self.damaged(f"field {key!r} is not hex") from None
        if size is not None and len(value) != size:
            raise self.damaged(f"field {key!r} is not {size} bytes")
        return value

    def info(self) -> IdentityInfo:
        try:
            public = PublicIdentity(self.get("name", str), self.hex("x25519_public"),
                                    self.hex("ed25519_public"))
        except InvalidInputError as exc:
            raise self.damaged(str(exc)) from None
        kind = self.get("kind", str, self.private)
        if kind not in ("plain", "scrypt"):
            raise FormatError(f"identity {self.path} protects its keys with {kind!r}, unknown "
                              "to this artifactstore: upgrade artifactstore")
        return IdentityInfo(public, self.get("created_at", str), kind == "scrypt", self.path)

    @property
    def private(self) -> dict[str, Any]:
        private: dict[str, Any] = self.get("private", dict)
        return private

    def scrypt(self) -> tuple[ScryptParams, bytes, bytes]:
        private = self.private
        log_n, r, p = (self.get(k, int, private) for k in ("log_n", "r", "p"))
        if not (1 <= log_n <= 30 and 1 <= r <= 64 and 1 <= p <= 16
                and 128 * r * 2**log_n <= _SCRYPT_MAX_MEMORY):
            raise self.damaged(f"scrypt parameters out of range (log_n={log_n}, r={r}, p={p})")
        return ScryptParams(log_n, r, p), self.hex("salt", private), self.hex("sealed", private)


def _keys_match(public: PublicIdentity, x25519_private: bytes, signing_key: SigningKey) -> bool:
    if signing_key.public_bytes != public.ed25519:
        return False
    # Proof of possession: a key wrapped for the stored public key opens with the private one.
    probe = generate_key()
    try:
        return unwrap_key(x25519_private, wrap_key(public.x25519, probe)) == probe
    except ValueError:  # a degenerate public key (all-zero shared secret)
        return False


def identity_info(*, path: Path | None = None) -> IdentityInfo:
    """The public identity and whether it is protected; no passphrase needed.

    For an unprotected file the private keys are also checked against the public
    ones (cheap, and what a teammate is given must be ours).
    """
    reader = _Reader(path or identity_path())
    info = reader.info()
    if not info.protected:
        _open(reader, info, None)
    return info


def load_identity(passphrase: str | None = None, *, path: Path | None = None) -> Identity:
    """The identity with its private keys.

    A protected identity needs ``passphrase``, else ``$ARTIFACTSTORE_PASSPHRASE``;
    without either, or with a wrong one, AccessDeniedError.
    """
    reader = _Reader(path or identity_path())
    return _open(reader, reader.info(), passphrase)


def _open(reader: _Reader, info: IdentityInfo, passphrase: str | None) -> Identity:
    path = reader.path
    if info.protected:
        from_env = passphrase is None
        if from_env:
            passphrase = os.environ.get(PASSPHRASE_ENV) or None
        if passphrase is None:
            raise AccessDeniedError(
                f"identity {path} is protected by a passphrase; set {PASSPHRASE_ENV} or run "
                "interactively"
            )
        params, salt, sealed = reader.scrypt()
        secret = unwrap_with_passphrase(passphrase, params, salt, sealed) if passphrase else None
        if secret is None:
            hint = f"check {PASSPHRASE_ENV}" if from_env else "try again"
            raise AccessDeniedError(f"wrong passphrase for identity {path}; {hint}")
    else:
        secret = reader.hex("keys", reader.private)
    if len(secret) != 2 * _KEY:
        raise reader.damaged(f"its private keys are not {2 * _KEY} bytes")
    x25519_private, signing_key = secret[:_KEY], SigningKey(secret[_KEY:])
    if not _keys_match(info.public, x25519_private, signing_key):
        raise reader.damaged("its private keys do not match its public keys")
    return Identity(info.public, x25519_private, signing_key, info.created_at, info.protected)


def load_or_create_identity(passphrase: str | None = None, *,
                            path: Path | None = None) -> Identity:
    """The user's identity, created without a passphrase the first time it is needed.

    Why silently: projects are private by default (docs/design.md §3, §13), so the first
    write of a new user needs an identity to wrap the project key for. Stopping
    to ask for one would push users towards public projects; an unprotected key
    in a 0600 file in a 0700 folder is the ssh-keygen default, and the user can
    make a protected identity first with 'artifactstore identity create'.
    """
    path = path or identity_path()
    try:
        return load_identity(passphrase, path=path)
    except NotFoundError:
        pass
    try:
        return create_identity(path=path)
    except AlreadyExistsError:  # another process created it meanwhile: use theirs
        return load_identity(passphrase, path=path)
