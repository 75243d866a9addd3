"""The one exception root of artifactstore and its families.

Every error a user can meet is an :class:`ArtifactStoreError`. Each family also
inherits the builtin it resembles (``NotFoundError`` is a ``FileNotFoundError``)
so callers that already catch builtins keep working, and each carries the
process exit code the CLI returns for it (``exit_code``). Messages are one line
that names the problem and says what to do.

Vendor exceptions (``OSError`` from the OS, botocore, gcsfs ``HttpError``) are
mapped to these classes at the backend boundary and never reach users raw.

Exit codes are part of the public contract (documented in ``docs/design.md``):

====  =========================  =============================================
code  class                      meaning
====  =========================  =============================================
1     ArtifactStoreError         any other failure
2     InvalidInputError          bad argument, name, path or value
3     NotFoundError              object, artifact, alias or path does not exist
4     AlreadyExistsError         a create-only object already exists
5     IntegrityError             stored bytes do not match their id / are damaged
6     FormatError                unknown store format version or mandatory feature
7     BackendError               the storage backend failed (I/O, network)
8     ReadOnlyError              a write was attempted through a read-only view
9     ConfigurationError         bad configuration, unknown scheme, missing extra
10    ConflictError              a concurrent writer won a race; retry
11    StorageFullError           the backend is out of space
12    AccessDeniedError          no key of this identity opens the project
13    StoreNotFoundError         no store at the URL (nothing was created there)
14    NotSignedInError           a team server wants a valid sign-in (none, expired, revoked)
15    NotAuthorizedError         signed in, but this role may not do that on the team server
====  =========================  =============================================
"""

from __future__ import annotations

import errno

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "ArtifactStoreError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "FormatError",
    "IntegrityError",
    "InvalidInputError",
    "MissingExtraError",
    "NotAuthorizedError",
    "NotFoundError",
    "NotSignedInError",
    "ReadOnlyError",
    "StorageFullError",
    "StoreNotFoundError",
    "TransientBackendError",
    "local_write_error",
]


class ArtifactStoreError(Exception):
    """Root of every error raised by artifactstore."""

    exit_code: int = 1


class InvalidInputError(ArtifactStoreError, ValueError):
    """An argument, name, path or value is not acceptable."""

    exit_code = 2


class NotFoundError(ArtifactStoreError, FileNotFoundError):
    """The requested object, artifact, alias or path does not exist."""

    exit_code = 3


class StoreNotFoundError(NotFoundError):
    """No store at the URL: reading never creates one (``artifactstore init`` does)."""

    exit_code = 13

    @classmethod
    def at(cls, url: str) -> StoreNotFoundError:
        """The one-line error for a missing store at ``url`` (credentials stripped)."""
        return cls(f"no store at {url}; create it with 'artifactstore init {url}'")


class AlreadyExistsError(ArtifactStoreError, FileExistsError):
    """A create-only object already exists."""

    exit_code = 4


class IntegrityError(ArtifactStoreError):
    """Stored bytes are damaged or do not match the id they are stored under."""

    exit_code = 5


class FormatError(ArtifactStoreError):
    """The store uses a format version or mandatory feature this client does not know."""

    exit_code = 6


class BackendError(ArtifactStoreError, OSError):
    """The storage backend failed; ``transient`` says whether a retry may help."""

    exit_code = 7
    transient: bool = False


class TransientBackendError(BackendError):
    """A backend failure that may succeed when retried (timeouts, throttling, 5xx)."""

    transient = True


class BackendUnavailableError(BackendError):
    """The backend cannot be reached at all (connection refused, DNS, no bucket)."""


class ReadOnlyError(ArtifactStoreError, PermissionError):
    """A write was attempted through a read-only backend or store."""

    exit_code = 8


class ConfigurationError(ArtifactStoreError):
    """The configuration or store URL is not usable."""

    exit_code = 9


class MissingExtraError(ConfigurationError, ImportError):
    """An optional dependency needed for a backend is not installed."""


class ConflictError(ArtifactStoreError):
    """A concurrent writer won a race for the same name; retrying resolves it."""

    exit_code = 10


class StorageFullError(BackendError):
    """The backend has no space left."""

    exit_code = 11


class AccessDeniedError(ArtifactStoreError, PermissionError):
    """The project is private and this identity holds none of its keys (or a wrong passphrase)."""

    exit_code = 12


class NotSignedInError(ArtifactStoreError, PermissionError):
    """A team server refused the request: no token, or one that is unknown, expired,
    revoked or forged. Signing in again (``artifactstore login URL``) is the fix."""

    exit_code = 14


class NotAuthorizedError(ArtifactStoreError, PermissionError):
    """A team server knows who you are, and your role (or the token's scope) does not
    allow this: a reader writing, a writer purging, a project the token does not name."""

    exit_code = 15


def local_write_error(exc: OSError, what: str, instead: str) -> ArtifactStoreError:
    """The error for ``exc``, met while writing the user's own files (a download, an
    export): ``what`` says what failed ("cannot download into /x"), ``instead`` what
    else the user can do ("download elsewhere"). The store's backend maps its own
    errors (``backends/_errors.py``); this is the same boundary for local targets."""
    if isinstance(exc, ArtifactStoreError):
        return exc
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{what}: no space left on the device; free some space "
                                f"or {instead}")
    if code == errno.EROFS:
        return ReadOnlyError(f"{what}: the file system is read-only; {instead}")
    if code == errno.EIO:
        return BackendError(f"{what}: the disk reported an I/O error; check it or {instead}")
    # The target is the user's choice: a folder that is a file, no permission, a name
    # too long are all bad input, to be fixed by choosing another target.
    where = f" ({exc.filename})" if exc.filename else ""
    return InvalidInputError(f"{what}: {exc.strerror or type(exc).__name__}{where}; {instead}")
